"""subscriptions.yaml_store: the hooks file, validated with every problem reported at once."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookd.errors import ConfigError
from hookd.resource import hook_resource
from hookd.subscriptions.hookset import HookSet
from hookd.subscriptions.model import BasicAuth, Hook
from hookd.subscriptions.yaml_store import YamlStore, parse_hooks

SOURCE = "hooks.yaml"

VALID = textwrap.dedent(
    """\
    hooks:
      - id: "42"
        account_id: acme
        name: ops monitor
        url: https://ops.example.com/hooks
        events: [job.failed, cluster]
        active: true
        secret: s3cr3t-ops
        basic_auth: {username: hookd, password: pa55word}
        insecure_ssl: false
      - id: 43
        account_id: 1001
        url: " https://hooks.example.org/etl "
        events: [job.completed]
        secret: s3cr3t-etl
    """
)


def _entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "1",
        "account_id": "acme",
        "url": "https://hooks.example.com/in",
        "events": ["job.failed"],
        "secret": "s3cr3t",
    }
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not _DROP}


_DROP = object()


def _parse(doc: object, *, base_dir: Path = Path("/nonexistent"), environ: dict[str, str] | None = None) -> HookSet:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    return parse_hooks(text, source=SOURCE, base_dir=base_dir, environ=environ or {})


def _problems(doc: object, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        _parse(doc, **kwargs)
    assert info.value.source == SOURCE
    return info.value.problems


def _one(entry: dict[str, Any], **kwargs: Any) -> Hook:
    (hook,) = _parse({"hooks": [entry]}, **kwargs)
    return hook


def test_valid_file_parses_every_field() -> None:
    """A valid hooks file yields hooks with every field read."""
    hooks = _parse(VALID)
    ops = hooks.get("42")
    assert ops is not None
    assert (ops.account_id, ops.name, ops.url) == ("acme", "ops monitor", "https://ops.example.com/hooks")
    assert ops.events == ("job.failed", "cluster")
    assert (ops.secret, ops.active, ops.insecure_ssl) == ("s3cr3t-ops", True, False)
    assert ops.basic_auth == BasicAuth("hookd", "pa55word")


def test_integer_ids_and_defaults() -> None:
    """Integer ids become text, the url is stripped and optional fields take their defaults."""
    etl = _parse(VALID).get("43")
    assert etl is not None
    assert (etl.account_id, etl.url) == ("1001", "https://hooks.example.org/etl")
    assert (etl.name, etl.active, etl.basic_auth, etl.insecure_ssl) == ("", True, None, False)
    assert etl.display_name == "https://hooks.example.org/etl"


def test_hooks_keep_file_order() -> None:
    """Hooks are kept in file order."""
    assert [h.id for h in _parse(VALID)] == ["42", "43"]


@pytest.mark.parametrize("text", ["", "hooks:\n", "hooks: []\n"])
def test_empty_file_has_no_hooks(text: str) -> None:
    """An empty file or empty hooks list yields an empty set."""
    assert len(_parse(text)) == 0


def test_example_hooks_file_is_valid() -> None:
    """The shipped example config/hooks.yaml parses once its secret_env variable is set."""
    path = Path(__file__).resolve().parents[2] / "config" / "hooks.yaml"
    hooks = YamlStore(path, environ={"HOOKD_SECRET_OPS": "from-env"}).load()
    assert len(hooks) >= 1


def test_secret_inline() -> None:
    """`secret` gives the secret inline."""
    assert _one(_entry(secret="inline")).secret == "inline"


def test_secret_env() -> None:
    """`secret_env` reads the secret from the named environment variable."""
    hook = _one(_entry(secret=_DROP, secret_env="HOOK_SECRET"), environ={"HOOK_SECRET": "from-env"})
    assert hook.secret == "from-env"


def test_secret_env_missing_variable() -> None:
    """A secret_env naming an unset variable is reported with the variable name."""
    problems = _problems({"hooks": [_entry(secret=_DROP, secret_env="HOOK_SECRET")]})
    assert problems == ("hooks[0].secret_env: environment variable HOOK_SECRET is not set or empty",)


def test_secret_env_empty_variable() -> None:
    """A secret_env naming an empty variable is reported."""
    problems = _problems({"hooks": [_entry(secret=_DROP, secret_env="HOOK_SECRET")]}, environ={"HOOK_SECRET": ""})
    assert problems[0].startswith("hooks[0].secret_env:")


def test_secret_file_relative_to_base_dir(tmp_path: Path) -> None:
    """A relative secret_file is read next to the hooks file, stripped of its trailing newline."""
    (tmp_path / "ops.secret").write_text("from-file\n", encoding="utf-8")
    hook = _one(_entry(secret=_DROP, secret_file="ops.secret"), base_dir=tmp_path)
    assert hook.secret == "from-file"


def test_secret_file_absolute(tmp_path: Path) -> None:
    """An absolute secret_file is read as given."""
    path = tmp_path / "abs.secret"
    path.write_text("absolute", encoding="utf-8")
    hook = _one(_entry(secret=_DROP, secret_file=str(path)), base_dir=Path("/nonexistent"))
    assert hook.secret == "absolute"


def test_secret_file_missing(tmp_path: Path) -> None:
    """An unreadable secret_file is reported with its path."""
    problems = _problems({"hooks": [_entry(secret=_DROP, secret_file="missing.secret")]}, base_dir=tmp_path)
    assert problems[0].startswith(f"hooks[0].secret_file: cannot read {tmp_path / 'missing.secret'}")


def test_secret_file_empty(tmp_path: Path) -> None:
    """A secret_file holding only whitespace is reported as empty."""
    (tmp_path / "empty.secret").write_text("\n", encoding="utf-8")
    problems = _problems({"hooks": [_entry(secret=_DROP, secret_file="empty.secret")]}, base_dir=tmp_path)
    assert problems == (f"hooks[0].secret_file: {tmp_path / 'empty.secret'} is empty",)


def test_secret_file_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    """A secret_file that is not UTF-8 is reported as a problem, not a UnicodeDecodeError."""
    (tmp_path / "binary.secret").write_bytes(b"\xff\xfe\x00secret")
    problems = _problems({"hooks": [_entry(secret=_DROP, secret_file="binary.secret")]}, base_dir=tmp_path)
    assert problems[0].startswith("hooks[0].secret_file:")


def test_two_secret_sources_is_a_problem() -> None:
    """Giving both secret and secret_env is refused."""
    problems = _problems({"hooks": [_entry(secret_env="X")]}, environ={"X": "y"})
    assert problems == ("hooks[0]: exactly one of secret, secret_env or secret_file is required",)


def test_three_secret_sources_is_a_problem() -> None:
    """Giving all three secret sources is refused."""
    problems = _problems({"hooks": [_entry(secret_env="X", secret_file="f")]}, environ={"X": "y"})
    assert problems == ("hooks[0]: exactly one of secret, secret_env or secret_file is required",)


def test_no_secret_is_a_problem() -> None:
    """A hook without any secret source is refused."""
    problems = _problems({"hooks": [_entry(secret=_DROP)]})
    assert problems == ("hooks[0]: exactly one of secret, secret_env or secret_file is required",)


@pytest.mark.parametrize("value", ["", 12345, None, ["a"]])
def test_secret_must_be_non_empty_string(value: object) -> None:
    """An empty or non-string secret is refused."""
    assert _problems({"hooks": [_entry(secret=value)]}) == ("hooks[0].secret: must be a non-empty string",)


def test_duplicate_ids_are_reported() -> None:
    """Two hooks with the same id are refused, naming both positions."""
    problems = _problems({"hooks": [_entry(id="7"), _entry(id=7)]})
    assert problems == ("hooks[1].id: duplicate id '7' (also hooks[0])",)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/in",
        "https:///path-only",
        "https://user:pw@hooks.example.com/in",
        "https://user@hooks.example.com/in",
        "hooks.example.com/in",
        "",
        None,
        42,
        "https://hooks.example.com:99999/",
    ],
)
def test_bad_url_is_reported(url: object) -> None:
    """A url that is not http(s) with a host and without userinfo is refused."""
    problems = _problems({"hooks": [_entry(url=url)]})
    assert len(problems) == 1
    assert problems[0].startswith("hooks[0].url: ")


def test_bad_url_problem_does_not_echo_credentials() -> None:
    """A url refused for carrying credentials is not echoed back with its password."""
    problems = _problems({"hooks": [_entry(url="https://user:hunter2@hooks.example.com/")]})
    assert not any("hunter2" in p for p in problems)


def test_unknown_event_is_reported() -> None:
    """An unknown event name is refused and quoted."""
    problems = _problems({"hooks": [_entry(events=["job.failed", "job.exploded"])]})
    assert len(problems) == 1
    assert problems[0].startswith("hooks[0].events: unknown event 'job.exploded'")


@pytest.mark.parametrize("events", [[], "job.failed", None, {"job": True}])
def test_events_must_be_a_non_empty_list(events: object) -> None:
    """events must be a non-empty list."""
    problems = _problems({"hooks": [_entry(events=events)]})
    assert len(problems) == 1
    assert problems[0].startswith("hooks[0].events: must be a non-empty list")


def test_ping_is_not_a_subscribable_event() -> None:
    """`ping` is not listed in events: every hook gets pings anyway."""
    assert _problems({"hooks": [_entry(events=["ping"])]})[0].startswith("hooks[0].events: unknown event 'ping'")


def test_unknown_hook_key_is_reported() -> None:
    """An unknown key in a hook is reported with its path."""
    assert _problems({"hooks": [_entry(secert="x")]}) == ("hooks[0].secert: unknown key",)


def test_unknown_top_level_key_is_reported() -> None:
    """An unknown top-level key is reported."""
    assert _problems({"hooks": [_entry()], "webhooks": []}) == ("webhooks: unknown key",)


@pytest.mark.parametrize("field", ["id", "account_id"])
@pytest.mark.parametrize("value", [_DROP, "", True, None, 1.5])
def test_id_and_account_must_be_text_or_integer(field: str, value: object) -> None:
    """id and account_id are required strings or integers (not booleans, floats or blanks)."""
    assert _problems({"hooks": [_entry(**{field: value})]}) == (
        f"hooks[0].{field}: required, a non-empty string or integer",
    )


@pytest.mark.parametrize("field", ["active", "insecure_ssl"])
def test_flags_must_be_booleans(field: str) -> None:
    """active and insecure_ssl must be true or false."""
    assert _problems({"hooks": [_entry(**{field: "yes"})]}) == (f"hooks[0].{field}: must be true or false",)


def test_name_must_be_a_string() -> None:
    """A non-string name is refused."""
    assert _problems({"hooks": [_entry(name=["x"])]}) == ("hooks[0].name: must be a string",)


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ("hookd:pw", "hooks[0].basic_auth: must be a mapping with username and password"),
        ({"username": "u", "password": "p", "realm": "r"}, "hooks[0].basic_auth: must be a mapping"),
        ({"password": "p"}, "hooks[0].basic_auth.username: must be a string"),
        ({"username": "", "password": "p"}, "hooks[0].basic_auth.username: required"),
        ({"username": "a:b", "password": "p"}, "hooks[0].basic_auth.username: must not contain ':'"),
        ({"username": "u", "password": 123}, "hooks[0].basic_auth.password: must be a string"),
    ],
)
def test_bad_basic_auth_is_reported(auth: object, problem: str) -> None:
    """basic_auth must be a mapping with a colon-free username and a string password."""
    problems = _problems({"hooks": [_entry(basic_auth=auth)]})
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_basic_auth_password_is_optional() -> None:
    """basic_auth without a password uses an empty one."""
    assert _one(_entry(basic_auth={"username": "u"})).basic_auth == BasicAuth("u", "")


def test_bad_basic_auth_does_not_echo_password() -> None:
    """A refused basic_auth does not echo its password in the problem."""
    problems = _problems({"hooks": [_entry(basic_auth={"username": "a:b", "password": "hunter2"})]})
    assert not any("hunter2" in p for p in problems)


def test_entry_that_is_not_a_mapping() -> None:
    """A hooks entry that is not a mapping is reported by position."""
    assert _problems({"hooks": ["https://x"]}) == ("hooks[0]: must be a mapping",)


def test_hooks_that_is_not_a_list() -> None:
    """A `hooks` value that is not a list is refused."""
    assert _problems({"hooks": {"id": 1}}) == ("hooks: must be a list",)


def test_top_level_that_is_not_a_mapping() -> None:
    """A document that is a list is refused."""
    assert _problems([_entry()]) == ("top level must be a mapping with a 'hooks' list",)


def test_invalid_yaml() -> None:
    """A file that is not valid YAML is a ConfigError."""
    assert _problems("hooks: [unclosed\n")[0].startswith("not valid YAML")


def test_every_problem_is_reported_at_once() -> None:
    """Problems in several hooks are all reported, each under its `hooks[i].key` path."""
    doc = {
        "hooks": [
            _entry(id="1", url="ftp://x/", events=["nope"]),
            _entry(id="2", secret=_DROP, secret_env="UNSET", colour="red"),
            _entry(id="1"),
            "not a mapping",
            _entry(id="5", account_id=True, basic_auth={"username": "a:b"}),
        ],
        "extra": 1,
    }
    problems = _problems(doc)
    expected = [
        "extra: unknown key",
        "hooks[0].url:",
        "hooks[0].events: unknown event 'nope'",
        "hooks[1].colour: unknown key",
        "hooks[1].secret_env: environment variable UNSET",
        "hooks[3]: must be a mapping",
        "hooks[4].account_id:",
        "hooks[4].basic_auth.username:",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), prefix
    assert len(problems) == len(expected)


def test_duplicate_of_an_invalid_hook_is_not_reported() -> None:
    """A hook whose first occurrence was invalid is not also reported as a duplicate (one problem per cause)."""
    problems = _problems({"hooks": [_entry(id="1", url="ftp://x/"), _entry(id="1")]})
    assert problems == (problems[0],)
    assert problems[0].startswith("hooks[0].url:")


def test_yaml_store_reads_file_on_each_load(tmp_path: Path) -> None:
    """YamlStore reads the file on every load, so edits are picked up."""
    path = tmp_path / "hooks.yaml"
    path.write_text(yaml.safe_dump({"hooks": [_entry(id="1")]}), encoding="utf-8")
    store = YamlStore(path, environ={})
    assert [h.id for h in store.load()] == ["1"]
    path.write_text(yaml.safe_dump({"hooks": [_entry(id="1"), _entry(id="2")]}), encoding="utf-8")
    assert [h.id for h in store.load()] == ["1", "2"]
    assert store.describe() == f"yaml:{path}"


def test_yaml_store_missing_file(tmp_path: Path) -> None:
    """A missing hooks file is a ConfigError naming the file."""
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        YamlStore(path, environ={}).load()
    assert info.value.source == str(path)
    assert info.value.problems[0].startswith("cannot read hooks file:")


def test_yaml_store_resolves_secret_file_next_to_hooks_file(tmp_path: Path) -> None:
    """YamlStore resolves a relative secret_file against the hooks file's directory."""
    (tmp_path / "h.secret").write_text("next-to-it", encoding="utf-8")
    path = tmp_path / "hooks.yaml"
    path.write_text(yaml.safe_dump({"hooks": [_entry(secret=_DROP, secret_file="h.secret")]}), encoding="utf-8")
    (hook,) = YamlStore(path, environ={}).load()
    assert hook.secret == "next-to-it"


