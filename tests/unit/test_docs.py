"""docs/operations.md documents every log line and every log field the code emits."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"
_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
_MESSAGE = re.compile(r"[a-z_]+\.[a-z_]+")
#: Fields every line carries (logs.py adds them) or that structlog adds (`exception`).
_ALWAYS = {"msg", "level", "ts", "component", "exception"}


def log_calls() -> Iterator[tuple[str, str, set[str]]]:
    """(file, msg, fields) of every `log.<level>("area.name", field=...)` call in hookd/.

    `level(...)` covers the `level = log.info if ... else log.warning` idiom; `_event=` is logged
    as `event` (logs.EventRenamer); `logs.canonical(component, level, "msg", {...})` (the attempt
    line's direct path) is read from its message and its dict's keys.
    """
    for path in sorted((ROOT / "hookd").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            if isinstance(node.func, ast.Attribute) and node.func.attr == "canonical" and len(node.args) == 4:
                msg, given = node.args[2], node.args[3]
                if isinstance(msg, ast.Constant) and isinstance(msg.value, str) and isinstance(given, ast.Dict):
                    keys = {k.value for k in given.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
                    yield str(path.relative_to(ROOT)), msg.value, {"event" if k == "_event" else k for k in keys}
                continue
            first, func = node.args[0], node.func
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            if not _MESSAGE.fullmatch(first.value):
                continue
            if (isinstance(func, ast.Attribute) and func.attr in _LEVELS) or (
                isinstance(func, ast.Name) and func.id == "level"
            ):
                fields = {"event" if k.arg == "_event" else k.arg for k in node.keywords if k.arg}
                yield str(path.relative_to(ROOT)), first.value, fields


def test_the_scan_finds_the_canonical_line() -> None:
    """The scanner sees delivery.attempt and its fields (so an empty scan cannot pass silently)."""
    found = {msg: fields for _, msg, fields in log_calls()}
    assert {"delivery_id", "attempt", "outcome", "duration_ms"} <= found["delivery.attempt"]


def test_every_log_message_is_documented() -> None:
    """Each `msg` the code logs appears, in backticks, in the guide's Logs section."""
    text = GUIDE.read_text(encoding="utf-8")
    missing = sorted({f"{msg} ({where})" for where, msg, _ in log_calls() if f"`{msg}`" not in text})
    assert not missing, f"log messages not documented in docs/operations.md: {missing}"


def test_every_log_field_is_documented() -> None:
    """Each field any log line carries has a row in the guide's field table."""
    text = GUIDE.read_text(encoding="utf-8")
    fields = set(_ALWAYS)
    for _, _, found in log_calls():
        fields |= found
    documented = {name for line in text.splitlines() if line.startswith("| `") for name in _first_cell(line)}
    missing = sorted(fields - documented)
    assert not missing, f"log fields without a row in docs/operations.md: {missing}"


def _first_cell(row: str) -> list[str]:
    """The backticked names in a table row's first cell: "| `a`, `b` | ..." gives a and b."""
    return re.findall(r"`([a-z_]+)`", row.split("|")[1])


def test_the_guide_covers_install_scaling_and_journal() -> None:
    """The install guide's promised parts are there."""
    text = GUIDE.read_text(encoding="utf-8")
    for needle in (
        "pip install",
        "systemctl enable --now hookd@{1..4}",
        "journalctl -u 'hookd@*' -o json",
        "/etc/hookd/hookd.env",
        "hookd dlq replay",
        "hookd explain",
        "/healthz",
    ):
        assert needle in text, needle
