"""Build the tutorial notebooks, notebooks/*.ipynb, from the scripts in examples/.

The scripts are the source; the notebooks are generated from them and committed
without outputs, so they never drift apart (tests/test_notebooks.py fails when one is
out of sync and executes them):

    python notebooks/sync.py            # (re)write every notebook that differs
    python notebooks/sync.py --check    # only report; exit 1 if one is out of sync

Edit a script, then run `python notebooks/sync.py`. Each notebook holds, in order:
the script's docstring (Markdown); its top-level code, one cell per function and one
per block of imports or constants; a cell that runs the script's `main()` with its
command-line arguments (figures go to output/NAME/ next to the notebook); a cell
that shows the figures; and notebook-only cells (seed 003: the slider explorer).

The run cell appends the arguments in the environment variable HHJAX_NOTEBOOK_ARGS
(e.g. "--t-end 30"): the tests run the notebooks at the small sizes the scripts
support that way. Needs nbformat (`pip install -e ".[notebook]"`).
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import sys

NOTEBOOKS = pathlib.Path(__file__).resolve().parent
EXAMPLES = NOTEBOOKS.parent / "examples"
ENV_ARGS = "HHJAX_NOTEBOOK_ARGS"

# the tutorials: script name -> glob of the figures its main() writes
TUTORIALS = {
    "quickstart": "quickstart*.png",
    "seed000_annarchy": "seed000*.png",
    "seed001_hh1952": "seed001*.png",
    "seed002_population": "seed002*.png",
    "seed003_reduced": "seed003*.png",
    "seed004_tutorial": "seed004*.png",
}

# notebook-only cells after the figures: (cell type, source)
EXTRA_CELLS = {
    "seed003_reduced": [
        (
            "markdown",
            "## The slider explorer\n"
            "\n"
            "The document's five sliders. Each move re-runs `simulate` (compiled once "
            "and reused for every setting: milliseconds per run) and redraws V(t). "
            "It needs "
            'ipywidgets (`pip install -e ".[notebook]"`); without them `explorer()` '
            "shows the static sweep.",
        ),
        ("code", "explorer()"),
    ],
}

KERNELSPEC = {
    "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"
}


def _is_def(node: ast.stmt) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _kind(node: ast.stmt) -> str:
    if _is_def(node):
        return "def"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return "import"  # e.g. jax.config.update(...) among the imports
    return "stmt"


def split_script(source: str) -> tuple[str, list[str]]:
    """(docstring, code cells) of a script: every line of its top-level code except
    the docstring and the `if __name__ == "__main__":` block, comments included
    (they go with the statement below them); one cell per function or class, one per
    run of imports, one per run of other statements."""
    tree = ast.parse(source)
    lines = source.splitlines()
    body = list(tree.body)
    doc = (ast.get_docstring(tree, clean=False) or "").strip("\n")  # keep indents
    prev_end = 0
    if doc:
        prev_end = body.pop(0).end_lineno
    groups: list[tuple[str, list[str]]] = []
    for node in body:
        if _is_main_guard(node):
            prev_end = node.end_lineno
            continue
        chunk = lines[prev_end : node.end_lineno]
        prev_end = node.end_lineno
        kind = _kind(node)
        if groups and kind != "def" and groups[-1][0] == kind:
            groups[-1][1].extend(chunk)
        else:
            groups.append((kind, list(chunk)))
    cells = []
    for _, chunk in groups:
        text = "\n".join(chunk).strip("\n")
        if text:
            cells.append(text)
    return doc, cells


def _markdown_intro(name: str, doc: str) -> str:
    paragraphs = doc.split("\n\n", 1)
    title = " ".join(paragraphs[0].split())
    rest = paragraphs[1] if len(paragraphs) > 1 else ""
    note = (
        f"*Generated from [`examples/{name}.py`](../examples/{name}.py) by "
        "`notebooks/sync.py`: edit the script, then run `python notebooks/sync.py`. "
        "Run the cells in order (Run → Run All Cells).*"
    )
    rest = rest.strip("\n").rstrip()  # an indented first line is a code block: keep it
    return f"# {title}\n\n{rest}\n\n{note}" if rest else f"# {title}\n\n{note}"


def build(name: str):
    """The notebook (an nbformat NotebookNode) for examples/NAME.py."""
    import nbformat

    source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    doc, code = split_script(source)
    out = f"output/{name}"
    cells: list[tuple[str, str]] = [("markdown", _markdown_intro(name, doc))]
    cells += [("code", c) for c in code]
    cells += [
        (
            "markdown",
            "## Run\n"
            "\n"
            f"`main()` takes the script's command line (`python examples/{name}.py "
            f"--help`); its figures go to `{out}/` next to this notebook. The "
            f"environment variable `{ENV_ARGS}` appends arguments (the tests use it to "
            "run the notebooks at a small size).",
        ),
        (
            "code",
            "import os\n"
            "import shlex\n"
            "\n"
            f'OUT = "{out}"\n'
            f'ARGS = ["--out", OUT, *shlex.split(os.environ.get("{ENV_ARGS}", ""))]\n'
            "result = main(ARGS)",
        ),
        (
            "code",
            "import pathlib\n"
            "\n"
            "from IPython.display import Image, display\n"
            "\n"
            f'for png in sorted(pathlib.Path(OUT).glob("{TUTORIALS[name]}")):\n'
            "    display(Image(filename=str(png)))",
        ),
    ]
    cells += EXTRA_CELLS.get(name, [])
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
    }
    for i, (kind, text) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        cell.id = f"{name.replace('_', '-')}-{i:02d}"  # deterministic: stable files
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    """The notebook file's text for examples/NAME.py (what sync writes)."""
    import nbformat

    return nbformat.writes(build(name)) + "\n"


def out_of_sync() -> list[str]:
    """Names whose notebooks/NAME.ipynb is missing or differs from its script."""
    stale = []
    for name in TUTORIALS:
        path = NOTEBOOKS / f"{name}.ipynb"
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            stale.append(name)
    return stale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 when a notebook is missing or out of sync",
    )
    args = ap.parse_args(argv)
    stale = out_of_sync()
    if args.check:
        for name in stale:
            print(f"notebooks/{name}.ipynb is out of sync with examples/{name}.py")
        if stale:
            print("run: python notebooks/sync.py")
        return 1 if stale else 0
    for name in stale:
        (NOTEBOOKS / f"{name}.ipynb").write_text(render(name), encoding="utf-8")
        print(f"wrote notebooks/{name}.ipynb")
    if not stale:
        print("notebooks are in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
