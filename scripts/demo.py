"""`make demo`: hookd end to end on this machine, then everything it made is removed again.

What it does: finds a RabbitMQ broker, starts a verifying receiver (`hookd receive`) and the daemon
(`hookd run`) on a private copy of config/demo, publishes four scheduler events and one ping with
the `hookd` CLI, and waits (30 s at most) until the receiver has verified the signature of each of
the six expected deliveries:

    hook 1 (acme, job + cluster)       job.completed, job.failed, cluster.available
    hook 2 (acme, failures only)       job.failed, ping
    hook 3 (globex, job)               job.started

Exit status 0 only if all six were verified and hookd stopped cleanly on SIGTERM; otherwise it says
what is missing, shows the end of hookd's log, and keeps the work directory for a look.

Which broker, in this order:
    HOOKD_DEMO_PRIVATE_BROKER=1   always start a private RabbitMQ node (tests/support/bootstrap) on a free
                                  port, ignoring HOOKD_AMQP_URL and 5672: tests that path
    HOOKD_AMQP_URL=amqp://...     that broker
    127.0.0.1:5672                if it answers AMQP
    otherwise                     a private node; RabbitMQ is installed with apt-get first if it is
                                  missing and we are root (if not root: how to install it, exit 1)

Runs never interfere with each other or with the test suite: a unique queue prefix and exchange
(`hookd-demo-<pid>-<random>`), free ports, and the queues and exchange are deleted at the end.
No input is read; Ctrl-C or SIGTERM still cleans up.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# The private node comes from the test tree's bootstrap (tests/support/bootstrap), which the hookd
# wheel does not ship: the demo runs from a checkout, where the tests are, and one implementation of
# a private node (its isolated environment, its process-group reaping) is enough to keep right.
sys.path.insert(0, str(ROOT / "tests"))

try:
    import yaml
    from support.bootstrap import devbroker

    from hookd.broker import BrokerConnection, NodeRing, topology_for
    from hookd.config import AMQP_URL_ENV, DEFAULT_AMQP_URL, load_settings, redact_url
    from hookd.errors import HookdError
except ImportError as exc:  # run with a Python that does not have hookd installed
    sys.exit(f"demo: {exc}; run it with `make demo` (it uses the project's .venv)")

DEMO_CONFIG = ROOT / "config" / "demo"
SAMPLES = ROOT / "config" / "samples"
PRIVATE_ENV = "HOOKD_DEMO_PRIVATE_BROKER"
DEADLINE_S = 30.0

#: What the demo publishes: (event, account, sample file). Then `hookd ping 2`.
PUBLISH = [
    ("job.completed", "acme", "job.json"),
    ("job.failed", "acme", "job.json"),
    ("cluster.available", "acme", "cluster.json"),
    ("job.started", "globex", "job.json"),
]
PING_HOOK = "2"
#: (event, hook id) of every delivery the receiver must verify, given config/demo/hooks.yaml.
EXPECTED = Counter(
    [
        ("job.completed", "1"),
        ("job.failed", "1"),
        ("cluster.available", "1"),
        ("job.failed", "2"),
        ("ping", "2"),
        ("job.started", "3"),
    ]
)
_RECEIVED = re.compile(r"^(?P<event>\S+) hook=(?P<hook>\S+) delivery=\S+ attempt=\S+ signature (?P<result>.*)$")
_print_lock = threading.Lock()


class DemoFailed(Exception):
    """A step failed; the message says which and why."""


def say(text: str = "", stream: TextIO = sys.stdout) -> None:
    with _print_lock:
        print(text, file=stream, flush=True)


def section(title: str) -> None:
    say(f"\n== {title}")


# -- child processes ---------------------------------------------------------------------------------
class Child:
    """A long-running subprocess whose combined output is read line by line on a thread.

    It runs in its own session so a Ctrl-C in the terminal reaches only the demo, which then stops
    it on purpose (a second signal would make hookd exit abruptly).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.lines: list[str] = []
        self._on_line = on_line
        self._log = log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            self.lines.append(line)
            self._log.write(raw)
            self._log.flush()
            if self._on_line is not None:
                self._on_line(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: signal.Signals, timeout_s: float) -> int:
        """Send `sig`, wait, SIGKILL if it does not exit in time; return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                say(f"demo: {self.name} did not exit {timeout_s:g} s after {sig.name}; killing it", sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._log.close()
        return self.proc.returncode


def hookd_command() -> list[str]:
    """The venv's `hookd` console script next to this Python, or `python -m hookd`."""
    script = Path(sys.executable).parent / "hookd"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hookd"]


