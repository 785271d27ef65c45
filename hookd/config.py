"""Settings: frozen dataclasses built by one loader that validates everything and reports all problems.

Every key has a documented default here; units are in the names (`timeout_s`). The broker URL's
password is redacted in `repr` so settings can be logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from hookd import config_checks as check
from hookd.errors import ConfigError, yaml_problem

AMQP_URL_ENV = "HOOKD_AMQP_URL"
#: `broker.node_order`: each process shuffles the node URLs (spreading workers), or keeps their order.
NODE_ORDERS = ("shuffled", "listed")
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_EXCHANGE = "hookd.events"
DEFAULT_QUEUE_PREFIX = "hookd"
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
#: Durable retry schedule modelled on established webhook platforms: ~5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
#: A hook without its own `ordered` choice delivers one entity's events in order (`delivery.ordered_default`).
DEFAULT_ORDERED = True
DEFAULT_RETRY_DELAYS_S = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
QUEUE_TYPES = ("quorum", "classic")
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***`, for logs and reprs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc or ":" not in parts.netloc.rsplit("@", 1)[0]:
        return url
    userinfo, hostport = parts.netloc.rsplit("@", 1)
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """`broker.*`. `urls`: one AMQP URL per node of a cluster (or the one broker); each process tries
    them in an order of its own (`hookd.broker.NodeRing`)."""

    urls: tuple[str, ...] = field(default=(DEFAULT_AMQP_URL,), repr=False)
    exchange: str = DEFAULT_EXCHANGE
    queue_prefix: str = DEFAULT_QUEUE_PREFIX
    queue_type: str = "quorum"
    prefetch: int = 0  # 0: derived from delivery.max_in_flight (see Settings.prefetch)
    heartbeat_s: int = 30
    connect_timeout_s: float = 10.0
    reconnect_max_s: float = 30.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    quorum_replicas: int = 0  # quorum queues' initial replicas (x-quorum-initial-group-size); 0: every node
    node_order: str = "shuffled"  # or "listed": the first URL is this process's preferred (local) node
    confirm_timeout_s: float = 60.0  # a publish unconfirmed this long: reconnect (never stall silently)
    partitions: int = 16  # ordered delivery: queues the router spreads entities over (0: no ordering)

    def __repr__(self) -> str:
        return (
            f"BrokerSettings(urls={self.shown_urls!r}, exchange={self.exchange!r}, queue_prefix={self.queue_prefix!r})"
        )

    @property
    def shown_urls(self) -> str:
        """The node URLs with passwords redacted, comma-separated, for logs and errors."""
        return ", ".join(redact_url(url) for url in self.urls)


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    source: str = "yaml"
    path: Path | None = None  # source yaml: the hooks file
    url: str | None = field(default=None, repr=False)  # source db: sqlite:///PATH or postgresql://...
    poll_interval_s: float = 1.0  # source db: how often workers look for changes


@dataclass(frozen=True, slots=True)
class StateSettings:
    """Where delivery status and history are kept: the hooks database, else an embedded SQLite file."""

    url: str = field(default="", repr=False)
    history: bool = True
    retention_days: float = 30.0
    response_excerpt_bytes: int = 1024


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    timeout_s: float = 10.0
    max_in_flight: int = 1000  # deliveries attempted at once by one process (one event loop)
    retry_delays_s: tuple[float, ...] = DEFAULT_RETRY_DELAYS_S
    inline_attempts: int = 3
    inline_backoff_s: float = 0.5
    allow_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()  # CIDRs always allowed, for internal receivers
    drain_timeout_s: float = 20.0
    per_hook_concurrency: int = 8  # one slow receiver cannot take every worker
    per_hook_backlog: int = 200  # queued deliveries per hook beyond which new ones are parked
    max_response_bytes: int = 16_384  # response bodies are read only this far
    retry_after_max_s: float = 3600.0  # clamp for 429/503 Retry-After
    retry_jitter: float = 0.1  # durable retries wait between (1 - jitter) and 1 x the delay
    breaker_threshold: int = 5  # consecutive failures that open a hook's circuit (0: never)
    breaker_cooldown_s: float = 30.0  # open circuit: time before a probe
    disable_after_s: float = 259_200.0  # unbroken failure this long disables the hook (0: never)
    ordered_default: bool = DEFAULT_ORDERED  # a hook without `ordered` gets one entity's events one after another
    ordered_max_waiting: int = 10_000  # per hook: deliveries waiting behind an earlier one, at most


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: str = ""  # e.g. 127.0.0.1:9187 serves /metrics and /healthz; empty: off


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """`tracing.*`: exporting spans over OTLP/HTTP (the `otel` extra); trace context flows regardless."""

    otlp_endpoint: str = ""  # http(s)://collector:4318 (spans go to /v1/traces); empty: no export
    service_name: str = "hookd"  # the spans' service.name


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """`hookd serve`: the admin API and the Service Hooks console."""

    listen: str = "127.0.0.1:8780"  # HOST:PORT; behind a TLS reverse proxy, keep it on loopback
    rate_limit_per_hour: int = 5000  # requests per API key and clock hour, shared by every serve process
    session_ttl_s: float = 28_800.0  # a console session ends this long after sign-in (8 h)
    trust_proxy_headers: bool = False  # honour X-Forwarded-Proto/-Host/-For from one reverse proxy
    threads: int = 8  # requests served at once


@dataclass(frozen=True, slots=True)
class SecretsSettings:
    """`secrets.*`: encryption at rest of the hook secrets and basic-auth passwords in the hooks database.

    `key_file` (None: values are stored as given) seals new values and opens old ones; the keys in
    `old_key_files` only open values (a key rotation across many hosts). Paths are absolute here
    (relative ones resolve against the config file; under systemd a `LoadCredential=` of the same
    file name takes the place of the file); the loader checked that each is a usable key.
    """

    key_file: Path | None = None
    old_key_files: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True, slots=True)
class Settings:
    broker: BrokerSettings = BrokerSettings()
    subscriptions: SubscriptionSettings = SubscriptionSettings()
    state: StateSettings = StateSettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()
    delivery: DeliverySettings = DeliverySettings()
    logging: LoggingSettings = LoggingSettings()
    api: ApiSettings = ApiSettings()
    secrets: SecretsSettings = SecretsSettings()
    source: Path | None = None
    notices: tuple[str, ...] = ()  # accepted but worth telling the operator (e.g. a key no longer used)

    @property
    def prefetch(self) -> int:
        """Unacked messages the broker may push to us: as many as deliveries may be in flight, so that an
        event going to one hook each still fills `max_in_flight` (more hooks per event fill it sooner)."""
        return self.broker.prefetch or max(self.delivery.max_in_flight, 32)

    @property
    def partition_prefetch(self) -> int:
        """The window of each partition's consumer: `prefetch` shared by the partitions, so that a worker
        owning every partition holds about `prefetch` of their messages, as one queue's consumer would,
        not `partitions` times as many (16,000 messages and 170 MB for a 50,000-event backlog)."""
        partitions = self.broker.partitions
        return -(-self.prefetch // partitions) if partitions else self.prefetch


#: The config file's sections and the keys each one takes (the fields of its settings class).
_SECTIONS: dict[str, frozenset[str]] = {
    "broker": frozenset(BrokerSettings.__slots__) - {"urls"} | {"url"},  # `url`: one URL or a list
    "subscriptions": frozenset(SubscriptionSettings.__slots__),
    "delivery": frozenset(DeliverySettings.__slots__),
    "logging": frozenset(LoggingSettings.__slots__),
    "state": frozenset(StateSettings.__slots__),
    "metrics": frozenset(MetricsSettings.__slots__),
    "tracing": frozenset(TracingSettings.__slots__),
    "api": frozenset(ApiSettings.__slots__),
    "secrets": frozenset(SecretsSettings.__slots__),
}


def amqp_urls(value: str) -> tuple[str, ...]:
    """`HOOKD_AMQP_URL`'s form: one URL, or several separated by commas (a cluster's nodes)."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config file; raise `ConfigError` listing every problem at once."""
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror}"], str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(["config file is not UTF-8 text"], str(path)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([yaml_problem(exc)], str(path)) from None
    return parse_settings(doc, path=path, environ=environ)


