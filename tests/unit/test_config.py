"""config: one loader that validates everything and reports every problem with its dotted key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookd.config import (
    AMQP_URL_ENV,
    DEFAULT_AMQP_URL,
    DEFAULT_RETRY_DELAYS_S,
    BrokerSettings,
    DeliverySettings,
    LoggingSettings,
    Settings,
    StateSettings,
    SubscriptionSettings,
    load_settings,
    parse_settings,
    redact_url,
)
from hookd.errors import ConfigError

CONFIG = Path("/etc/hookd/hookd.yaml")
MINIMAL: dict[str, Any] = {"subscriptions": {"path": "hooks.yaml"}}


def _parse(doc: object, environ: dict[str, str] | None = None) -> Settings:
    return parse_settings(doc, path=CONFIG, environ=environ or {})


def _problems(doc: object, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        _parse(doc, environ)
    assert info.value.source == str(CONFIG)
    return info.value.problems


def _with(section: str, **values: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"subscriptions": {"path": "hooks.yaml"}}
    doc.setdefault(section, {}).update(values)
    return doc


def test_minimal_config_gets_documented_defaults() -> None:
    """A config naming only the hooks file gets every documented default."""
    result = _parse(MINIMAL)
    assert result.broker == BrokerSettings()
    assert result.delivery == DeliverySettings()
    assert result.logging == LoggingSettings()
    assert result.broker.urls == (DEFAULT_AMQP_URL,)
    assert result.delivery.retry_delays_s == DEFAULT_RETRY_DELAYS_S
    assert result.subscriptions.source == "yaml"
    assert result.source == CONFIG


def test_relative_hooks_path_resolves_against_config_directory() -> None:
    """A relative subscriptions.path is relative to the config file's directory, not the CWD."""
    assert _parse(MINIMAL).subscriptions.path == Path("/etc/hookd/hooks.yaml")


def test_absolute_hooks_path_is_kept() -> None:
    """An absolute subscriptions.path is used as given."""
    result = _parse({"subscriptions": {"path": "/srv/hooks.yaml"}})
    assert result.subscriptions.path == Path("/srv/hooks.yaml")


def test_hooks_path_is_required() -> None:
    """A config without subscriptions.path is refused (the yaml source needs a file)."""
    assert any(p.startswith("subscriptions.path:") for p in _problems({}))


def test_empty_document_reports_missing_hooks_path() -> None:
    """An empty config file (None) is read as an empty mapping, so only the hooks path is missing."""
    problems = _problems(None)
    assert len(problems) == 1
    assert problems[0].startswith("subscriptions.path:")


def test_values_are_read() -> None:
    """Valid values in every section replace the defaults."""
    doc = {
        "broker": {"exchange": "x", "queue_type": "classic", "prefetch": 10, "max_message_bytes": 2048},
        "subscriptions": {"source": "yaml", "path": "h.yaml"},
        "delivery": {"timeout_s": 2.5, "max_in_flight": 4, "retry_delays_s": [1, 1.5], "allow_private_networks": True},
        "logging": {"format": "json", "level": "debug"},
    }
    result = _parse(doc)
    assert (result.broker.exchange, result.broker.queue_type, result.broker.prefetch) == ("x", "classic", 10)
    assert result.broker.max_message_bytes == 2048
    assert (result.delivery.timeout_s, result.delivery.max_in_flight) == (2.5, 4)
    assert result.delivery.retry_delays_s == (1.0, 1.5)
    assert result.delivery.allow_private_networks is True
    assert (result.logging.format, result.logging.level) == ("json", "debug")


def test_prefetch_defaults_to_max_in_flight() -> None:
    """Prefetch 0 means delivery.max_in_flight, at least 32: one hook per event still fills the cap."""
    assert _parse(_with("delivery", max_in_flight=1500)).prefetch == 1500
    assert _parse(_with("delivery", max_in_flight=4)).prefetch == 32
    assert _parse({"subscriptions": {"path": "h.yaml"}}).prefetch == 1000


