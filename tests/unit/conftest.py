"""Factory fixtures for the unit tests: build what a test needs from values, no network."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.scripted import Script, ScriptedReceiver

from hookd import logs
from hookd.subscriptions.model import Hook

HookFactory = Callable[..., Hook]


@pytest.fixture
def make_hook() -> HookFactory:
    """Build a `Hook` with sensible defaults; keyword arguments override any field."""
    counter = iter(range(1, 1_000_000))

    def factory(**overrides: Any) -> Hook:
        fields: dict[str, Any] = {
            "id": str(next(counter)),
            "account_id": "acme",
            "url": "https://hooks.example.com/in",
            "events": ("job.failed",),
            "secret": "s3cr3t-value",
        }
        fields.update(overrides)
        return Hook(**fields)

    return factory


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write `text` to `tmp_path / name` and return the path (removed with tmp_path)."""

    def factory(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return factory


@pytest.fixture
def secrets_registry() -> Iterator[None]:
    """An empty registry of masked values for the test, emptied again afterwards."""
    logs.clear_secrets()
    yield
    logs.clear_secrets()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptedReceiver]]:
    """Start raw-socket receivers that answer as scripted (tests/support/scripted.py); closed afterwards."""
    started: list[ScriptedReceiver] = []

    def start(script: Script) -> ScriptedReceiver:
        started.append(ScriptedReceiver(script))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()