def parse_settings(doc: object, *, path: Path, environ: Mapping[str, str]) -> Settings:
    """Build `Settings` from a parsed document; relative paths resolve against the config file."""
    problems: list[str] = []
    top = check.Section("config", doc, problems, frozenset(_SECTIONS))

    def section(name: str) -> check.Section:
        retired = frozenset(key for (where, key) in _RETIRED if where == name)
        return check.Section(name, top.data.get(name), problems, _SECTIONS[name] | retired)

    subscriptions = _subscriptions(section("subscriptions"), path, problems)
    notices = _notices(top.data)
    settings = Settings(
        broker=_broker(section("broker"), environ, problems),
        subscriptions=subscriptions,
        state=_state(section("state"), path, subscriptions, environ),
        metrics=MetricsSettings(listen=section("metrics").get("listen", "", check.listen)),
        tracing=_tracing(section("tracing")),
        delivery=_delivery(section("delivery")),
        logging=_logging(section("logging")),
        api=_api(section("api")),
        secrets=_secrets(section("secrets"), path, environ),
        source=path,
        notices=notices + _secrets_notices(top.data, subscriptions),
    )
    if problems:
        raise ConfigError(problems, str(path))
    return settings


#: Keys older configs may hold that no longer do anything; each is accepted with a notice.
_RETIRED = {
    ("delivery", "workers"): "delivery.workers is no longer used: deliveries run on one event loop, as many at "
    "once as delivery.max_in_flight and delivery.per_hook_concurrency allow",
}