def test_the_partitions_share_the_prefetch_window() -> None:
    """Each partition's consumer gets prefetch / partitions (rounded up): a worker owning them all holds
    about `prefetch` messages, not `partitions` times as many."""
    assert _parse(_with("delivery", max_in_flight=1000)).partition_prefetch == 63
    assert _parse(_with("broker", prefetch=7, partitions=4)).partition_prefetch == 2
    assert _parse(_with("broker", prefetch=7, partitions=0)).partition_prefetch == 7
    assert _parse(_with("broker", prefetch=3, partitions=16)).partition_prefetch == 1


def test_the_retired_workers_key_is_accepted_with_a_notice() -> None:
    """delivery.workers, which older configs hold, still loads, with a notice saying it no longer does anything."""
    settings = _parse(_with("delivery", workers=64))
    assert settings.notices and settings.notices[0].startswith("delivery.workers is no longer used")
    assert _parse({"subscriptions": {"path": "h.yaml"}}).notices == ()


def test_explicit_prefetch_wins() -> None:
    """A non-zero broker.prefetch is used as is."""
    assert _parse(_with("broker", prefetch=7)).prefetch == 7


def test_node_order_is_shuffled_or_listed() -> None:
    """broker.node_order: `shuffled` by default, `listed` on request, anything else refused by name."""
    assert _parse(_with("broker")).broker.node_order == "shuffled"
    assert _parse(_with("broker", node_order="listed")).broker.node_order == "listed"
    with pytest.raises(ConfigError, match=r"broker\.node_order"):
        _parse(_with("broker", node_order="random"))


def test_amqp_url_env_overrides_file() -> None:
    """HOOKD_AMQP_URL replaces broker.url from the file."""
    doc = _with("broker", url="amqp://file:pw@file-host/")
    result = _parse(doc, {AMQP_URL_ENV: "amqps://env:pw@env-host:5671/vh"})
    assert result.broker.urls == ("amqps://env:pw@env-host:5671/vh",)


def test_empty_amqp_url_env_is_ignored() -> None:
    """An empty HOOKD_AMQP_URL does not override the file."""
    result = _parse(_with("broker", url="amqp://file-host/"), {AMQP_URL_ENV: ""})
    assert result.broker.urls == ("amqp://file-host/",)


@pytest.mark.parametrize("url", ["http://host/", "amqp:///vhost", "not a url", "redis://h:6379"])
def test_invalid_amqp_url_env_is_reported(url: str) -> None:
    """An HOOKD_AMQP_URL that is not amqp(s):// with a host is reported under its name."""
    problems = _problems(MINIMAL, {AMQP_URL_ENV: url})
    assert len(problems) == 1
    assert problems[0].startswith(f"{AMQP_URL_ENV} (environment):")


def test_invalid_amqp_url_env_does_not_echo_password() -> None:
    """A refused HOOKD_AMQP_URL's password does not appear in the problem text."""
    problems = _problems(MINIMAL, {AMQP_URL_ENV: "http://user:hunter2@host/"})
    assert not any("hunter2" in p for p in problems)


def test_invalid_broker_url_does_not_echo_password() -> None:
    """A refused broker.url's password does not appear in the problem text (it ends up in logs)."""
    problems = _problems(_with("broker", url="http://user:hunter2@host/"))
    assert any(p.startswith("broker.url:") for p in problems)
    assert not any("hunter2" in p for p in problems)


@pytest.mark.parametrize("url", ["http://host/", "amqp://", 5672, None])
def test_invalid_broker_url_is_reported(url: object) -> None:
    """A broker.url that is not an amqp(s) URL with a host is reported."""
    assert any(p.startswith("broker.url:") for p in _problems(_with("broker", url=url)))


