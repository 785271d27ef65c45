"""docs/architecture.md is held to the tree: its layout names every module and package of hookd/ and
nothing else, and its thread table names every thread hookd starts and nothing else."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hookd"
MAP = ROOT / "docs" / "architecture.md"
#: An entry of the layout: a module (`name.py`) or a folder (`name/`), first on its line.
_ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.py|/))(?:\s|$)")
#: A module named anywhere in the layout (in an entry or in a description).
_MODULE = re.compile(r"\b[a-z_][a-z0-9_]*\.py\b")
#: A thread's name in the table's first cell, before any description: `dns-N` (a numbered family,
#: started as f"dns-{n}") is the family `dns`.
_THREAD = re.compile(r"^\|\s*`?(?P<name>[A-Za-z][A-Za-z0-9]*(?:-[a-z0-9]+)*)")
#: Threads the table may name that hookd's code does not start: the process's own, and the one the
#: OpenTelemetry SDK's BatchSpanProcessor starts (under that name) when tracing exports spans.
_NOT_STARTED = {"main", "OtelBatchSpanProcessor"}


def layout_block() -> list[str]:
    """The lines of the fenced block under "## Layout" (the tree that starts with `hookd/`)."""
    text = MAP.read_text(encoding="utf-8")
    section = text[text.index("\n## Layout") :]
    start = section.index("```\n") + 4
    return section[start : section.index("```", start)].splitlines()


def layout_entries() -> Iterator[tuple[int, str]]:
    """(line number in the block, path relative to the repository) of every entry in the layout.

    Indentation is the tree: two spaces per level; an entry's parent is the last folder entry one
    level up. A line that does not start with a name at an entry's indentation continues the
    description above it.
    """
    parents: list[str] = []
    for number, line in enumerate(layout_block(), 1):
        found = _ENTRY.match(line)
        if found is None or len(found["indent"]) % 2 or len(found["indent"]) // 2 > len(parents):
            continue
        depth = len(found["indent"]) // 2
        path = "".join(parents[:depth]) + found["name"]
        if found["name"].endswith("/"):
            parents[depth:] = [found["name"]]
        yield number, path


def tree_entries() -> set[str]:
    """Every module and folder under hookd/ (as the layout names them), less `__init__.py` and caches."""
    found = {"hookd/"}
    for path in PACKAGE.rglob("*"):
        relative = path.relative_to(ROOT)
        if "__pycache__" in relative.parts or path.name == "__init__.py":
            continue
        if path.is_dir():
            found.add(f"{relative}/")
        elif path.suffix == ".py":
            found.add(str(relative))
    # A folder of assets (templates, stylesheets) is named, not each file in it.
    return {entry for entry in found if not _inside_assets(entry)}


def _inside_assets(entry: str) -> bool:
    parent = (ROOT / entry.rstrip("/")).parent
    return parent != PACKAGE and not (parent / "__init__.py").exists() and parent.is_relative_to(PACKAGE)


def test_the_layout_parser_reads_nested_entries() -> None:
    """The scan sees top-level modules and modules two levels down (so an empty scan cannot pass)."""
    entries = {path for _, path in layout_entries()}
    assert {"hookd/", "hookd/errors.py", "hookd/daemon/", "hookd/daemon/engine.py"} <= entries


def test_every_module_and_package_appears_in_the_layout() -> None:
    """Each module and package under hookd/ has its own line in the layout."""
    missing = sorted(tree_entries() - {path for _, path in layout_entries()})
    assert not missing, f"in hookd/ but not in docs/architecture.md's layout: {missing}"


def test_every_path_the_layout_names_exists() -> None:
    """Each entry of the layout is a module or folder that exists, where the tree puts it."""
    stale = sorted(f"{path} (line {number})" for number, path in layout_entries() if not (ROOT / path).exists())
    assert not stale, f"docs/architecture.md's layout names what hookd/ does not have: {stale}"


def test_every_module_a_description_names_exists() -> None:
    """A module named in a description (`sql_rows.py`, `db.py`...) is a module of hookd/."""
    modules = {path.name for path in PACKAGE.rglob("*.py")}
    named = {name for line in layout_block() for name in _MODULE.findall(line)}
    assert not named - modules, f"docs/architecture.md's layout names modules hookd/ lacks: {sorted(named - modules)}"


def thread_names() -> Iterator[tuple[str, str]]:
    """(where, name) of every thread hookd starts: `Thread(name=...)` and the `thread_name_prefix`
    of a pool. An f-string name counts by its fixed start (`f"hook-{id}"` is `hook`)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            keyword = {"Thread": "name", "ThreadPoolExecutor": "thread_name_prefix"}.get(called)
            for argument in node.keywords:
                if keyword is not None and argument.arg == keyword:
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", _literal_start(argument.value)


def _literal_start(value: ast.expr) -> str:
    """The fixed text a thread name starts with; "" when the scan cannot read it (a variable)."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    if isinstance(value, ast.JoinedStr) and value.values and isinstance(value.values[0], ast.Constant):
        return str(value.values[0].value).rstrip("-_ ")
    return ""


def table_threads() -> set[str]:
    """The threads the thread table of `hookd run` names (its first column)."""
    text = MAP.read_text(encoding="utf-8")
    section = text[text.index("\n## The thread model") :]
    section = section[: section.index("\n## ", 1)]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = itertools.takewhile(lambda line: line.startswith("|"), lines[start:])
    rows = list(table)[2:]  # the section's first table, less header and rule
    return {found["name"] for row in rows if (found := _THREAD.match(row))}


def test_the_thread_scan_finds_the_engine() -> None:
    """The scan sees the delivery engine's thread and the DNS pool (so an empty scan cannot pass)."""
    names = {name for _, name in thread_names()}
    assert {"delivery-engine", "dns"} <= names


def test_every_thread_name_can_be_read() -> None:
    """Thread names are literal (or start with a literal), so the map can be checked against them."""
    unreadable = sorted(where for where, name in thread_names() if not name)
    assert not unreadable, f"threads named by something other than a literal: {unreadable}"


def test_every_thread_hookd_starts_is_in_the_thread_table() -> None:
    """Each thread hookd names has a row in docs/architecture.md's thread table."""
    missing = sorted({f"{name} ({where})" for where, name in thread_names() if name and name not in table_threads()})
    assert not missing, f"threads missing from docs/architecture.md's thread table: {missing}"


def test_every_thread_in_the_table_exists() -> None:
    """Each row of the thread table names a thread hookd starts (or the main thread)."""
    started = {name for _, name in thread_names()}
    stale = sorted(table_threads() - started - _NOT_STARTED)
    assert not stale, f"docs/architecture.md's thread table names threads hookd does not start: {stale}"
