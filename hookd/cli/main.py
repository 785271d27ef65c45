"""The `hookd` command line: run the daemon, publish events, ping hooks, receive, check config.

Exit codes: 0 success, 1 runtime failure (e.g. broker unreachable), 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from hookd import __version__, logs
from hookd.broker import topology_for
from hookd.cli import db, deliveries, dlq, explain, hooks
from hookd.cli.common import broker_connection, sqlite_file_missing
from hookd.config import AMQP_URL_ENV, DEFAULT_AMQP_URL, Settings, load_settings
from hookd.daemon.daemon import Daemon
from hookd.errors import ConfigError, EventError, HookdError, StoreError
from hookd.events import EVENTS
from hookd.filesafety import permission_problems
from hookd.netpolicy import NetworkPolicy
from hookd.publisher import ping_message, publish_event
from hookd.receiver import serve
from hookd.state.db import Database
from hookd.state.history import HistoryWriter
from hookd.subscriptions.factory import open_store
from hookd.subscriptions.matching import HookSet
from hookd.subscriptions.yaml_store import YamlStore

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

_EPILOG = """examples:
  hookd run --config config/hookd.yaml
  hookd publish job.completed --account acme --config config/hookd.yaml job.json
  hookd ping 42 --config config/hookd.yaml
  hookd receive --port 8765 --config config/hookd.yaml
  hookd check-config --config config/hookd.yaml
  hookd hooks list --config config/hookd.yaml
  hookd deliveries list --status failed --since 2h --config config/hookd.yaml
  hookd db upgrade --config config/hookd.yaml
  hookd dlq list --hook 42 --since 24h --config config/hookd.yaml
  hookd dlq replay --hook 42 --rate 5/s --config config/hookd.yaml
  hookd explain --account acme job.failed --config config/hookd.yaml
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookd",
        description="Deliver the scheduler's job and cluster events to account webhooks, signed.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hookd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run the delivery daemon", epilog="example: hookd run --config /etc/hookd/hookd.yaml"
    )
    run.add_argument("--config", required=True, type=Path, help="path to hookd.yaml")

    pub = sub.add_parser(
        "publish",
        help="publish one lifecycle event (the scheduler's side)",
        epilog="example: hookd publish job.failed --account acme --id evt-1 job.json",
    )
    pub.add_argument("event", choices=sorted(EVENTS), metavar="EVENT", help="event name, e.g. job.completed")
    pub.add_argument("file", metavar="FILE|-", help="JSON resource body, or - for standard input")
    pub.add_argument("--account", required=True, help="account id (header account_id)")
    pub.add_argument("--id", dest="event_id", help="event id (message_id); a UUID by default")
    pub.add_argument("--config", type=Path, help="hookd.yaml: broker and exchange, and declare hookd's queues")

    ping = sub.add_parser(
        "ping", help="send a ping event to one hook", epilog="example: hookd ping 42 --config hookd.yaml"
    )
    ping.add_argument("hook_id", metavar="HOOK_ID")
    ping.add_argument("--config", required=True, type=Path)

    rcv = sub.add_parser(
        "receive",
        help="run a local receiver that verifies signatures",
        epilog="example: hookd receive --port 8765 --config config/hookd.yaml",
    )
    rcv.add_argument("--port", type=int, required=True)
    rcv.add_argument("--host", default="127.0.0.1")
    rcv.add_argument("--config", type=Path, help="hookd.yaml: verify with the secrets of its hooks")
    rcv.add_argument("--secret", action="append", default=[], help="a secret to verify with (repeatable)")
    rcv.add_argument("--status", type=int, help="answer every request with this HTTP status")

    chk = sub.add_parser(
        "check-config",
        help="validate the config and hooks files",
        epilog="example: hookd check-config --config hookd.yaml",
    )
    chk.add_argument("--config", required=True, type=Path)

    hooks.register(sub)
    deliveries.register(sub)
    db.register(sub)
    dlq.register(sub)
    explain.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handler = _COMMANDS[args.command]
        return handler(args)
    except ConfigError as exc:
        print(f"hookd: configuration error in {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EventError as exc:
        print(f"hookd: invalid event: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HookdError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _settings(path: Path) -> Settings:
    return load_settings(path)


def _hooks(settings: Settings) -> HookSet:
    return open_store(settings, migrate=False).load()


def _history(settings: Settings) -> HistoryWriter | None:
    """The history writer, or None (disabled, or its database unusable: deliveries go on regardless)."""
    if not settings.state.history:
        return None
    db = Database.from_url(settings.state.url)
    try:
        db.migrate()
    except StoreError as exc:
        logs.get_logger("hookd.cli").error("history.unavailable", error=str(exc))
        return None
    return HistoryWriter(db, retention_days=settings.state.retention_days)


def _cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    logs.configure(settings.logging.format, settings.logging.level, threaded=True)
    for problem in permission_problems(args.config):
        logs.get_logger("hookd.cli").warning("config.permissions", problem=problem)
    daemon = Daemon(settings, open_store(settings), history=_history(settings))
    daemon.install_signal_handlers()
    return daemon.run()


def _cmd_publish(args: argparse.Namespace) -> int:
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"hookd: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if args.config:
        settings = _settings(args.config)
        url, exchange, topology = settings.broker.url, settings.broker.exchange, topology_for(settings)
    else:
        url, exchange, topology = os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL, "hookd.events", None
    event_id = publish_event(
        args.event, args.account, body, url=url, exchange=exchange, event_id=args.event_id, topology=topology
    )
    print(f"published {args.event} id={event_id} account={args.account}")
    return EXIT_OK


def _cmd_ping(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    hook = _hooks(settings).get(str(args.hook_id))
    if hook is None:
        print(f"hookd: no hook with id {args.hook_id!r}", file=sys.stderr)
        return EXIT_USAGE
    with broker_connection(settings, name="hookd ping") as conn:
        message, delivery = ping_message(hook, conn.topology)
        conn.publish(message)
    print(f"ping queued for hook {hook.id} delivery={delivery}")
    return EXIT_OK


def _cmd_receive(args: argparse.Namespace) -> int:
    secrets: dict[str, list[str]] = {}
    if args.config:
        for hook in _hooks(_settings(args.config)):
            secrets.setdefault(hook.id, []).append(hook.secret)
    extra: list[str] = list(args.secret)
    if not secrets and not extra:
        print("hookd: receive needs --config or at least one --secret to verify with", file=sys.stderr)
        return EXIT_USAGE
    try:
        serve(args.host, args.port, lambda hook_id: secrets.get(hook_id, []) + extra, status=args.status)
    except OSError as exc:
        print(f"hookd: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the config file and the hooks source, listing every problem of both before exiting."""
    failures: list[ConfigError] = []
    settings: Settings | None = None
    try:
        settings = _settings(args.config)
    except ConfigError as exc:
        failures.append(exc)
    hooks_path = settings.subscriptions.path if settings else _raw_hooks_path(args.config)
    hooks: HookSet | None = None
    try:
        if settings is not None:
            hooks = _checked_hooks(settings)
        elif hooks_path is not None:
            hooks = YamlStore(hooks_path).load()
    except ConfigError as exc:
        failures.append(exc)
    if failures:
        for failure in failures:
            print(f"hookd: configuration error in {failure}", file=sys.stderr)
        return EXIT_USAGE
    assert settings is not None and hooks is not None
    source = settings.subscriptions.path or settings.subscriptions.source
    print(f"{args.config}: ok ({len(hooks)} hooks from {source})")
    # Valid, but refused on every attempt: say so now rather than in the dead-letter queue.
    policy = NetworkPolicy.from_settings(settings.delivery)
    for hook in hooks:
        why = policy.for_hook(hook.allow_private).url_problem(hook.url)
        if why is not None:
            print(
                f"hookd: warning: hook {hook.id}: {why}; its deliveries will be dead-lettered (ssrf_blocked)",
                file=sys.stderr,
            )
    return EXIT_OK


def _checked_hooks(settings: Settings) -> HookSet:
    """The hooks, for check-config: a database is read as it is, never created or migrated, and a
    database that cannot be read is a problem of `subscriptions.url` (exit 2), not a crash."""
    url = settings.subscriptions.url
    if settings.subscriptions.source != "db" or url is None:
        return _hooks(settings)
    if sqlite_file_missing(url):
        return HookSet()  # created by `hookd run` or `hookd db upgrade`: nothing to check yet
    try:
        return _hooks(settings)
    except StoreError as exc:
        raise ConfigError([f"subscriptions.url: cannot read the hooks: {exc}"], str(settings.source)) from None


def _raw_hooks_path(config: Path) -> Path | None:
    """Best effort, for check-config when the config is invalid: where its hooks file would be."""
    try:
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
        raw = doc["subscriptions"]["path"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, TypeError, KeyError):
        return None
    if not isinstance(raw, str) or not raw:
        return None
    return Path(raw) if Path(raw).is_absolute() else config.parent / raw


_COMMANDS = {
    "run": _cmd_run,
    "publish": _cmd_publish,
    "ping": _cmd_ping,
    "receive": _cmd_receive,
    "check-config": _cmd_check_config,
    "hooks": hooks.run,
    "deliveries": deliveries.run,
    "db": db.run,
    "dlq": dlq.run,
    "explain": explain.run,
}


if __name__ == "__main__":
    sys.exit(main())