def _tracing(section: check.Section) -> TracingSettings:
    return TracingSettings(
        otlp_endpoint=section.get("otlp_endpoint", "", check.http_endpoint, echo=False),
        service_name=section.get("service_name", "hookd", check.text()),
    )


def _notices(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """What the loader accepted but the operator should hear about (logged by `hookd run`, printed by
    `hookd check-config`)."""
    found = []
    for (section, key), notice in _RETIRED.items():
        part = doc.get(section)
        if isinstance(part, Mapping) and key in part:
            found.append(notice)
    return tuple(found)


def _broker(b: check.Section, environ: Mapping[str, str], problems: list[str]) -> BrokerSettings:
    """`broker.*`; `HOOKD_AMQP_URL` overrides `broker.url`."""
    defaults = BrokerSettings()
    given: Any = b.get("url", list(defaults.urls), check.amqp_url_list, echo=False)
    urls = (given,) if isinstance(given, str) else tuple(given)
    if environ.get(AMQP_URL_ENV):
        urls = amqp_urls(environ[AMQP_URL_ENV])
        if (why := check.amqp_url_list(list(urls))) is not None:
            problems.append(f"{AMQP_URL_ENV} (environment): {why}")
    return BrokerSettings(
        urls=urls,
        exchange=b.get("exchange", defaults.exchange, check.text()),
        queue_prefix=b.get("queue_prefix", defaults.queue_prefix, check.text()),
        queue_type=b.get("queue_type", defaults.queue_type, check.text(QUEUE_TYPES)),
        prefetch=b.get("prefetch", defaults.prefetch, check.number(0, 65535, integer=True)),
        heartbeat_s=b.get("heartbeat_s", defaults.heartbeat_s, check.number(0, 3600, integer=True)),
        connect_timeout_s=b.get("connect_timeout_s", defaults.connect_timeout_s, check.number(0.1, 300)),
        reconnect_max_s=b.get("reconnect_max_s", defaults.reconnect_max_s, check.number(0.1, 3600)),
        max_message_bytes=b.get(
            "max_message_bytes", defaults.max_message_bytes, check.number(1, 128 * 1_048_576, integer=True)
        ),
        quorum_replicas=b.get("quorum_replicas", defaults.quorum_replicas, check.number(0, 99, integer=True)),
        node_order=b.get("node_order", defaults.node_order, check.text(NODE_ORDERS)),
        confirm_timeout_s=b.get("confirm_timeout_s", defaults.confirm_timeout_s, check.number(1, 3600)),
        partitions=b.get("partitions", defaults.partitions, check.number(0, 256, integer=True)),
    )


def _delivery(d: check.Section) -> DeliverySettings:
    """`delivery.*`: deadlines, concurrency, retries, isolation and the network policy."""
    defaults = DeliverySettings()
    return DeliverySettings(
        timeout_s=d.get("timeout_s", defaults.timeout_s, check.number(0.1, 600)),
        max_in_flight=d.get("max_in_flight", defaults.max_in_flight, check.number(1, 100_000, integer=True)),
        retry_delays_s=tuple(float(x) for x in d.get("retry_delays_s", list(defaults.retry_delays_s), check.delays)),
        inline_attempts=d.get("inline_attempts", defaults.inline_attempts, check.number(1, 10, integer=True)),
        inline_backoff_s=d.get("inline_backoff_s", defaults.inline_backoff_s, check.number(0, 30)),
        allow_private_networks=d.get("allow_private_networks", defaults.allow_private_networks, check.boolean),
        drain_timeout_s=d.get("drain_timeout_s", defaults.drain_timeout_s, check.number(0, 3600)),
        allowed_networks=tuple(d.get("allowed_networks", [], check.networks)),
        per_hook_concurrency=d.get(
            "per_hook_concurrency", defaults.per_hook_concurrency, check.number(1, 1024, integer=True)
        ),
        per_hook_backlog=d.get("per_hook_backlog", defaults.per_hook_backlog, check.number(1, 1_000_000, integer=True)),
        max_response_bytes=d.get(
            "max_response_bytes", defaults.max_response_bytes, check.number(0, 10_485_760, integer=True)
        ),
        retry_after_max_s=d.get("retry_after_max_s", defaults.retry_after_max_s, check.number(1, 7 * 86400)),
        retry_jitter=d.get("retry_jitter", defaults.retry_jitter, check.number(0, 0.5)),
        breaker_threshold=d.get("breaker_threshold", defaults.breaker_threshold, check.number(0, 10_000, integer=True)),
        breaker_cooldown_s=d.get("breaker_cooldown_s", defaults.breaker_cooldown_s, check.number(0.1, 86400)),
        disable_after_s=d.get("disable_after_s", defaults.disable_after_s, check.number(0, 365 * 86400)),
        ordered_default=d.get("ordered_default", defaults.ordered_default, check.boolean),
        ordered_max_waiting=d.get(
            "ordered_max_waiting", defaults.ordered_max_waiting, check.number(1, 10_000_000, integer=True)
        ),
    )


def _api(a: check.Section) -> ApiSettings:
    """`api.*`: where `hookd serve` listens, its rate limit and console sessions."""
    defaults = ApiSettings()
    return ApiSettings(
        listen=a.get("listen", defaults.listen, check.server_address),
        rate_limit_per_hour=a.get(
            "rate_limit_per_hour", defaults.rate_limit_per_hour, check.number(1, 100_000_000, integer=True)
        ),
        session_ttl_s=a.get("session_ttl_s", defaults.session_ttl_s, check.number(60, 30 * 86400)),
        trust_proxy_headers=a.get("trust_proxy_headers", defaults.trust_proxy_headers, check.boolean),
        threads=a.get("threads", defaults.threads, check.number(1, 256, integer=True)),
    )


def _secrets(sec: check.Section, path: Path, environ: Mapping[str, str]) -> SecretsSettings:
    """`secrets.*`: each key file must exist, hold exactly 32 bytes and be private to its owner."""
    raw_key: str | None = sec.get("key_file", None, check.optional_path)
    raw_old: list[str] = sec.get("old_key_files", [], check.paths) or []
    key_file = _key_path(raw_key, path, environ, "secrets.key_file", sec.problems) if raw_key else None
    old = tuple(
        _key_path(raw, path, environ, f"secrets.old_key_files[{index}]", sec.problems)
        for index, raw in enumerate(raw_old)
    )
    if raw_old and key_file is None and sec.data.get("key_file") is None:
        sec.problems.append("secrets.old_key_files: only with secrets.key_file (the key that seals new values)")
    return SecretsSettings(key_file=key_file, old_key_files=old)


def _key_path(raw: str, config: Path, environ: Mapping[str, str], where: str, problems: list[str]) -> Path:
    """The key file's absolute path (relative to the config file; under systemd, its credential: see
    `cipher.resolve_key_path`), after checking that it is usable."""
    from hookd.cipher import KeyFileError, read_key, resolve_key_path  # noqa: PLC0415 (config stays light)

    key_path = resolve_key_path((config.parent / raw).absolute() if not Path(raw).is_absolute() else Path(raw), environ)
    try:
        read_key(key_path)
    except KeyFileError as exc:
        problems.append(f"{where}: {exc}")
    return key_path


def _secrets_notices(doc: Mapping[str, Any], subscriptions: SubscriptionSettings) -> tuple[str, ...]:
    part = doc.get("secrets")
    if subscriptions.source != "db" and isinstance(part, Mapping) and part.get("key_file"):
        return (
            "secrets.key_file has no effect with subscriptions.source: yaml: only the hooks database stores "
            "secrets encrypted (keep the hooks file mode 0600, or use secret_file/secret_env)",
        )
    return ()


def _logging(lg: check.Section) -> LoggingSettings:
    return LoggingSettings(
        format=lg.get("format", "auto", check.text(LOG_FORMATS)),
        level=lg.get("level", "info", check.text(LOG_LEVELS)),
    )


def absolute_sqlite_url(url: str, base: Path) -> str:
    """`sqlite:///relative.db` resolves against `base` (the config file's folder); others pass through."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + str((base / url[len("sqlite:///") :]).resolve())
    return url


def _subscriptions(s: check.Section, path: Path, problems: list[str]) -> SubscriptionSettings:
    source = s.get("source", "yaml", check.text(("yaml", "db")))
    raw_path: str | None = s.get("path", None, check.text())
    url: str | None = s.get("url", None, check.database_url, echo=False)
    poll = s.get("poll_interval_s", 1.0, check.number(0.1, 60))
    hooks_path: Path | None = None
    if source == "yaml":
        if raw_path is None:
            problems.append("subscriptions.path: required with source yaml (the hooks file)")
        else:
            hooks_path = Path(raw_path) if Path(raw_path).is_absolute() else path.parent / raw_path
        if url is not None:
            problems.append("subscriptions.url: only with source db (source yaml reads subscriptions.path)")
    else:
        if url is None and "url" not in s.data:
            problems.append("subscriptions.url: required with source db (sqlite:///PATH or postgresql://...)")
        if raw_path is not None:
            problems.append("subscriptions.path: only with source yaml (source db reads subscriptions.url)")
        url = absolute_sqlite_url(url, path.parent) if url else None
    return SubscriptionSettings(source=source, path=hooks_path, url=url, poll_interval_s=poll)


def _state(
    st: check.Section, path: Path, subscriptions: SubscriptionSettings, environ: Mapping[str, str]
) -> StateSettings:
    """The state database defaults to the hooks database, else `hookd-state.sqlite3` in the state folder.

    The state folder is systemd's `$STATE_DIRECTORY` when set (the unit's `StateDirectory=`), else the
    config file's folder.
    """
    url: str | None = st.get("url", None, check.database_url, echo=False)
    if url is None:
        if subscriptions.url:
            url = subscriptions.url
        else:
            folder = Path(environ.get("STATE_DIRECTORY", "").split(":")[0] or path.parent)
            url = f"sqlite:///{(folder / 'hookd-state.sqlite3').resolve()}"
    return StateSettings(
        url=absolute_sqlite_url(url, path.parent),
        history=st.get("history", True, check.boolean),
        retention_days=st.get("retention_days", 30.0, check.number(0.01, 3650)),
        response_excerpt_bytes=st.get("response_excerpt_bytes", 1024, check.number(0, 65536, integer=True)),
    )


def split_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (validated by the loader) as (host, port); `[::1]:8780` gives `::1`."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)