def json_logs(lines: list[str]) -> list[dict[str, Any]]:
    records = []
    for line in list(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "msg" in record:
            records.append(record)
    return records


def wait_until(condition: Callable[[], bool], deadline: float, *children: Child) -> bool:
    """Poll `condition` until it holds or the deadline passes; fail early if a child exits."""
    while time.monotonic() < deadline:
        if condition():
            return True
        for child in children:
            if not child.alive():
                raise DemoFailed(f"{child.name} exited with status {child.proc.returncode}")
        time.sleep(0.05)
    return condition()


# -- broker ------------------------------------------------------------------------------------------
def choose_broker() -> tuple[str, devbroker.PrivateBroker | None]:
    """The broker URL to use, and the private node if we had to start one."""
    forced = os.environ.get(PRIVATE_ENV, "") not in ("", "0")
    url = os.environ.get(AMQP_URL_ENV, "")
    if url and not forced:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (5671 if parts.scheme == "amqps" else 5672)
        if not devbroker.reachable(host, port, timeout=3.0):
            raise DemoFailed(f"nothing answers at {host}:{port} ({AMQP_URL_ENV}={redact_url(url)})")
        say(f"using {AMQP_URL_ENV}={redact_url(url)}")
        return url, None
    if not forced and devbroker.speaks_amqp("127.0.0.1", 5672, timeout=2.0):
        say("using the local RabbitMQ on 127.0.0.1:5672")
        return DEFAULT_AMQP_URL, None
    why = f"{PRIVATE_ENV} is set" if forced else "nothing answers AMQP on 127.0.0.1:5672"
    if not devbroker.installed():
        install_rabbitmq()
    broker = devbroker.PrivateBroker()
    say(f"{why}: starting a private RabbitMQ node on port {broker.port} (about 10 s)")
    started = time.monotonic()
    try:
        broker.start(timeout_s=60)
    except BaseException:
        broker.close()
        raise
    say(f"private node {broker.node} ready in {time.monotonic() - started:.1f} s")
    return broker.url, broker


def install_rabbitmq() -> None:
    """Install Debian's rabbitmq-server if we may; otherwise explain how and stop."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DemoFailed(
            "RabbitMQ is needed and none is running. Either install it "
            "(Debian/Ubuntu: sudo apt-get install -y rabbitmq-server), or start one "
            "(docker run -d -p 5672:5672 rabbitmq:3), or point HOOKD_AMQP_URL at an existing broker; "
            "then run `make demo` again."
        )
    section("installing rabbitmq-server with apt-get (one time)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "rabbitmq-server"]):
        say("$ " + " ".join(argv))
        if subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=False).returncode != 0:
            raise DemoFailed(f"`{' '.join(argv)}` failed")
    if not devbroker.installed():
        raise DemoFailed(f"rabbitmq-server was installed but {devbroker.SERVER_SCRIPT} is missing")


# -- configuration -----------------------------------------------------------------------------------
def write_config(work: Path, name: str, receiver_port: int) -> Path:
    """Copy config/demo into `work`: our queue prefix and exchange, JSON logs, hooks on our port."""
    config = yaml.safe_load((DEMO_CONFIG / "hookd.yaml").read_text(encoding="utf-8")) or {}
    config.setdefault("broker", {}).update({"queue_prefix": name, "exchange": f"{name}.events"})
    config["logging"] = {"format": "json", "level": "info"}
    config.setdefault("subscriptions", {})["path"] = "hooks.yaml"
    hooks = yaml.safe_load((DEMO_CONFIG / "hooks.yaml").read_text(encoding="utf-8"))
    for hook in hooks["hooks"]:
        parts = urlsplit(hook["url"])
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise DemoFailed(f"demo hook {hook['id']} does not point at the local receiver: {hook['url']}")
        hook["url"] = urlunsplit(parts._replace(netloc=f"127.0.0.1:{receiver_port}"))
    (work / "hooks.yaml").write_text(yaml.safe_dump(hooks, sort_keys=False), encoding="utf-8")
    path = work / "hookd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def delete_topology(config: Path, env: dict[str, str]) -> None:
    """Delete the demo's queues and exchange (they are uniquely named, but need not pile up)."""
    settings = load_settings(config, environ=env)
    conn = BrokerConnection(NodeRing(settings.broker.urls), topology_for(settings), name="hookd demo cleanup")
    delete = getattr(conn, "delete_topology", None)
    if not callable(delete):
        say(f"note: left queues {settings.broker.queue_prefix}.* (this hookd has no delete_topology())")
        return
    conn.connect(declare=False)
    try:
        delete()
    finally:
        conn.close()
    say(f"deleted queues {settings.broker.queue_prefix}.* and exchange {settings.broker.exchange}")


# -- the demo ----------------------------------------------------------------------------------------
@dataclass
class Run:
    """What the demo started, so that clean-up can undo exactly that, however far it got."""

    work: Path
    url: str = ""
    broker: devbroker.PrivateBroker | None = None
    children: list[Child] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.work / "hookd.yaml"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env[AMQP_URL_ENV] = self.url
        return env


def run_cli(argv: list[str], env: dict[str, str]) -> None:
    """Run one short `hookd` command, echo it and its output; raise if it fails."""
    shown = " ".join(a if "/" not in a else Path(a).name for a in argv[len(hookd_command()) :])
    say(f"$ hookd {shown}")
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    for line in (result.stdout + result.stderr).splitlines():
        say(f"  {line}")
    if result.returncode != 0:
        raise DemoFailed(f"`hookd {shown}` exited with status {result.returncode}")


def demo(run: Run) -> bool:
    """Start receiver and daemon, publish, wait for the deliveries; True if all were verified."""
    name = f"hookd-demo-{os.getpid()}-{secrets.token_hex(3)}"
    port = devbroker.free_port()
    config = write_config(run.work, name, port)
    hookd, env = hookd_command(), run.env()

    section(f"receiver and daemon (queue prefix {name}, receiver port {port})")
    received: Counter[tuple[str, str]] = Counter()
    failed: list[str] = []

    def on_receiver_line(line: str) -> None:
        say(f"  receiver | {line}")
        match = _RECEIVED.match(line)
        if match is None:
            return
        if match["result"] == "verified":
            received[(match["event"], match["hook"])] += 1
        else:
            failed.append(line)

    receiver = Child(
        "hookd receive",
        [*hookd, "receive", "--port", str(port), "--config", str(config)],
        env,
        run.work / "receiver.log",
        on_receiver_line,
    )
    run.children.append(receiver)
    daemon = Child("hookd run", [*hookd, "run", "--config", str(config)], env, run.work / "hookd.log")
    run.children.append(daemon)

    def logged(msg: str) -> list[dict[str, Any]]:
        return [r for r in json_logs(daemon.lines) if r["msg"] == msg]

    deadline = time.monotonic() + DEADLINE_S
    if not wait_until(lambda: devbroker.reachable("127.0.0.1", port, 0.2), deadline, receiver):
        raise DemoFailed(f"the receiver did not listen on port {port} within {DEADLINE_S:g} s")
    if not wait_until(lambda: bool(logged("broker.connected")), deadline, daemon):
        raise DemoFailed(f"hookd did not log broker.connected within {DEADLINE_S:g} s")
    say(f"  hookd    | broker.connected to {redact_url(run.url)}")

    section("publishing events as the scheduler would, and a ping")
    started = time.monotonic()
    for event, account, sample in PUBLISH:
        run_cli([*hookd, "publish", event, "--account", account, "--config", str(config), str(SAMPLES / sample)], env)
    run_cli([*hookd, "ping", PING_HOOK, "--config", str(config)], env)

    section(f"waiting for {EXPECTED.total()} verified deliveries (at most {DEADLINE_S:g} s)")

    def delivered() -> int:
        return sum(1 for r in logged("delivery.attempt") if r.get("outcome") == "delivered")

    def complete() -> bool:
        return all(received[key] >= n for key, n in EXPECTED.items()) and delivered() >= EXPECTED.total()

    wait_until(complete, time.monotonic() + DEADLINE_S, receiver, daemon)
    elapsed = time.monotonic() - started

    section("summary")
    verified = sum(min(received[key], n) for key, n in EXPECTED.items())
    say(
        f"{verified} of {EXPECTED.total()} deliveries verified by the receiver, {elapsed:.1f} s after the first publish"
    )
    missing = EXPECTED - received
    for (event, hook), count in sorted(missing.items()):
        say(f"  missing: {event} for hook {hook}" + (f" (x{count})" if count > 1 else ""))
    for (event, hook), count in sorted((received - EXPECTED).items()):
        say(f"  extra:   {event} for hook {hook} x{count} (a redelivery, or hooks that differ from the demo's)")
    for line in failed:
        say(f"  FAILED:  {line}")
    if delivered() < EXPECTED.total():
        say(f"  hookd logged {delivered()} successful delivery.attempt lines, expected {EXPECTED.total()}")
    attempts = logged("delivery.attempt")
    if attempts:
        say("one of hookd's delivery.attempt log lines (JSON on its stdout):")
        say("  " + json.dumps(attempts[0], separators=(",", ":")))
    return not missing and not failed and delivered() >= EXPECTED.total()


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    signal.signal(signal.SIGTERM, _raise_on_signal)
    signal.signal(signal.SIGHUP, _raise_on_signal)
    started = time.monotonic()
    run = Run(Path(tempfile.mkdtemp(prefix="hookd-demo-")))
    ok = False
    try:
        section("broker")
        run.url, run.broker = choose_broker()
        ok = demo(run)
    except (DemoFailed, HookdError, OSError) as exc:  # DevBrokerError is a HookdError
        say(f"\ndemo: FAILED: {exc}", sys.stderr)
    except KeyboardInterrupt:
        say("\ndemo: interrupted, cleaning up", sys.stderr)
    finally:
        clean = cleanup(run, show_log=not ok)
    ok = ok and clean
    if ok or not any(run.work.iterdir()):
        shutil.rmtree(run.work, ignore_errors=True)
    else:
        say(f"logs and config kept in {run.work}")
    say(f"\ndemo: {'OK' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s")
    return 0 if ok else 1


def cleanup(run: Run, *, show_log: bool) -> bool:
    """Stop everything the demo started; False if hookd did not exit 0 or the queues stayed."""
    section("cleaning up")
    clean = True
    for child in reversed(run.children):  # the daemon first, while the receiver still answers
        if child.name != "hookd run":
            # SIGTERM, not SIGINT: a shell starts background jobs with SIGINT ignored, and children inherit that.
            child.stop(signal.SIGTERM, timeout_s=5)
            continue
        status = child.stop(signal.SIGTERM, timeout_s=20)
        say(f"hookd run stopped on SIGTERM with exit status {status}")
        if status != 0 or show_log:
            clean = clean and status == 0
            say("the end of hookd's log:", sys.stderr)
            for line in child.lines[-20:]:
                say(f"  {line}", sys.stderr)
    if run.config.exists() and run.url:
        try:
            delete_topology(run.config, run.env())
        except HookdError as exc:
            say(f"demo: could not delete the demo's queues: {exc}", sys.stderr)
            clean = False
    if run.broker is not None:
        run.broker.close()
        say(f"private node {run.broker.node} stopped and removed")
    return clean


if __name__ == "__main__":
    sys.exit(main())
