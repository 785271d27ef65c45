"""Service bootstrap for test and development machines: private RabbitMQ nodes and clusters, a private
PostgreSQL, and the session's choice between the configured services and private ones.

It lives in the test tree, not in the `hookd` wheel: it runs apt-get, writes /usr/sbin/policy-rc.d
and starts servers, which no production install should carry (hookd ships only its in-memory
`hookd.testing.stub_broker`, as dramatiq ships its `StubBroker`). Its users are the test suite
(`support.services` and the suites' conftests) and `make demo`, which puts tests/ on its path.

- `devbroker`: a private, throw-away RabbitMQ node (`PrivateBroker`), AMQP probes, `free_port`;
- `cluster`: a private RabbitMQ cluster of such nodes (`RabbitCluster`);
- `postgres`: a private, throw-away PostgreSQL cluster (`PrivatePostgres`), and its standbys;
- `services`: the configured service when it answers, else a private one (installing missing Debian
  packages when root); Debian's Chromium for the browser tests.

Its errors are not hookd's (they never reach a daemon) and have a root of their own:

    BootstrapError
    ├── DevBrokerError        (devbroker) a private node could not start; the message has its output
    ├── ClusterError          (cluster) the cluster could not be built, or a node did not rejoin
    ├── PrivatePostgresError  (postgres) the private PostgreSQL could not be set up or started
    └── ServiceUnavailable    (services) a service cannot be had: one line saying what to install

Each server is a `Started`: `start()` and `close()`, and a context manager that closes what a
failed start left behind.

Nothing here imports pika (the probes speak the AMQP header by hand) or pytest.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class BootstrapError(Exception):
    """Root of the errors of the service bootstrap (test and development machines only)."""


class Started:
    """A server this process starts and stops: `with X(...) as x:` starts it, and closes it on the way
    out, or at once when the start failed half way (a node up, its cluster not formed)."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