def test_broker_url_with_invalid_port_is_reported() -> None:
    """A broker.url whose port is out of range is a config problem, not a later crash."""
    assert any(p.startswith("broker.url:") for p in _problems(_with("broker", url="amqp://host:99999/")))


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({**MINIMAL, "brokr": {}}, "config.brokr"),
        (_with("broker", exchnage="x"), "broker.exchnage"),
        (_with("delivery", timeout=5), "delivery.timeout"),
        (_with("subscriptions", file="x.yaml"), "subscriptions.file"),
        (_with("logging", colour=True), "logging.colour"),
    ],
)
def test_unknown_key_is_reported_with_dotted_key(doc: dict[str, Any], key: str) -> None:
    """An unknown key at any level is reported with its dotted path."""
    assert f"{key}: unknown key" in _problems(doc)


@pytest.mark.parametrize("section", ["broker", "delivery", "subscriptions", "logging"])
def test_section_that_is_not_a_mapping_is_reported(section: str) -> None:
    """A section given as a scalar or list is reported as not a mapping."""
    doc = {**MINIMAL, section: ["oops"]}
    assert f"{section}: must be a mapping" in _problems(doc)


def test_top_level_that_is_not_a_mapping_is_reported() -> None:
    """A config document that is a list is reported as not a mapping."""
    assert "config: must be a mapping" in _problems(["broker"])


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("broker", "exchange", ""),
        ("broker", "queue_type", "stream"),
        ("broker", "prefetch", -1),
        ("broker", "prefetch", 1.5),
        ("broker", "heartbeat_s", "30"),
        ("broker", "heartbeat_s", True),
        ("broker", "max_message_bytes", 0),
        ("delivery", "timeout_s", 0),
        ("delivery", "timeout_s", "10"),
        ("delivery", "max_in_flight", 0),
        ("delivery", "max_in_flight", 200_000),
        ("delivery", "inline_attempts", 11),
        ("delivery", "allow_private_networks", "yes"),
        ("delivery", "retry_delays_s", []),
        ("delivery", "retry_delays_s", 5),
        ("delivery", "retry_delays_s", [5, "300"]),
        ("delivery", "retry_delays_s", [0.05]),
        ("delivery", "retry_delays_s", [1.0005]),
        ("delivery", "retry_delays_s", [8 * 86400]),
        ("subscriptions", "source", "sql"),
        ("subscriptions", "path", 3),
        ("logging", "format", "xml"),
        ("logging", "level", "trace"),
    ],
)
def test_wrong_value_is_reported_with_dotted_key(section: str, key: str, value: object) -> None:
    """A value of the wrong type or out of range is reported under its dotted key."""
    doc = _with(section, **{key: value})
    assert any(p.startswith(f"{section}.{key}: ") for p in _problems(doc))


def test_whole_millisecond_delays_are_accepted() -> None:
    """Delays in whole milliseconds are accepted whatever their float representation."""
    result = _parse(_with("delivery", retry_delays_s=[1.001, 2.5, 0.1]))
    assert result.delivery.retry_delays_s == (1.001, 2.5, 0.1)


def test_every_problem_is_reported_at_once() -> None:
    """Problems in several sections are all reported in one ConfigError, each with its dotted key."""
    doc = {
        "broker": {"url": "http://x/", "prefetch": "many", "colour": "blue"},
        "delivery": {"max_in_flight": 0, "allow_private_networks": "no"},
        "subscriptions": {"source": "sql"},
        "logging": {"level": "loud"},
        "extra": 1,
    }
    problems = _problems(doc, {AMQP_URL_ENV: "ftp://nope/"})
    expected_prefixes = [
        "config.extra: unknown key",
        "broker.colour: unknown key",
        "broker.url:",
        "broker.prefetch:",
        "delivery.max_in_flight:",
        "delivery.allow_private_networks:",
        "subscriptions.source:",
        "subscriptions.path:",
        "logging.level:",
        f"{AMQP_URL_ENV} (environment):",
    ]
    for prefix in expected_prefixes:
        assert any(p.startswith(prefix) for p in problems), prefix
    assert len(problems) == len(expected_prefixes)


