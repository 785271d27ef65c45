"""Every bad argument is refused with exit code 2, a clear message on stderr, and the store unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Cli

Create = Callable[..., dict[str, Any]]

_CREATE = ["hooks", "create", "--account", "acme"]
_GOOD_URL = ["--url", "https://hooks.example.com/in"]
_GOOD_EVENTS = ["--events", "job"]

BAD_CREATE = {
    "ftp scheme": ([*_CREATE, "--url", "ftp://hooks.example.com/", *_GOOD_EVENTS], "must use http or https"),
    "no scheme": ([*_CREATE, "--url", "hooks.example.com/in", *_GOOD_EVENTS], "must use http or https"),
    "javascript scheme": ([*_CREATE, "--url", "javascript:alert(1)", *_GOOD_EVENTS], "must use http or https"),
    "no host": ([*_CREATE, "--url", "https:///path", *_GOOD_EVENTS], "must name a host"),
    "bad port": ([*_CREATE, "--url", "https://h.example.com:99999/", *_GOOD_EVENTS], "--url"),
    "unknown event": ([*_CREATE, *_GOOD_URL, "--events", "job.failed,job.exploded"], "unknown event 'job.exploded'"),
    "empty events": ([*_CREATE, *_GOOD_URL, "--events", ""], "--events: must be a non-empty list"),
    "only commas": ([*_CREATE, *_GOOD_URL, "--events", ",,"], "--events: must be a non-empty list"),
    "basic auth without colon": ([*_CREATE, *_GOOD_URL, *_GOOD_EVENTS, "--basic-auth", "alice"], "--basic-auth"),
    "basic auth without user": ([*_CREATE, *_GOOD_URL, *_GOOD_EVENTS, "--basic-auth", ":pw"], "--basic-auth"),
    "blank account": (["hooks", "create", "--account", " ", *_GOOD_URL, *_GOOD_EVENTS], "--account"),
    "missing events": ([*_CREATE, *_GOOD_URL], "the following arguments are required: --events"),
}


# Argument checks run before the database is touched: SQLite alone keeps this matrix fast. Refusals
# that reach the database (unknown ids) run on both backends below.
@pytest.mark.parametrize("hooks_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", list(BAD_CREATE), ids=list(BAD_CREATE))
def test_create_refuses_bad_arguments(cli: Cli, create: Create, case: str) -> None:
    """A bad create argument exits 2 with a message naming it, and nothing is created."""
    create()
    before = cli.export()
    argv, message = BAD_CREATE[case]
    result = cli(*argv)
    assert result.code == 2 and message in result.err and result.out == ""
    assert "Traceback" not in result.err
    assert cli.export() == before


BAD_UPDATE = {
    "active maybe": (["--active", "maybe"], "argument --active: expected true or false, got 'maybe'"),
    "insecure-ssl maybe": (["--insecure-ssl", "maybe"], "argument --insecure-ssl: expected true or false"),
    "ftp scheme": (["--url", "ftp://x.example.com/"], "must use http or https"),
    "no host": (["--url", "http://"], "must name a host"),
    "credentials in url": (["--url", "https://u:p@x.example.com/"], "must not carry credentials"),
    "unknown event": (["--events", "job,nope"], "unknown event 'nope'"),
    "empty events": (["--events", ""], "--events: must be a non-empty list"),
    "bad basic auth": (["--basic-auth", "nocolon"], "--basic-auth"),
    "nothing to change": ([], "nothing to change"),
    "good and bad together": (["--name", "renamed", "--url", "gopher://x/"], "must use http or https"),
}


@pytest.mark.parametrize("hooks_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", list(BAD_UPDATE), ids=list(BAD_UPDATE))
def test_update_refuses_bad_arguments(cli: Cli, create: Create, case: str) -> None:
    """A bad update argument exits 2 with a message naming it, and the hook is unchanged."""
    hook = create("--basic-auth", "u:p")
    before = cli.export()
    argv, message = BAD_UPDATE[case]
    result = cli("hooks", "update", hook["id"], *argv)
    assert result.code == 2 and message in result.err and result.out == ""
    assert cli.export() == before


UNKNOWN_ID = [
    ["show", "99"],
    ["update", "99", "--name", "x"],
    ["delete", "99"],
    ["enable", "99"],
    ["disable", "99"],
    ["reset-secret", "99"],
    ["ping", "99"],
]


@pytest.mark.parametrize("argv", UNKNOWN_ID, ids=[a[0] for a in UNKNOWN_ID])
def test_unknown_hook_id_is_refused(cli: Cli, create: Create, argv: list[str]) -> None:
    """Commands naming a hook that does not exist exit 2 with "no hook with id" and change nothing."""
    create()
    before = cli.export()
    result = cli("hooks", *argv)
    assert result.code == 2 and f"hooks {argv[0]}: no hook with id '99'" in result.err
    assert cli.export() == before
