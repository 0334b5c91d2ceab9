"""Check that every public name of `hhjax` and `fitting` has an API entry.

An entry is a line `::: hhjax.NAME` (or `::: fitting.NAME`) in one of the hand-grouped
pages `docs/api/*.md`, which mkdocstrings renders from the docstring. The public
names are the package's `__all__` when it defines one, else every name in its
namespace that does not start with an underscore and is not a module.

    python docs/check_api.py          # exit 1 and list the problems, else exit 0

Problems reported: a public name without an entry, an entry for a name the package
does not export (renamed or removed), and a name with more than one entry.
`tests/test_docs.py` runs this check.
"""

from __future__ import annotations
import __future__ as _future

import importlib
import pathlib
import re
import sys
import types

DOCS = pathlib.Path(__file__).resolve().parent
API_DIR = DOCS / "api"
PACKAGES = ("hhjax", "fitting")
ENTRY = re.compile(r"^:::[ \t]+([A-Za-z_][\w.]*)[ \t]*$", re.MULTILINE)


def public_names(package: str) -> list[str]:
    """The public names of `package`: `__all__`, else its non-underscore,
    non-module attributes."""
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and not isinstance(value, (types.ModuleType, _future._Feature))
        ]
    return sorted(names)


def api_entries(api_dir: pathlib.Path = API_DIR) -> dict[str, list[str]]:
    """Dotted name → the pages (file names) that have a `::: name` entry for it."""
    entries: dict[str, list[str]] = {}
    for page in sorted(api_dir.glob("*.md")):
        for match in ENTRY.finditer(page.read_text(encoding="utf-8")):
            entries.setdefault(match.group(1), []).append(page.name)
    return entries


def problems(api_dir: pathlib.Path = API_DIR, packages=PACKAGES) -> list[str]:
    """Human-readable problems; empty when every public name has exactly one entry."""
    entries = api_entries(api_dir)
    out = []
    for package in packages:
        names = public_names(package)
        for name in names:
            if f"{package}.{name}" not in entries:
                out.append(
                    f"missing: {package}.{name} has no `::: {package}.{name}` "
                    f"entry in {api_dir.name}/*.md"
                )
        exported = set(names)
        for dotted, pages in sorted(entries.items()):
            head, _, rest = dotted.partition(".")
            if head != package:
                continue
            top = rest.split(".")[0]
            if top not in exported:
                out.append(
                    f"unknown: `::: {dotted}` in {', '.join(pages)} is not a "
                    f"public name of {package}"
                )
    for dotted, pages in sorted(entries.items()):
        if len(pages) > 1:
            out.append(
                f"duplicate: `::: {dotted}` appears {len(pages)} times "
                f"({', '.join(pages)})"
            )
    return out


def main() -> int:
    found = problems()
    if found:
        print(f"API reference check failed ({len(found)} problem(s)):", file=sys.stderr)
        for line in found:
            print("  " + line, file=sys.stderr)
        return 1
    counts = ", ".join(f"{p}: {len(public_names(p))}" for p in PACKAGES)
    print(f"API reference complete ({counts} public names).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
