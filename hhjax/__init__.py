"""hhjax: a JAX-native, differentiable Hodgkin–Huxley simulator.

Units everywhere: mV, ms, µF/cm², mS/cm², µA/cm², rates in 1/ms.
Sign convention: `c_m dv/dt = i_stim − Σ i_ion`, ionic currents positive outward.
"""

from ._channels import AbstractGate as AbstractGate
from ._channels import Bell as Bell
from ._channels import Channel as Channel
from ._channels import Constant as Constant
from ._channels import DependentGate as DependentGate
from ._channels import Exponential as Exponential
from ._channels import InfTauGate as InfTauGate
from ._channels import InstantaneousGate as InstantaneousGate
from ._channels import Linoid as Linoid
from ._channels import Membrane as Membrane
from ._channels import MembraneState as MembraneState
from ._channels import RateGate as RateGate
from ._channels import Sigmoid as Sigmoid
from ._features import TraceFeatures as TraceFeatures
from ._features import feature_names as feature_names
from ._features import trace_features as trace_features
from ._model import HHState as HHState
from ._model import IonicCurrents as IonicCurrents
from ._model import gate_derivatives as gate_derivatives
from ._model import hh_derivatives as hh_derivatives
from ._model import hh_vector_field as hh_vector_field
from ._model import ionic_currents as ionic_currents
from ._model import jacobian_at as jacobian_at
from ._model import model_derivatives as model_derivatives
from ._model import resting_state as resting_state
from ._model import steady_state as steady_state
from ._model import steady_state_current as steady_state_current
from ._params import REFERENCE_TEMPERATURE as REFERENCE_TEMPERATURE
from ._params import HHParams as HHParams
from ._plot import plot_trace as plot_trace
from ._rates import AbstractHHKinetics as AbstractHHKinetics
from ._rates import ANNarchyKinetics as ANNarchyKinetics
from ._rates import ClassicKinetics as ClassicKinetics
from ._rates import exprel_inv as exprel_inv
from ._rates import phi1 as phi1
from ._recording import Recording as Recording
from ._recording import load_recording as load_recording
from ._simulate import RESULTS as RESULTS
from ._simulate import SimulationError as SimulationError
from ._simulate import SimulationResult as SimulationResult
from ._simulate import finite_rms_norm as finite_rms_norm
from ._simulate import simulate as simulate
from ._solvers import RK4 as RK4
from ._solvers import ExponentialEuler as ExponentialEuler
from ._spikes import crossing_times as crossing_times
from ._spikes import firing_rate as firing_rate
from ._spikes import spike_count as spike_count
from ._spikes import spike_times as spike_times
from ._stimulus import AbstractNoiseCurrent as AbstractNoiseCurrent
from ._stimulus import AbstractStimulus as AbstractStimulus
from ._stimulus import ConstantCurrent as ConstantCurrent
from ._stimulus import OUNoiseCurrent as OUNoiseCurrent
from ._stimulus import PulseTrain as PulseTrain
from ._stimulus import RampCurrent as RampCurrent
from ._stimulus import SampledCurrent as SampledCurrent
from ._stimulus import SineCurrent as SineCurrent
from ._stimulus import StepCurrent as StepCurrent
from ._stimulus import SumCurrent as SumCurrent
from ._stimulus import WhiteNoiseCurrent as WhiteNoiseCurrent

__version__ = "0.1.0"
