"""`hookd publish`: publish one lifecycle event, as the scheduler does.

Trace context comes from the environment, the convention of tools that run commands inside a trace:
`TRACEPARENT` (and `TRACESTATE`), W3C format; an invalid one is ignored (hookd starts a trace).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hookd.broker import topology_for
from hookd.cli.args import EXIT_OK, Subparsers, add_command
from hookd.config import AMQP_URL_ENV, DEFAULT_AMQP_URL, DEFAULT_EXCHANGE, amqp_urls, load_settings
from hookd.errors import UsageError
from hookd.events import EVENTS
from hookd.publisher import publish_event
from hookd.tracecontext import TRACEPARENT, TRACESTATE, from_headers


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "publish",
        help_text="publish one lifecycle event (the scheduler's side)",
        epilog="example: hookd publish job.failed --account acme --id evt-1 job.json",
        handler=_publish,
    )
    p.add_argument("event", choices=sorted(EVENTS), metavar="EVENT", help="event name, e.g. job.completed")
    p.add_argument("file", metavar="FILE|-", help="JSON resource body, or - for standard input")
    p.add_argument("--account", required=True, help="account id (header account_id)")
    p.add_argument("--id", dest="event_id", help="event id (message_id); a UUID by default")
    p.add_argument("--config", type=Path, help="hookd.yaml: broker and exchange, and declare hookd's queues")


def _publish(args: argparse.Namespace) -> int:
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.config:
        settings = load_settings(args.config)
        urls, exchange, topology = settings.broker.urls, settings.broker.exchange, topology_for(settings)
    else:
        urls, exchange, topology = amqp_urls(os.environ.get(AMQP_URL_ENV) or DEFAULT_AMQP_URL), DEFAULT_EXCHANGE, None
    trace = from_headers({TRACEPARENT: os.environ.get("TRACEPARENT"), TRACESTATE: os.environ.get("TRACESTATE")})
    event_id = publish_event(
        args.event,
        args.account,
        body,
        url=list(urls),
        exchange=exchange,
        event_id=args.event_id,
        topology=topology,
        trace=trace,
    )
    shown = f" trace={trace.trace_id}" if trace is not None else ""
    print(f"published {args.event} id={event_id} account={args.account}{shown}")
    return EXIT_OK