def test_hook_repr_hides_secret_and_password() -> None:
    """A hook's repr contains neither its secret nor its basic-auth password."""
    hook = _one(_entry(secret="s3cr3t-value", basic_auth={"username": "hookd", "password": "pa55word"}))
    text = repr(hook)
    assert "s3cr3t-value" not in text
    assert "pa55word" not in text
    assert "hookd" in text


def test_hook_str_hides_secret() -> None:
    """str() of a hook (as formatted into messages) does not contain the secret either."""
    hook = _one(_entry(secret="s3cr3t-value", basic_auth={"username": "hookd", "password": "pa55word"}))
    assert "s3cr3t-value" not in f"{hook}"
    assert "pa55word" not in f"{hook}"


def test_hook_resource_has_no_secret() -> None:
    """A hook's resource (hookd.resource, unrevealed) is the web hook resource shape, with no secret or password."""
    hook = _one(_entry(name="ops", secret="s3cr3t-value", basic_auth={"username": "hookd", "password": "pa55word"}))
    public = hook_resource(hook, ordered_default=True)
    assert public == {
        "id": "1",
        "type": "web",
        "name": "ops",
        "active": True,
        "events": ["job.failed"],
        "settings": {
            "url": "https://hooks.example.com/in",
            "basic_auth": True,
            "insecure_ssl": False,
            "ordered": True,
            "rate_limit": None,
        },
        "account_id": "acme",
    }
    assert "s3cr3t-value" not in repr(public)
    assert "pa55word" not in repr(public)


_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
_hook_entries = st.one_of(
    _yaml_values,
    st.dictionaries(
        st.sampled_from(
            ["id", "account_id", "name", "url", "events", "active", "secret", "secret_env", "basic_auth", "other"]
        ),
        st.one_of(_yaml_values, st.sampled_from(["https://h.example/", "job", "job.failed", "acme"])),
    ),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(doc=st.one_of(_yaml_values, st.fixed_dictionaries({"hooks": st.lists(_hook_entries, max_size=4)})))
def test_parse_hooks_raises_only_config_error(doc: object) -> None:
    """On any YAML document parse_hooks returns a HookSet or raises ConfigError."""
    try:
        hooks = _parse(doc, environ={"SET": "value"})
    except ConfigError as exc:
        assert exc.problems
    else:
        assert all(h.secret for h in hooks)
