"""Fuzzing the parsers of untrusted input: only hookd's own validation errors may come out, never a crash.

Event decoding (anything a publisher can put on the exchange), config loading and the hooks file
(arbitrary YAML), URL validation and the network policy (anything an admin can type as a URL).
Each property is bounded (200 examples, no deadline) so the suite stays well under a minute.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hookd.config import (
    BrokerSettings,
    DeliverySettings,
    LoggingSettings,
    MetricsSettings,
    StateSettings,
    SubscriptionSettings,
    load_settings,
    parse_settings,
)
from hookd.errors import BlockedDestination, ConfigError, EventError, HookdError
from hookd.events import EVENTS, Event, decode
from hookd.netpolicy import NetworkPolicy, category, literal_address
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.rules import url_problem
from hookd.subscriptions.yaml_store import parse_hooks

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------------------------
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=20)
)
_CONFIG_KEYS = sorted(
    {
        "broker",
        "subscriptions",
        "delivery",
        "logging",
        "state",
        "metrics",
        *BrokerSettings.__slots__,
        *SubscriptionSettings.__slots__,
        *StateSettings.__slots__,
        *DeliverySettings.__slots__,
        *MetricsSettings.__slots__,
        *LoggingSettings.__slots__,
    }
)
_HOOK_KEYS = [
    "id",
    "account_id",
    "name",
    "url",
    "events",
    "active",
    "secret",
    "secret_env",
    "secret_file",
    "basic_auth",
    "insecure_ssl",
    "allow_private",
    "username",
    "password",
    "password_env",
    "password_file",
    "hooks",
]
_VALUES = [
    "sqlite:///x.db",
    "sqlite:///a\x00b",
    "sqlite:////abs/x.db",
    "postgresql://u:p@h/db",
    "amqp://guest:guest@127.0.0.1:5672/%2F",
    "amqp://h:99999/",
    "https://hooks.example.com/in",
    "http://2130706433/",
    "http://[::1/",
    "yaml",
    "db",
    "quorum",
    "job",
    "job.failed",
    "cluster",
    "10.0.0.0/8",
    "::/0",
    "127.0.0.1:9187",
    "json",
    "debug",
    "/dev/null",
    "/nonexistent\x00",
    "hooks.yaml",
]


def _json_like(keys: list[str]) -> st.SearchStrategy[Any]:
    leaves = _scalars | st.sampled_from(_VALUES)
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=8) | st.integers(), children, max_size=6)
        ),
        max_leaves=25,
    )


config_docs = _json_like(_CONFIG_KEYS)
hooks_docs = st.fixed_dictionaries({"hooks": st.lists(_json_like(_HOOK_KEYS), max_size=4)}) | _json_like(_HOOK_KEYS)
# Environment values never hold NUL: the operating system cannot pass one.
_environ = st.dictionaries(
    st.sampled_from(["HOOKD_AMQP_URL", "STATE_DIRECTORY", "S"]),
    st.sampled_from([v for v in _VALUES if "\x00" not in v]),
)


def _yaml_text(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return ""


yaml_texts = st.one_of(
    config_docs.map(_yaml_text),
    hooks_docs.map(_yaml_text),
    st.text(max_size=300),
    st.sampled_from(["[", "{a: 1", "? [a]\n: b", "!!python/object:os.system x", "a: !!binary aGk=", "a: &x [*x]"]),
)


# -- event decoding --------------------------------------------------------------------------------------------
@FUZZ
@given(
    routing_key=st.sampled_from(sorted(EVENTS)) | st.text(max_size=300),
    body=st.binary(max_size=300) | st.builds(lambda d: yaml.safe_dump(d).encode(), _json_like(["id", "status"])),
    message_id=st.none() | st.text(max_size=50),
    headers=st.none() | st.dictionaries(st.sampled_from(["account_id", "x"]) | st.text(max_size=10), _scalars),
    max_bytes=st.integers(min_value=0, max_value=1000),
)
def test_event_decoding_raises_only_event_errors(
    routing_key: str, body: bytes, message_id: str | None, headers: dict[str, Any] | None, max_bytes: int
) -> None:
    """decode() returns an Event or raises EventError for anything a publisher can send."""
    try:
        event = decode(routing_key, body, message_id, headers, max_bytes=max_bytes)
    except EventError:
        return
    assert isinstance(event, Event) and event.body == body


@FUZZ
@given(depth=st.integers(min_value=1, max_value=100_000))
def test_deeply_nested_event_body_is_an_event_error(depth: int) -> None:
    """A body nesting arrays deeply is refused as not_json or not_object, never a RecursionError."""
    body = b"[" * depth + b"]" * depth
    try:
        decode("job.failed", body, "evt-1", {"account_id": "a"}, max_bytes=10**6)
    except EventError as exc:
        assert exc.reason in ("not_json", "not_object")


# -- config ---------------------------------------------------------------------------------------------------------
@FUZZ
@given(doc=config_docs, environ=_environ)
@example(doc={"subscriptions": {"source": "db", "url": "sqlite:///a\x00b"}}, environ={})
@example(doc={"subscriptions": {"source": "yaml", "path": "h.yaml"}, "state": {"url": "sqlite:///a\x00b"}}, environ={})
def test_parse_settings_raises_only_config_errors(doc: Any, environ: dict[str, str]) -> None:
    """parse_settings() on any parsed YAML document builds Settings or raises ConfigError."""
    with contextlib.suppress(ConfigError):
        parse_settings(doc, path=Path("/etc/hookd/hookd.yaml"), environ=environ)


@FUZZ
@given(text=yaml_texts)
def test_load_settings_raises_only_config_errors(text: str) -> None:
    """load_settings() on any file content builds Settings or raises ConfigError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hookd.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(ConfigError):
            load_settings(path, environ={})