def test_config_error_message_lists_every_problem() -> None:
    """The ConfigError message names the file and lists each problem on its own line."""
    with pytest.raises(ConfigError) as info:
        _parse({"logging": {"level": "loud"}})
    text = str(info.value)
    assert text.startswith(f"{CONFIG}: 2 problem(s):")
    assert all(f"  - {p}" in text for p in info.value.problems)


def test_load_settings_reads_the_file(write_file: Callable[[str, str], Path]) -> None:
    """load_settings parses the file and resolves the hooks path next to it."""
    path = write_file("hookd.yaml", "subscriptions:\n  path: hooks.yaml\nlogging:\n  format: json\n")
    result = load_settings(path, environ={})
    assert result.subscriptions.path == path.parent / "hooks.yaml"
    assert result.logging.format == "json"
    assert result.source == path


def test_load_settings_uses_the_given_environment(write_file: Callable[[str, str], Path]) -> None:
    """load_settings takes HOOKD_AMQP_URL from the mapping it is given."""
    path = write_file("hookd.yaml", "subscriptions:\n  path: hooks.yaml\n")
    result = load_settings(path, environ={AMQP_URL_ENV: "amqp://env-host/"})
    assert result.broker.urls == ("amqp://env-host/",)


def test_example_config_is_valid() -> None:
    """The shipped example config/hookd.yaml loads without problems."""
    path = Path(__file__).resolve().parents[2] / "config" / "hookd.yaml"
    result = load_settings(path, environ={})
    assert result.broker == BrokerSettings()
    assert result.delivery == DeliverySettings()


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing config file is reported as a ConfigError naming the file."""
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.source == str(path)
    assert info.value.problems[0].startswith("cannot read config file:")


def test_directory_instead_of_file_is_a_config_error(tmp_path: Path) -> None:
    """A directory given as the config file is reported as unreadable."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path, environ={})


