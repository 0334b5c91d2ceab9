"""mkdocs hooks (`hooks:` in mkdocs.yml). Cheap: they never run a simulation.

Figures live in `docs/figures/` and are *generated*, not committed: run
`python docs/gen_figures.py` before `mkdocs build` to draw them (the seed scenarios'
figures come from `examples/seed*.py --out docs/figures`). A page that shows a
figure which has not been generated gets a note with the command instead of the
image, so `mkdocs build --strict` passes with or without the figures (otherwise the
missing image would be a broken-link warning, an error in strict mode).

Set `HHJAX_DOCS_FIGURES=1` to have the build run `docs/gen_figures.py --missing`
first (a few minutes on a laptop CPU).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

DOCS = pathlib.Path(__file__).resolve().parent
FIGURES = DOCS / "figures"
# ![alt](path/figures/name.png){attrs}  (attrs: attr_list, optional)
IMAGE = re.compile(
    r"!\[(?P<alt>[^\]]*)\]\((?P<path>[^)\s]*figures/(?P<name>[\w.-]+))\)"
    r"(?P<attrs>\{[^}]*\})?"
)


def on_pre_build(config, **kwargs):
    if os.environ.get("HHJAX_DOCS_FIGURES") == "1":
        subprocess.run(
            [sys.executable, str(DOCS / "gen_figures.py"), "--missing"], check=True
        )


def on_page_markdown(markdown, page, config, files, **kwargs):
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if (FIGURES / name).is_file():
            return match.group(0)
        alt = match.group("alt") or name
        return (
            f'\n!!! info "Figure not generated: {alt}"\n'
            f"    `figures/{name}` is drawn by `python docs/gen_figures.py` "
            "(run it before `mkdocs build`).\n"
        )

    return IMAGE.sub(replace, markdown)