# -- the hooks file ---------------------------------------------------------------------------------------------------
_HOOK = "hooks: [{id: 1, account_id: a, url: 'https://x.example/', events: [job], "


@FUZZ
@given(text=yaml_texts, environ=_environ)
@example(text=_HOOK + 'secret_file: "a\\0b"}]', environ={})
@example(text=_HOOK + 'secret_env: S, basic_auth: {username: u, password_file: "/\\0"}}]', environ={"S": "s"})
@example(text=_HOOK + "secret: s, allow_private: yes}]", environ={})
def test_parse_hooks_raises_only_config_errors(text: str, environ: dict[str, str]) -> None:
    """parse_hooks() on any text gives a HookSet or raises ConfigError."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            hooks = parse_hooks(text, source="hooks.yaml", base_dir=Path(folder), environ=environ)
        except ConfigError:
            return
    assert isinstance(hooks, HookSet)


# -- URLs and the network policy ---------------------------------------------------------------------------------------
_hosts = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"\A(0x[0-9a-fA-F]{0,10}|0[0-7]{0,12}|[0-9]{1,12})(\.(0x[0-9a-f]{0,4}|[0-9]{1,5})){0,4}\.?\Z"),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_urls = st.one_of(
    st.text(max_size=100),
    st.builds(lambda s, h, p: f"{s}://{h}{p}", st.sampled_from(["http", "https", "ftp", "HTTP"]), _hosts, st.text()),
    st.from_regex(r"\Ahttps?://[^/]*(/.*)?\Z"),
)


@FUZZ
@given(url=_urls | st.none() | st.integers() | st.binary())
def test_url_problem_never_raises(url: object) -> None:
    """url_problem() returns None or a reason for any value."""
    assert url_problem(url) is None or isinstance(url_problem(url), str)


@FUZZ
@given(url=_urls, allow=st.booleans())
def test_creation_policy_never_raises(url: str, allow: bool) -> None:
    """The creation-time policy check returns None or a reason for any URL string."""
    result = NetworkPolicy(allow_private=allow).creation_problem(url)
    assert result is None or "not a public address" in result


@FUZZ
@given(host=_hosts)
def test_literal_address_never_raises(host: str) -> None:
    """literal_address() gives an address or None for any host text; category() a label for it."""
    literal = literal_address(host)
    assert literal is None or isinstance(category(literal), str)


@FUZZ
@given(
    host=_hosts,
    answers=st.lists(st.ip_addresses().map(str) | st.text(max_size=20), max_size=4),
    networks=st.lists(st.sampled_from(["10.0.0.0/8", "127.0.0.1/32", "fd00::/8", "0.0.0.0/0"]), max_size=2),
    allow=st.booleans(),
)
def test_policy_check_raises_only_blocked_destination(
    host: str, answers: list[str], networks: list[str], allow: bool
) -> None:
    """check() returns the addresses to use, all permitted, or raises BlockedDestination (a HookdError)."""
    policy = NetworkPolicy.build(allow, networks)
    try:
        addresses = policy.check(host, 443, lambda _h, _p: list(answers))
    except BlockedDestination as exc:
        assert isinstance(exc, HookdError)
        return
    assert addresses and all(policy.permits(a) for a in addresses)
