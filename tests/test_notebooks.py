"""The tutorial notebooks (notebooks/*.ipynb): generated from examples/ by
notebooks/sync.py, in sync with their scripts, and each runs in a Jupyter kernel at
a small size; seed 003's slider explorer works with ipywidgets.

Needs nbformat, nbclient and ipykernel (the `test` and `notebook` extras); the tests
skip, with the reason, without them. Two notebooks run in the default suite
(quickstart and seed 003, ~10 s each on a 2-core CPU), the others with `-m slow`.
The run cell of each notebook appends the arguments in HHJAX_NOTEBOOK_ARGS: the
small sizes of tests/test_examples.py's SMALL_ARGS where a script has one.
"""

import importlib.util
import pathlib

import numpy as np
import pytest
from test_examples import SMALL_ARGS

REPO = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
EXAMPLES = REPO / "examples"

# the arguments each notebook's run cell appends (HHJAX_NOTEBOOK_ARGS): the small
# sizes the scripts support; the seed scripts without size options run as they are
NOTEBOOK_ARGS = {
    "quickstart": SMALL_ARGS["quickstart.py"],
    "seed002_population": ["--n", "2", "--t-noise", "600"],
}
# run in the default suite; the rest are marked slow (~10-30 s each)
DEFAULT_SUITE = ("quickstart", "seed003_reduced")
# figures each notebook's main() writes into output/NAME/
FIGURES = {
    "quickstart": ["quickstart.png"],
    "seed000_annarchy": ["seed000_annarchy.png"],
    "seed001_hh1952": ["seed001_hh1952.png"],
    "seed002_population": ["seed002_population.png"],
    "seed003_reduced": ["seed003_explorer.png", "seed003_reduced.png"],
    "seed004_tutorial": [f"seed004_neuron_func_{k}.png" for k in range(1, 8)],
}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# jupyter_core: use the platformdirs locations now (silences its DeprecationWarning)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:jupyter_core.*")


def _need(*modules):
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(
                f'{module} not installed: pip install -e ".[test]" (or ".[notebook]")'
            )


def _load(path: pathlib.Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sync():
    _need("nbformat")
    return _load(NOTEBOOKS / "sync.py", "notebooks_sync")


def test_every_tutorial_has_a_notebook(sync):
    scripts = sorted(p.stem for p in EXAMPLES.glob("seed*.py")) + ["quickstart"]
    assert sorted(sync.TUTORIALS) == sorted(scripts)
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(scripts)
    assert sorted(FIGURES) == sorted(scripts)


def test_notebooks_in_sync_with_their_scripts(sync):
    stale = sync.out_of_sync()
    assert not stale, (
        f"notebooks out of sync with examples/: {stale}; run `python notebooks/sync.py`"
    )


def test_sync_check_reports_a_changed_script(sync, tmp_path, monkeypatch, capsys):
    examples, notebooks = tmp_path / "examples", tmp_path / "notebooks"
    examples.mkdir()
    notebooks.mkdir()
    for name in sync.TUTORIALS:
        (examples / f"{name}.py").write_text(
            (EXAMPLES / f"{name}.py").read_text(encoding="utf-8"), encoding="utf-8"
        )
    monkeypatch.setattr(sync, "EXAMPLES", examples)
    monkeypatch.setattr(sync, "NOTEBOOKS", notebooks)
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0
    script = examples / "quickstart.py"
    script.write_text(script.read_text().replace("amplitude=10.0", "amplitude=12.0"))
    assert sync.main(["--check"]) == 1
    assert "notebooks/quickstart.ipynb is out of sync" in capsys.readouterr().out
    assert sync.main([]) == 0 and sync.main(["--check"]) == 0
    assert "amplitude=12.0" in (notebooks / "quickstart.ipynb").read_text()


def test_notebook_cells_hold_every_line_of_the_script(sync):
    """Every line of a script's code (all but the docstring and the __main__ guard)
    is in its notebook, in order, and the docstring is the first (Markdown) cell."""
    import ast

    for name in sync.TUTORIALS:
        source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
        tree = ast.parse(source)
        lines = source.splitlines()
        first = tree.body[0].end_lineno  # the docstring
        guard = [n for n in tree.body if sync._is_main_guard(n)]
        last = guard[0].lineno - 1 if guard else len(lines)
        expected = [ln for ln in lines[first:last] if ln.strip()]
        nb = sync.build(name)
        assert nb.cells[0].cell_type == "markdown"
        assert ast.get_docstring(tree).splitlines()[-1].strip() in nb.cells[0].source
        code = [
            ln
            for c in nb.cells
            if c.cell_type == "code"
            for ln in c.source.splitlines()
            if ln.strip()
        ]
        assert code[: len(expected)] == expected, name


def _execute(name, tmp_path, monkeypatch):
    """Run notebooks/NAME.ipynb in a python3 kernel (cwd tmp_path) at small size;
    any cell error fails. Returns the executed notebook."""
    _need("nbformat", "nbclient", "ipykernel")
    import shlex

    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("HHJAX_NOTEBOOK_ARGS", shlex.join(NOTEBOOK_ARGS.get(name, [])))
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,  # per cell
        startup_timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    out = tmp_path / "output" / name
    for png in FIGURES[name]:
        assert (out / png).stat().st_size > 10_000, png
    shown = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(shown) == len(FIGURES[name])
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return nb


@pytest.mark.parametrize(
    "name",
    [
        n if n in DEFAULT_SUITE else pytest.param(n, marks=pytest.mark.slow)
        for n in FIGURES
    ],
)
def test_notebook_runs(name, tmp_path, monkeypatch):
    nb = _execute(name, tmp_path, monkeypatch)
    if name == "seed003_reduced":
        explorer = nb.cells[-1]
        assert explorer.source == "explorer()"
        data = explorer.outputs[-1].get("data", {})
        if importlib.util.find_spec("ipywidgets") is not None:
            assert WIDGET_MIME in data  # the slider box, displayed by the kernel
        else:
            assert "image/png" in data  # the static sweep


def test_seed003_explorer_widget_follows_the_sliders():
    """Headless: the widget box builds, and moving a slider re-simulates and replaces
    the plotted trace and the PNG shown."""
    _need("ipywidgets")
    seed003 = _load(EXAMPLES / "seed003_reduced.py", "seed003_reduced_widget")
    box, fig = seed003.explorer_widget()
    controls, image = box.children
    sliders = {s.description.split()[0]: s for s in controls.children[:-1]}
    assert list(sliders) == list(seed003.SLIDERS)
    assert all(not s.continuous_update for s in sliders.values())
    line = fig.axes[0].lines[0]
    default_v = np.asarray(line.get_ydata()).copy()
    np.testing.assert_allclose(default_v, seed003.simulate().v)
    png = bytes(image.value)
    assert png.startswith(b"\x89PNG")

    sliders["Iin"].value = 6.0  # what a user's slider move does
    v = np.asarray(line.get_ydata())
    np.testing.assert_allclose(v, seed003.simulate(Iin=6.0).v)
    assert np.max(v) > 0.0 > np.max(default_v)  # now spiking; the default does not
    assert bytes(image.value) != png and "Iin 6" in fig.axes[0].get_title()

    sliders["Gna"].value = 0.0  # no sodium: no spikes
    assert np.max(np.asarray(line.get_ydata())) < 0.0
