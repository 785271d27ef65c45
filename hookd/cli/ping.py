"""`hookd ping` (and `hookd hooks ping`): a ping to one hook through the broker and the delivery path.

The sending is `hookd.targeted.send_ping`, the same function the API and the console call; this
module only finds the hook by id first.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hookd.cli.args import EXIT_OK, Subparsers, add_command
from hookd.cli.sources import open_hooks
from hookd.config import Settings, load_settings
from hookd.errors import HookNotFound
from hookd.subscriptions.model import Hook
from hookd.targeted import SentPing, send_ping


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "ping",
        help_text="send a ping event to one hook",
        epilog="example: hookd ping 42 --config hookd.yaml",
        handler=_ping,
    )
    p.add_argument("hook_id", metavar="HOOK_ID")
    p.add_argument("--config", required=True, type=Path)


def ping_by_id(settings: Settings, hook_id: str, *, name: str = "hookd ping") -> tuple[Hook, SentPing]:
    """Find the hook (`HookNotFound`, exit 2, for an unknown id) and send it a ping (`send_ping`).

    The store's revision is read after the hook: a worker that has loaded that revision has the hook.
    """
    with open_hooks(settings) as store:
        hook = store.get(hook_id)
        revision = store.revision()
    if hook is None:
        raise HookNotFound(hook_id)
    return hook, send_ping(settings, hook, revision=revision, name=name)


def _ping(args: argparse.Namespace) -> int:
    hook, sent = ping_by_id(load_settings(args.config), str(args.hook_id))
    print(f"ping queued for hook {hook.id} delivery={sent.delivery_id}")
    return EXIT_OK
