"""Hooks of a file source that hookd disabled, kept across restarts until their entry changes.

A database source stores an automatic disable (410 Gone, failing for `delivery.disable_after_s`) in
the hook itself (`active = false`). A hooks file is the operator's, and hookd never writes it: the
decision lives here, in the state database, with a fingerprint of the hook's entry as it was. At
start and on every reload the daemon keeps a hook disabled while its entry is unchanged; an edited
entry is the operator deciding again, and `hookd hooks enable ID` forgets the decision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime

from hookd.state.db import Database
from hookd.subscriptions.model import Hook

#: Hook fields that are not part of the operator's entry.
_NOT_IN_ENTRY = ("created_at", "updated_at")


def fingerprint(hook: Hook) -> str:
    """A digest of everything the hook's entry says (secrets included, only ever hashed): an edit to
    any field gives another fingerprint."""
    fields = {k: v for k, v in asdict(hook).items() if k not in _NOT_IN_ENTRY}
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def keep(db: Database, hook: Hook, reason: str) -> None:
    """Remember that hookd disabled `hook` as it is now."""
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO hookd_kept_disables (hook_id, fingerprint, reason, disabled_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (hook_id) DO UPDATE SET fingerprint = excluded.fingerprint, reason = excluded.reason,"
            " disabled_at = excluded.disabled_at",
            (hook.id, fingerprint(hook), reason, datetime.now(UTC)),
        )


def kept(db: Database) -> dict[str, tuple[str, str]]:
    """Hook id -> (fingerprint, reason) of every kept disable."""
    with db.transaction() as tx:
        rows = tx.fetchall("SELECT hook_id, fingerprint, reason FROM hookd_kept_disables")
    return {str(hook_id): (str(digest), str(reason)) for hook_id, digest, reason in rows}


def forget(db: Database, hook_ids: list[str]) -> int:
    """Drop the kept disables of these hooks (edited entries, `hookd hooks enable`); how many there were."""
    if not hook_ids:
        return 0
    marks = ", ".join("?" * len(hook_ids))
    with db.transaction(write=True) as tx:
        return tx.execute(f"DELETE FROM hookd_kept_disables WHERE hook_id IN ({marks})", tuple(hook_ids))  # noqa: S608 (marks only)
