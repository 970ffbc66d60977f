"""(Re)write the documentation's generated tables from the code that defines them.

A generated table sits in a page (README.md or docs/*.md) between two marker comments:

    <!-- generated: corruption-table -->
    ...
    <!-- end generated -->

    python scripts/docs_tables.py           # rewrite every block that differs
    python scripts/docs_tables.py --check   # exit 1, naming each stale page, if any differs

Generators: `corruption-table` (how the torch backend implements each corruption, from the
corruption specs), `methods` (the registered methods and test-time adaptations with their family and
summary) and
`source-layout` (every module of rambench/, corruptions/ and baselines/ with the first line
of its docstring).

A published results table is written from a committed result bundle (`rambench bundle`),
never pasted: between two markers, each alone on its line (outside fenced code),

    <!-- results: results/NAME view=main -->
    ...
    <!-- /results -->

the block is `ResultSet.from_bundle("results/NAME").table(view).render("md")`; the bundle's
path is relative to the repository root; options: `view=` (default main; any view of
`rambench table`), `against=METHOD` (the ▲/▼ marks) and `reference=METHOD` (mCE's). A bundle
that does not match its manifest, or a block naming no bundle, is an error (exit 1).
"""

from __future__ import annotations

import argparse
import ast
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- end generated -->)", re.S)
SOURCE_PACKAGES = ("rambench", "corruptions", "baselines")
RESULTS = re.compile(r"^(<!-- results: (?P<spec>[^\n]*?) -->\n)(?P<body>.*?)"
                     r"^(<!-- /results -->)$", re.S | re.M)
RESULTS_OPTIONS = ("view", "against", "reference")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)


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
    from rambench.methods.adaptation import adaptations

    for name in adaptations.names():
        cls = adaptations.get(name)
        if cls.__module__.startswith(SOURCE_PACKAGES):
            rows.append(f"| `+{name}` | test-time adaptation | "
                        f"{cls.summary().replace('|', '&#124;')} |")
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


def results_table(spec: str, root: Path = ROOT) -> str:
    """The table a results block asks for (`<!-- results: BUNDLE view=V against=M -->`),
    from the bundle alone: `ResultSet.from_bundle(root / BUNDLE).table(...).render("md")`.
    ValueError (naming the block) for a bad option, a missing or unsound bundle."""
    _importable(root)
    import rambench.report.views  # noqa: F401 - on import, serves ResultSet.table
    from rambench.errors import UsageError
    from rambench.report import VIEWS

    bundle, *pairs = spec.split()
    options = {"view": "main"}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or key not in RESULTS_OPTIONS or not value:
            raise ValueError(f"results block {spec!r}: {pair!r} is not an option; options: "
                             + ", ".join(f"{o}=..." for o in RESULTS_OPTIONS))
        options[key] = value
    if options["view"] not in VIEWS:
        raise ValueError(f"results block {spec!r}: unknown view {options['view']!r}; views: "
                         + ", ".join(VIEWS))
    try:
        results = _bundle_results(root / bundle)
        against = options.get("against")
        if against is not None:
            results.check_method(against, "against=")
        table = results.table(options["view"], options.get("reference"), against)
    except UsageError as err:
        raise ValueError(f"results block {spec!r}: {err}") from None
    return table.render("md")


def _bundle_results(path: Path):
    """The bundle's ResultSet, read and verified once for all the blocks that show it (a
    bundle rewritten since is read again)."""
    stamp = tuple((path / name).stat().st_mtime_ns if (path / name).exists() else None
                  for name in ("manifest.json", "records.jsonl.xz", "study.yaml"))
    return _read_bundle(path.resolve(), stamp)


@functools.lru_cache(maxsize=8)
def _read_bundle(path: Path, stamp: tuple):
    from rambench.results import ResultSet

    return ResultSet.from_bundle(path)


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

    fenced = [m.span() for m in FENCE.finditer(text)]

    def results(match: re.Match) -> str:
        if any(start <= match.start() < end for start, end in fenced):
            return match[0]  # an example in a code block
        key = f"results: {match['spec'].strip()}"
        if key not in cache:
            cache[key] = results_table(match["spec"].strip(), root)
        return f"{match[1]}\n{cache[key]}\n\n{match[4]}"

    return RESULTS.sub(results, BLOCK.sub(block, text))


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
    try:
        return _run(args.check)
    except ValueError as err:  # a bad block, or a results block's bundle missing or unsound
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(check: bool) -> int:
    status = 0
    missing = set(GENERATORS) - {n for names in blocks().values() for n in names}
    if missing:
        print(f"no page holds the generated block(s): {', '.join(sorted(missing))}",
              file=sys.stderr)
        status = 1
    if check:
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
