"""`hookd ping` (and `hookd hooks ping`): a ping to one hook through the broker and the delivery path."""

from __future__ import annotations

import argparse
from pathlib import Path

from hookd.cli.args import EXIT_OK, Subparsers, add_command
from hookd.cli.sources import open_hooks
from hookd.config import Settings, load_settings
from hookd.errors import HookNotFound
from hookd.subscriptions.model import Hook
from hookd.targeted import send_ping as publish_ping


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


def send_ping(settings: Settings, hook_id: str, *, name: str = "hookd ping") -> tuple[Hook, str, str]:
    """Publish a ping for the hook on `<prefix>.deliveries`, confirmed by the broker.

    Returns the hook, the ping's delivery id and its event id; `HookNotFound` (exit 2) for an unknown id.
    """
    with open_hooks(settings) as store:
        hook = store.get(hook_id)
        revision = store.revision()  # read after the hook: a worker that has loaded it has the hook
    if hook is None:
        raise HookNotFound(hook_id)
    delivery_id, event_id = publish_ping(settings, hook, revision=revision, name=name)
    return hook, delivery_id, event_id


def _ping(args: argparse.Namespace) -> int:
    hook, delivery_id, _ = send_ping(load_settings(args.config), str(args.hook_id))
    print(f"ping queued for hook {hook.id} delivery={delivery_id}")
    return EXIT_OK
