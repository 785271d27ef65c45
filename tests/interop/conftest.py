"""Fixtures of the interop suite: hookd's real daemon and client against servers that others wrote
(tests/interop/servers.py) and against hostile raw-socket receivers (tests/interop/hostile.py).

Lean by design: each module starts its servers and one hookd once, publishes every case's event at
once, and its parametrised tests then read what each case came to (interop/harness.py). The queues,
the exchange and the processes are removed afterwards (hookd and the servers by pid).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support.factory import HookdFactory
from support.helpers import Amqp, Names

from interop.harness import DELIVERY


@pytest.fixture(scope="module")
def names(broker_url: str) -> Iterator[Names]:
    """The module's own exchange and queues: deleted after it, once its hookd has stopped."""
    token = uuid.uuid4().hex[:10]
    module_names = Names(prefix=f"hookd-interop-{token}", exchange=f"hookd-interop-{token}.exchange")
    module_names.retry_delays_s.update(DELIVERY["retry_delays_s"])
    yield module_names
    for step in module_names.before_delete:
        step()
    with Amqp(broker_url) as channel:
        channel.delete(module_names)


@pytest.fixture(scope="module")
def amqp(broker_url: str) -> Iterator[Amqp]:
    """The module's publishing channel, as the scheduler publishes."""
    with Amqp(broker_url) as channel:
        yield channel


@pytest.fixture(scope="module")
def hookd_factory(broker_url: str, names: Names, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HookdFactory]:
    """Starts the module's hookd; stopped (SIGTERM, then kill) before its queues are deleted."""
    factory = HookdFactory(broker_url, names, tmp_path_factory.mktemp("hookd"))
    yield factory
    for process in factory.processes:
        process.terminate()
    names.before_delete.append(factory.stop_all)
