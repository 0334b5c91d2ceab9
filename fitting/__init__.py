"""fitting: gradient-based fitting of hhjax models to recorded voltage traces.

Uses only the public API of `hhjax`. Units as in hhjax: mV, ms, µF/cm², mS/cm²,
µA/cm² (pA for recorded currents, converted through the membrane area).
"""

from ._cell import CELL_MODELS as CELL_MODELS
from ._cell import CellFit as CellFit
from ._cell import CellModel as CellModel
from ._cell import cell_model as cell_model
from ._cell import fit_cell as fit_cell
from ._cell import load_cell_fit as load_cell_fit
from ._cell import search_sweeps as search_sweeps
from ._cell import spike_widths as spike_widths
from ._fit import DEFAULT_FIT as DEFAULT_FIT
from ._fit import FitInterrupted as FitInterrupted
from ._fit import FitResult as FitResult
from ._fit import Stage as Stage
from ._fit import default_stages as default_stages
from ._fit import fit as fit
from ._fit import versions as versions
from ._init import estimate_noise_sigma as estimate_noise_sigma
from ._init import teacher_forced_estimate as teacher_forced_estimate
from ._losses import AbstractBoundLoss as AbstractBoundLoss
from ._losses import AbstractLoss as AbstractLoss
from ._losses import FeatureLoss as FeatureLoss
from ._losses import SpikeTimeLoss as SpikeTimeLoss
from ._losses import SubthresholdLoss as SubthresholdLoss
from ._losses import SweepData as SweepData
from ._losses import TraceLoss as TraceLoss
from ._losses import WeightedSum as WeightedSum
from ._optimizers import AbstractObjective as AbstractObjective
from ._optimizers import AbstractOptimizer as AbstractOptimizer
from ._optimizers import LevenbergMarquardt as LevenbergMarquardt
from ._optimizers import Optax as Optax
from ._optimizers import OptimizerState as OptimizerState
from ._optimizers import adam as adam
from ._passive import PassiveEstimate as PassiveEstimate
from ._passive import current_edges as current_edges
from ._passive import estimate_passive as estimate_passive
from ._passive import onset_capacitance as onset_capacitance
from ._passive import stimulus_span as stimulus_span
from ._report import plot_fit as plot_fit
from ._report import predict as predict
from ._report import write_report as write_report
from ._search import SearchInterrupted as SearchInterrupted
from ._search import SearchResult as SearchResult
from ._search import cell_score as cell_score
from ._search import search_cell as search_cell
from ._simulator import AbstractSimulator as AbstractSimulator
from ._simulator import HHSimulator as HHSimulator
from ._synthetic import perturbed_params as perturbed_params
from ._synthetic import synthetic_recording as synthetic_recording
from ._transforms import AbstractTransform as AbstractTransform
from ._transforms import Affine as Affine
from ._transforms import Bounded as Bounded
from ._transforms import ParameterSpace as ParameterSpace
from ._transforms import Positive as Positive
