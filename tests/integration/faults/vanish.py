"""A primary whose machine vanishes, for test_pg_failover: run as `unshare -n python vanish.py`.

Why a network namespace: a crash on the same machine resets every connection, so a client learns at
once; a machine that dies or drops off the network says nothing, and a client waits on TCP. Taking
an address away shows that without touching the machine's network: in a fresh namespace, the
primary and its standby are reached at addresses of their own (10.99.0.1 and .2 on loopback, each a
small TCP relay to the server on 127.0.0.1), and deleting 10.99.0.1 leaves every connection to it
unanswered, neither reset nor refused. Then the standby is promoted and a loop of transactions runs
on a `Database` whose idle pool still holds connections to the old primary.

Prints one JSON line: each transaction's start (s after the promotion), duration and outcome.
SIGTERM ends it cleanly (the servers are stopped and deleted); so does its own deadline.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from types import FrameType

from support.bootstrap.postgres import DATABASE, PrivatePostgres

from hookd.errors import StoreError
from hookd.state.db import MAX_IDLE_CONNECTIONS, Database

PRIMARY_ADDRESS, STANDBY_ADDRESS = "10.99.0.1", "10.99.0.2"
DEADLINE_S = 60.0  # after the promotion: stop looping, report what happened (a hang shows as one)
SUCCESSES = 3


def relay(address: str, port: int) -> int:
    """Listen on `address` and relay each connection to 127.0.0.1:`port`; return the port listened on."""
    listener = socket.socket()
    listener.bind((address, 0))
    listener.listen(16)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", port))
            except OSError:
                client.close()
                continue
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)  # fixed arguments, in our own namespace


def transactions(db: Database, since: float) -> list[dict[str, object]]:
    """Run transactions until SUCCESSES of them succeed or the deadline passes (on a daemon thread, so
    that one hanging forever is reported as such, not waited for)."""
    calls: list[dict[str, object]] = []

    def loop() -> None:
        successes = 0
        while successes < SUCCESSES and time.monotonic() - since < DEADLINE_S:
            started = time.monotonic()
            try:
                with db.transaction() as tx:
                    tx.fetchone("SELECT 1")
                outcome, successes = "ok", successes + 1
            except StoreError as exc:
                outcome = str(exc)[-200:]
            calls.append({"at_s": started - since, "took_s": time.monotonic() - started, "outcome": outcome})
            time.sleep(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    thread.join(DEADLINE_S + 5)
    if thread.is_alive():
        calls.append({"at_s": time.monotonic() - since, "took_s": None, "outcome": "hanging"})
    return calls


def main() -> None:
    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, terminate)
    ip("link", "set", "lo", "up")
    for address in (PRIMARY_ADDRESS, STANDBY_ADDRESS):
        ip("addr", "add", f"{address}/32", "dev", "lo")
    with PrivatePostgres() as primary, PrivatePostgres.standby_of(primary) as standby:
        hosts = f"{PRIMARY_ADDRESS}:{relay(PRIMARY_ADDRESS, primary.port)},"
        hosts += f"{STANDBY_ADDRESS}:{relay(STANDBY_ADDRESS, standby.port)}"
        db = Database.from_url(f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write")
        together = threading.Barrier(MAX_IDLE_CONNECTIONS)

        def hold() -> None:
            with db.transaction() as tx:
                tx.fetchone("SELECT 1")
                together.wait()

        holders = [threading.Thread(target=hold) for _ in range(MAX_IDLE_CONNECTIONS)]
        for holder in holders:
            holder.start()
        for holder in holders:
            holder.join()  # the pool is full: every idle connection is one to the primary
        ip("addr", "del", f"{PRIMARY_ADDRESS}/32", "dev", "lo")
        standby.promote()
        calls = transactions(db, time.monotonic())
    sys.stdout.write(json.dumps({"calls": calls}) + "\n")


if __name__ == "__main__":
    main()
