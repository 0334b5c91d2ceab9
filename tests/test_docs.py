"""The documentation: every public name has an API entry, the site builds in strict
mode (warnings fail), and the docstrings' examples run (doctests, float64 through
conftest) — those of every `hhjax` and `fitting` module, including the docstrings
of module constants (a string literal right after the assignment, which
mkdocstrings renders but `doctest` does not find by itself).

The site build needs the `docs` extra (mkdocs-material, mkdocstrings[python]) and is
skipped, with the reason, without it. Doctests whose examples take more than a few
seconds (the analysis functions' simulations) are marked `slow`
(`python -m pytest -m slow tests/test_docs.py`).
"""

import ast
import doctest
import importlib
import importlib.util
import io
import os
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import fitting
import hhjax

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

# docstring examples that each run simulations for seconds (the analysis functions'
# batched bisections and f–I protocols); run with `-m slow`
SLOW_DOCTESTS = {
    "hhjax._analysis.rheobase",
    "hhjax._analysis.repetitive_firing_threshold",
    "hhjax._analysis.fi_curve",
    "hhjax._analysis.firing_envelope",
    "hhjax._analysis.hopf_current",
    "hhjax._analysis.limit_cycle",
    "hhjax._analysis.LimitCycle",
    "hhjax._plot.plot_bifurcation",
}
# modules whose examples need an optional reader
OPTIONAL = {"hhjax._io_abf": "pyabf", "hhjax._io_nwb": "pynwb"}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _check_api():
    spec = importlib.util.spec_from_file_location("check_api", DOCS / "check_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _modules():
    return sorted(
        f"{pkg.__name__}.{info.name}"
        for pkg in (hhjax, fitting)
        for info in pkgutil.iter_modules(pkg.__path__)
    )


def _attribute_doctests(module) -> list[doctest.DocTest]:
    """The examples in module constants' docstrings: a string literal right after a
    top-level assignment `NAME = ...` (as mkdocstrings reads them)."""
    path = pathlib.Path(module.__file__)
    body = ast.parse(path.read_text(encoding="utf-8")).body
    parser = doctest.DocTestParser()
    tests = []
    for node, doc in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        else:
            continue
        if not (
            isinstance(target, ast.Name)
            and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)
        ):
            continue
        tests.append(
            parser.get_doctest(
                doc.value.value,
                dict(vars(module)),
                f"{module.__name__}.{target.id}",
                str(path),
                doc.lineno - 1,
            )
        )
    return tests


def _doctests(module_name: str, slow: bool) -> list[doctest.DocTest]:
    module = importlib.import_module(module_name)
    tests = [
        t
        for t in doctest.DocTestFinder().find(module) + _attribute_doctests(module)
        if t.examples and (t.name in SLOW_DOCTESTS) == slow
    ]
    return sorted(tests, key=lambda t: (t.lineno or 0, t.name))


def _with_examples(slow: bool) -> list[str]:
    return [m for m in _modules() if _doctests(m, slow)]


def _run(module_name: str, slow: bool) -> None:
    if (
        module_name in OPTIONAL
        and importlib.util.find_spec(OPTIONAL[module_name]) is None
    ):
        pytest.skip(f'{OPTIONAL[module_name]} not installed (pip install "hhjax[io]")')
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    for test in _doctests(module_name, slow):
        runner.run(test, out=report.write)
    failed, attempted = runner.summarize(verbose=False)
    assert attempted > 0
    assert failed == 0, f"{failed} of {attempted} examples failed:\n{report.getvalue()}"


def test_api_reference_lists_every_public_name():
    check_api = _check_api()
    problems = check_api.problems()
    assert not problems, "\n".join(problems)
    # the check itself finds what it should
    assert "simulate" in check_api.public_names("hhjax")
    assert "fit" in check_api.public_names("fitting")
    assert "hhjax.simulate" in check_api.api_entries()


def test_api_check_reports_a_missing_name(tmp_path):
    check_api = _check_api()
    for page in (DOCS / "api").glob("*.md"):
        text = page.read_text(encoding="utf-8").replace("::: hhjax.spike_times\n", "")
        (tmp_path / page.name).write_text(text + "\n::: hhjax.no_such_name\n")
    problems = check_api.problems(tmp_path)
    assert any("missing: hhjax.spike_times" in p for p in problems)
    assert any("unknown: `::: hhjax.no_such_name`" in p for p in problems)


def test_constant_docstrings_are_collected():
    names = {t.name for t in _doctests("hhjax._params", slow=False)}
    assert "hhjax._params.REFERENCE_TEMPERATURE" in names
    assert "fitting._fit" in _with_examples(slow=False)


@pytest.mark.parametrize("module_name", _with_examples(slow=False))
def test_doctests(module_name):
    _run(module_name, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("module_name", _with_examples(slow=True))
def test_doctests_slow(module_name):
    _run(module_name, slow=True)


def test_mkdocs_build_strict(tmp_path):
    for module, package in (
        ("mkdocs", "mkdocs"),
        ("material", "mkdocs-material"),
        ("mkdocstrings", "mkdocstrings"),
        ("mkdocstrings_handlers.python", "mkdocstrings[python]"),
    ):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'{package} not installed: pip install -e ".[docs]"')
    env = {k: v for k, v in os.environ.items() if k != "HHJAX_DOCS_FIGURES"}
    env["NO_MKDOCS_2_WARNING"] = "1"
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    html = (site / "api" / "simulation" / "index.html").read_text(encoding="utf-8")
    assert 'id="hhjax.simulate"' in html


def test_readme_local_links_exist():
    """Every relative link and image of the README points to a file of the repo (the
    figure under the ten-line example is committed in docs/assets/)."""
    import re

    readme = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert "docs/assets/readme_trace.png" in local
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, missing
