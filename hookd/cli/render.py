"""How the hook commands show hooks to people: key/value blocks and tables."""

from __future__ import annotations

from collections.abc import Sequence

from hookd.cli.output import NONE, block, excerpt, human_time, table
from hookd.signing import whsec
from hookd.state.queries import Status
from hookd.subscriptions.model import Hook


def render_hook(hook: Hook, title: str, *, reveal: bool, ordered_default: bool) -> str:
    """A hook as a key/value block for people (`ordered_default`: the installation's, for a hook without a choice)."""
    auth = hook.basic_auth
    if auth is None:
        shown_auth = NONE
    elif reveal:
        shown_auth = f"{auth.username}:{auth.password}"
    else:
        shown_auth = f"{auth.username}:*** (--reveal-secret shows the password)"
    fields: list[tuple[str, object]] = [
        ("account", hook.account_id),
        ("name", hook.display_name),
        ("url", hook.url),
        ("events", ", ".join(hook.events)),
        ("active", hook.active),
        ("basic auth", shown_auth),
        ("insecure ssl", hook.insecure_ssl),
        ("allow private", hook.allow_private),
        ("ordered", f"{ordered_default} (the default)" if hook.ordered is None else hook.ordered),
        ("rate limit", NONE if hook.rate_limit is None else f"{hook.rate_limit:g}/s"),
        ("secret", hook.secret if reveal else "*** (--reveal-secret shows it)"),
    ]
    if reveal:
        fields.append(("secret (whsec)", whsec(hook.secret)))
    if hook.old_secrets:
        fields.append(("previous secret valid until", hook.old_secrets_expire_at))
    if hook.created_at is not None:
        fields += [("created", hook.created_at), ("updated", hook.updated_at)]
    return block(title, fields)


def render_statuses(statuses: Sequence[Status]) -> str:
    rows = [
        (
            s.event,
            s.last_trigger_status,
            human_time(s.last_trigger_time),
            s.last_response_code,
            excerpt(s.last_response, 60),
        )
        for s in statuses
    ]
    return table(["EVENT", "LAST STATUS", "LAST TRIGGER", "CODE", "LAST RESPONSE"], rows)


def render_list(hooks: Sequence[Hook]) -> str:
    rows = [(h.id, h.account_id, h.active, ",".join(h.events), h.url, h.name or NONE) for h in hooks]
    return table(["ID", "ACCOUNT", "ACTIVE", "EVENTS", "URL", "NAME"], rows)