def test_invalid_yaml_is_a_config_error(write_file: Callable[[str, str], Path]) -> None:
    """A file that is not valid YAML is reported as a ConfigError, not a yaml exception."""
    path = write_file("hookd.yaml", "broker: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.problems[0].startswith("not valid YAML")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    """A config file that is not UTF-8 is reported as a ConfigError."""
    path = tmp_path / "hookd.yaml"
    path.write_bytes(b"broker:\n  exchange: \xff\xfe\n")
    with pytest.raises(ConfigError):
        load_settings(path, environ={})


def test_redact_url_hides_password() -> None:
    """redact_url replaces the password with *** and keeps user, host, port and path."""
    assert redact_url("amqp://hookd:hunter2@rabbit:5672/%2F") == "amqp://hookd:***@rabbit:5672/%2F"


def test_redact_url_without_password_is_unchanged() -> None:
    """A URL without a password is returned as is."""
    assert redact_url("amqp://rabbit/%2F") == "amqp://rabbit/%2F"


def test_redact_url_keeps_ipv6_brackets() -> None:
    """An IPv6 host keeps its brackets, so the redacted URL stays unambiguous."""
    assert redact_url("amqp://u:pw@[::1]:5672/") == "amqp://u:***@[::1]:5672/"


def test_redact_url_with_invalid_port_does_not_raise() -> None:
    """redact_url never raises, even for a URL whose port is out of range."""
    assert "hunter2" not in redact_url("amqp://u:hunter2@host:99999/")


@given(st.text())
def test_redact_url_never_raises(url: str) -> None:
    """redact_url returns text for any input (it runs inside repr)."""
    assert isinstance(redact_url(url), str)


@given(password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6))
def test_redact_url_never_shows_password(password: str) -> None:
    """For any password, the redacted URL does not contain it."""
    assert password not in redact_url(f"amqps://hookd:{password}@rabbit.internal:5671/vh")


def test_broker_settings_repr_hides_password() -> None:
    """BrokerSettings' repr shows the redacted URL, never the password."""
    text = repr(BrokerSettings(urls=("amqp://hookd:hunter2@rabbit:5672/%2F",)))
    assert "hunter2" not in text
    assert "hookd:***@rabbit" in text


def test_settings_repr_hides_password() -> None:
    """The whole Settings repr (as logged) does not contain the broker password."""
    result = _parse(MINIMAL, {AMQP_URL_ENV: "amqp://hookd:hunter2@rabbit/"})
    assert "hunter2" not in repr(result)
    assert "hunter2" not in str(result)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["amqp://h/", "quorum", "json", "debug", "yaml", "hooks.yaml"]),
)
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
_known = {
    "broker": list(BrokerSettings.__slots__),
    "delivery": list(DeliverySettings.__slots__),
    "subscriptions": ["source", "path"],
    "logging": list(LoggingSettings.__slots__),
}
_sections = st.fixed_dictionaries(
    {},
    optional={
        name: st.one_of(_values, st.dictionaries(st.sampled_from([*keys, "unknown"]), _values, max_size=len(keys) + 1))
        for name, keys in _known.items()
    },
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(doc=st.one_of(_values, _sections), env=st.one_of(st.just({}), st.builds(lambda u: {AMQP_URL_ENV: u}, st.text())))
def test_parse_settings_raises_only_config_error(doc: object, env: dict[str, str]) -> None:
    """On any YAML-shaped document parse_settings returns Settings or raises ConfigError."""
    try:
        result = _parse(doc, env)
    except ConfigError as exc:
        assert exc.problems
    else:
        assert isinstance(result, Settings)
        repr(result)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_load_settings_raises_only_config_error_on_any_text(tmp_path: Path, text: str) -> None:
    """Whatever text the config file holds, load_settings returns Settings or raises ConfigError."""
    path = tmp_path / "hookd.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_settings(path, environ={})
    except ConfigError as exc:
        assert exc.problems


def test_yaml_round_trip_of_defaults_is_accepted(tmp_path: Path) -> None:
    """Dumping the documented defaults to YAML and loading them back gives the default settings."""
    doc = {
        "broker": {"url": DEFAULT_AMQP_URL, "queue_type": "quorum", "prefetch": 0},
        "subscriptions": {"source": "yaml", "path": "hooks.yaml"},
        "delivery": {"retry_delays_s": list(DEFAULT_RETRY_DELAYS_S)},
        "logging": {"format": "auto", "level": "info"},
    }
    path = tmp_path / "hookd.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    state = StateSettings(url=f"sqlite:///{(tmp_path / 'hookd-state.sqlite3').resolve()}")
    expected = Settings(subscriptions=SubscriptionSettings(path=tmp_path / "hooks.yaml"), state=state, source=path)
    assert load_settings(path, environ={}) == expected


def test_broker_url_may_list_a_clusters_nodes() -> None:
    """broker.url takes a list of node URLs; HOOKD_AMQP_URL takes them comma-separated, and wins."""
    nodes = ["amqp://u:p@n1:5672/", "amqp://u:p@n2:5673/", "amqp://u:p@n3:5674/"]
    assert _parse(_with("broker", url=nodes)).broker.urls == tuple(nodes)
    env = {AMQP_URL_ENV: "amqp://e1/, amqp://e2/"}
    assert _parse(_with("broker", url=nodes), env).broker.urls == ("amqp://e1/", "amqp://e2/")


@pytest.mark.parametrize("value", [[], ["amqp://ok/", "http://bad/"], ["amqp://n/"] * 33, 5])
def test_a_bad_node_list_is_reported(value: object) -> None:
    """An empty list, a bad member or more than 32 nodes is a problem of broker.url."""
    assert any(p.startswith("broker.url: ") for p in _problems(_with("broker", url=value)))


def test_the_repr_shows_every_node_without_passwords() -> None:
    """Settings' repr (logged) lists the nodes with their passwords redacted."""
    shown = repr(_parse(_with("broker", url=["amqp://u:secret1@n1/", "amqp://u:secret2@n2/"])).broker)
    assert "secret" not in shown and "n1" in shown and "n2" in shown
