"""(Re)write the documentation's generated tables from the code that defines them.

A generated table sits in a page (README.md or docs/*.md) between two marker comments:

    <!-- generated: corruption-table -->
    ...
    <!-- end generated -->

    python scripts/docs_tables.py           # rewrite every block that differs
    python scripts/docs_tables.py --check   # exit 1, naming each stale page, if any differs

Generators: `corruption-table` (how the torch backend implements each corruption, from the
corruption specs), `methods` (the registered methods with their family and summary) and
`source-layout` (every module of rambench/, corruptions/ and baselines/ with the first line
of its docstring).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- end generated -->)", re.S)
SOURCE_PACKAGES = ("rambench", "corruptions", "baselines")


def _importable(root: Path) -> None:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def corruption_table(root: Path = ROOT) -> str:
    """The torch backend's implementation of every corruption (`implementation_table()`)."""
    _importable(root)
    from corruptions.registry import implementation_table

    return implementation_table()


def methods_table(root: Path = ROOT) -> str:
    """The built-in registered methods: name, family, the first line of the class docstring."""
    _importable(root)
    from rambench.methods import methods

    rows = ["| method | family | what it is |", "|---|---|---|"]
    for name in methods.names():
        cls = methods.get(name)
        if not cls.__module__.startswith(SOURCE_PACKAGES):  # an installed plug-in
            continue
        rows.append(f"| `{name}` | {cls.family} | {cls.summary().replace('|', '&#124;')} |")
    return "\n".join(rows)


def _escape_html(line: str) -> str:
    """`<` outside code spans would start an HTML tag in Markdown."""
    parts = line.split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def source_layout(root: Path = ROOT) -> str:
    """One line per module: its path and the first line of its module docstring."""
    lines = []
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            first = doc.strip().splitlines()[0].strip() if doc and doc.strip() else \
                "(no module docstring)"
            lines.append(f"- `{path.relative_to(root).as_posix()}`: {_escape_html(first)}")
    return "\n".join(lines)


GENERATORS: dict[str, Callable[[Path], str]] = {
    "corruption-table": corruption_table,
    "methods": methods_table,
    "source-layout": source_layout,
}


def pages(root: Path = ROOT) -> list[Path]:
    """Every page that may hold a generated block."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def render(text: str, root: Path = ROOT, cache: dict[str, str] | None = None) -> str:
    """`text` with every generated block rewritten from the code."""
    cache = {} if cache is None else cache

    def block(match: re.Match) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise ValueError(f"unknown generated block {name!r}; known: "
                             f"{', '.join(sorted(GENERATORS))}")
        if name not in cache:
            cache[name] = GENERATORS[name](root)
        # blank lines around the table: Markdown ends an HTML comment block at a blank line
        return f"{match[1]}\n{cache[name]}\n\n{match[4]}"

    return BLOCK.sub(block, text)


def blocks(root: Path = ROOT) -> dict[str, list[str]]:
    """Page (relative path) -> the names of the generated blocks it holds."""
    found = {}
    for page in pages(root):
        names = [m["name"] for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]
        if names:
            found[page.relative_to(root).as_posix()] = names
    return found


def stale_pages(root: Path = ROOT) -> list[str]:
    """The pages (relative paths) whose generated blocks differ from what the code gives."""
    cache: dict[str, str] = {}
    stale = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        if render(text, root, cache) != text:
            stale.append(page.relative_to(root).as_posix())
    return stale


def write(root: Path = ROOT) -> list[str]:
    """Rewrite every stale page; returns the pages written."""
    cache: dict[str, str] = {}
    written = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        new = render(text, root, cache)
        if new != text:
            page.write_text(new, encoding="utf-8")
            written.append(page.relative_to(root).as_posix())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a generated block is stale")
    args = parser.parse_args(argv)
    status = 0
    missing = set(GENERATORS) - {n for names in blocks().values() for n in names}
    if missing:
        print(f"no page holds the generated block(s): {', '.join(sorted(missing))}",
              file=sys.stderr)
        status = 1
    if args.check:
        for page in stale_pages():
            print(f"stale generated table in {page}: run python scripts/docs_tables.py",
                  file=sys.stderr)
            status = 1
        return status
    for page in write():
        print(f"rewrote {page}")
    return status


if __name__ == "__main__":
    sys.exit(main())
