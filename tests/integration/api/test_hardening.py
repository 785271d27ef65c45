"""The API against what issue 21 found: cross-site requests, 500s from odd input, fields without limits,
and a spec that disagreed with the server. Each test failed on the main of 57fffb1."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from support.stack import Stack, unique

ATTACKER = "https://attacker.example"


def _hook(stack: Stack, key: str, account: str, **settings: Any) -> dict[str, Any]:
    body = {"type": "web", "events": ["job"], "settings": {"url": "https://receiver.example.com/in", **settings}}
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


# -- cross-site request forgery ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_write_whose_body_is_not_sent_as_json_is_415_and_changes_nothing(stack: Stack, content_type: str) -> None:
    """POST and PUT with a body typed as a form or text (what a page of another site can send) answer 415."""
    account = unique("type")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    before = stack.revision()
    body = json.dumps({"type": "web", "events": ["job"], "settings": {"url": f"{ATTACKER}/steal"}}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    client = stack.client(key)
    created = client.post(stack.api(account, "/hooks"), data=body, headers=headers, timeout=10)
    changed = client.put(
        stack.api(account, f"/hooks/{hook['id']}"), data=b'{"active": false}', headers=headers, timeout=10
    )
    salted = client.put(
        stack.api(account, f"/hooks/{hook['id']}/reset_salt"), data=b'{"overlap_s": 0}', headers=headers, timeout=10
    )
    for answer in (created, changed, salted):
        assert answer.status_code == 415, answer.text
        assert set(answer.json()) == {"message"}
    assert stack.revision() == before


@pytest.mark.parametrize(
    "marker", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": ATTACKER}, {"Sec-Fetch-Site": "same-site"}]
)
def test_every_state_changing_route_refuses_what_a_browser_marks_as_cross_site(
    stack: Stack, marker: dict[str, str]
) -> None:
    """Create, update, delete, ping, reset_salt and redeliver: 403 with the key, when the browser says another site."""
    account = unique("xsite")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    before = stack.revision()
    client = stack.client(key)
    base = stack.api(account, f"/hooks/{hook['id']}")
    answers = [
        client.post(
            stack.api(account, "/hooks"),
            json={"events": ["job"], "settings": {"url": ATTACKER}},
            headers=marker,
            timeout=10,
        ),
        client.put(base, json={"settings": {"url": ATTACKER}}, headers=marker, timeout=10),
        client.delete(base, headers=marker, timeout=10),
        client.get(base + "/ping", headers=marker, timeout=10),
        client.put(base + "/reset_salt", headers=marker, timeout=10),
        client.post(base + "/deliveries/d-1/redeliver", headers=marker, timeout=10),
    ]
    for answer in answers:
        assert answer.status_code == 403, (answer.request.method, answer.request.url, answer.text)
        assert "another" in answer.json()["message"]
    assert stack.revision() == before
    assert client.get(base, timeout=10).json()["salt"] == hook["salt"]


def test_this_origins_own_requests_and_programs_pass(stack: Stack) -> None:
    """A request from this origin (Origin and Sec-Fetch-Site same-origin) or typed (none) still works."""
    account = unique("own")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    for headers in ({"Origin": stack.url, "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
        answer = stack.client(key).put(
            stack.api(account, f"/hooks/{hook['id']}"), json={"name": "x"}, headers=headers, timeout=10
        )
        assert answer.status_code == 200, answer.text


def test_a_browser_is_never_asked_for_basic_credentials(stack: Stack) -> None:
    """A 401 to a browser (fetch metadata) is challenged with a scheme browsers never prompt for, not Basic."""
    answer = requests.get(
        stack.api("acme", "/hooks"), headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"}, timeout=10
    )
    assert answer.status_code == 401
    assert not answer.headers["WWW-Authenticate"].lower().startswith("basic")
    assert requests.get(stack.api("acme", "/hooks"), timeout=10).headers["WWW-Authenticate"] == 'Basic realm="hookd"'


# -- no 500 from any input ------------------------------------------------------------------------------------
def test_huge_offsets_are_422_not_500(stack: Stack) -> None:
    """An offset past 2^63 on deliveries (a SQLite overflow before) and on hooks is a 422 naming offset."""
    account = unique("offset")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    for path in (f"/hooks/{hook['id']}/deliveries", "/hooks"):
        answer = stack.client(key).get(stack.api(account, path), params={"offset": "9223372036854775808"}, timeout=10)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "offset"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "web", "name": "\\ud800", "events": ["job"], "settings": {"url": "https://x.example.com/"}}',
        b'{"type": "web", "events": ["job"], "settings": {"url": "https://x.example.com/\\ud800"}}',
        b'{"type": "web", "events": ["job", "\\udfff"], "settings": {"url": "https://x.example.com/"}}',
        b'{"type": "web", "\\ud800key": 1, "events": ["job"], "settings": {"url": "https://x.example.com/"}}',
        b'{"type": "web", "events": ["job"], "settings": {"url": "https://x.example.com/", "\\ud800": 1}}',
    ],
)
def test_lone_surrogates_anywhere_are_a_422_in_json(stack: Stack, raw: bytes) -> None:
    """A lone surrogate in a name, URL, event or key (even an unknown key) is a JSON 422, on POST and PUT."""
    account = unique("surrogate")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    headers = {"Content-Type": "application/json"}
    for method, path in (("post", "/hooks"), ("put", f"/hooks/{hook['id']}")):
        answer = stack.client(key).request(method, stack.api(account, path), data=raw, headers=headers, timeout=10)
        assert answer.status_code == 422, answer.text
        assert answer.headers["Content-Type"].startswith("application/json") and answer.json()["errors"]


def test_ids_no_database_can_hold_are_not_found(stack: Stack) -> None:
    """A NUL or control character in a hook id, delivery id or account is a 404, not a database error."""
    account = unique("nul")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    client = stack.client(key)
    for path in ("/hooks/1%00", f"/hooks/{hook['id']}/deliveries/%00/redeliver", "/hooks/%01/deliveries"):
        method = "post" if path.endswith("redeliver") else "get"
        assert client.request(method, stack.api(account, path), timeout=10).status_code == 404, path
    assert client.get(f"{stack.url}/{account}%00/api/hooks", timeout=10).status_code == 404


# -- the field rules --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("settings.url", "https://x.example.com/a b"),
        ("settings.url", 'https://x.example.com/"q"'),
        ("settings.url", "https://x.example.com/<x>"),
        ("settings.url", "https://x.example.com/in\r\nX: y"),
        ("settings.url", "https://x.example.com/" + "a" * 2100),
        ("name", "n" * 65_000),
        ("name", "ops\x00"),
        ("name", "ops\x07bell"),
        ("name", "invoice\u202egpj.exe"),
        ("settings.basic_auth_data", base64.b64encode(("u" * 300 + ":p").encode()).decode()),
        ("settings.basic_auth_data", base64.b64encode(b"u:" + b"p" * 1100).decode()),
        ("settings.basic_auth_data", base64.b64encode(b"u\x00:p").decode()),
        ("settings.rate_limit", 0),
        ("settings.ordered", "yes"),
    ],
)
def test_field_problems_are_422_and_nothing_is_stored(stack: Stack, field: str, value: object) -> None:
    """URLs that are not RFC 3986 URIs, over-long names, users and passwords, control characters and U+202E: 422."""
    account = unique("fields")
    key = stack.key(account)
    body: dict[str, Any] = {"type": "web", "events": ["job"], "settings": {"url": "https://x.example.com/"}}
    if field.startswith("settings."):
        body["settings"][field.removeprefix("settings.")] = value
    else:
        body[field] = value
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=body, timeout=10)
    assert answer.status_code == 422, answer.text
    assert field in {e["field"] for e in answer.json()["errors"]}
    assert stack.client(key).get(stack.api(account, "/hooks"), timeout=10).json() == []


def test_a_url_the_network_policy_refuses_is_403(stack: Stack) -> None:
    """A valid URL to an address no policy allows (unspecified 0.0.0.0) is a 403 naming settings.url."""
    account = unique("policy")
    answer = stack.client(stack.key(account)).post(
        stack.api(account, "/hooks"), json={"events": ["job"], "settings": {"url": "http://0.0.0.0/in"}}, timeout=10
    )
    assert answer.status_code == 403, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["settings.url"]


def test_ordered_and_rate_limit_are_settings_of_the_api(stack: Stack) -> None:
    """settings.ordered shows the effective choice, settings.rate_limit the limit; null returns to the defaults."""
    account = unique("ordered")
    key = stack.key(account)
    hook = _hook(stack, key, account, ordered=False, rate_limit=0.5)
    assert (hook["settings"]["ordered"], hook["settings"]["rate_limit"]) == (False, 0.5)
    url = stack.api(account, f"/hooks/{hook['id']}")
    changed = stack.client(key).put(url, json={"settings": {"ordered": None, "rate_limit": None}}, timeout=10).json()
    assert (changed["settings"]["ordered"], changed["settings"]["rate_limit"]) == (
        True,
        None,
    )  # delivery.ordered_default
    code, out = stack.cli("hooks", "show", hook["id"], "--json")
    assert code == 0 and json.loads(out)["settings"]["ordered"] is True


# -- the spec and the server agree -----------------------------------------------------------------------------
def test_the_spec_requires_what_the_server_requires(stack: Stack) -> None:
    """PUT takes a partial body and the spec requires nothing of it; reset_salt's body is optional in both;
    settings.url is required on create; unknown fields are refused and the spec says additionalProperties false."""
    account = unique("spec")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    spec = stack.client(None).get(f"{stack.url}/openapi.json", timeout=10).json()
    schemas = spec["components"]["schemas"]
    update = spec["paths"]["/{account_id}/api/hooks/{hook_id}"]["put"]["requestBody"]["content"]["application/json"]
    assert update["schema"] == {"$ref": "#/components/schemas/HookUpdate"} and "required" not in schemas["HookUpdate"]
    client = stack.client(key)
    assert client.put(stack.api(account, f"/hooks/{hook['id']}"), json={"active": False}, timeout=10).status_code == 200
    reset = spec["paths"]["/{account_id}/api/hooks/{hook_id}/reset_salt"]["put"]["requestBody"]
    assert reset["required"] is False
    assert client.put(stack.api(account, f"/hooks/{hook['id']}/reset_salt"), timeout=10).status_code == 200
    assert schemas["HookCreate"]["properties"]["settings"]["required"] == ["url"]
    missing = client.post(stack.api(account, "/hooks"), json={"events": ["job"], "settings": {}}, timeout=10)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "settings.url"
    for name in ("HookCreate", "HookUpdate", "Hook", "Delivery", "Status", "Error"):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["HookCreate"]["properties"]["settings"]["additionalProperties"] is False


def test_the_spec_documents_every_field_the_server_returns(stack: Stack) -> None:
    """secret, secret_whsec, salt and settings.basic_auth_data, ordered, rate_limit are in the Hook schema."""
    account = unique("fields-doc")
    hook = _hook(stack, stack.key(account), account, basic_auth_data=base64.b64encode(b"u:p").decode())
    schema = stack.client(None).get(f"{stack.url}/openapi.json", timeout=10).json()["components"]["schemas"]["Hook"]
    assert set(hook) <= set(schema["properties"])
    assert set(hook["settings"]) <= set(schema["properties"]["settings"]["properties"])
    assert {"secret", "secret_whsec", "salt"} <= set(hook)


def test_basic_auth_data_beside_basic_auth_false_is_refused(stack: Stack) -> None:
    """basic_auth false with basic_auth_data is a 422 naming basic_auth_data, not silently ignored."""
    account = unique("auth")
    key = stack.key(account)
    data = base64.b64encode(b"u:p").decode()
    answer = stack.client(key).post(
        stack.api(account, "/hooks"),
        json={
            "events": ["job"],
            "settings": {"url": "https://x.example.com/", "basic_auth": False, "basic_auth_data": data},
        },
        timeout=10,
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["settings.basic_auth_data"]


@pytest.mark.parametrize("query", ["since=", "since=2026-11-29", "status=", "event=", "offset=", "limit="])
def test_empty_or_partial_filters_are_422(stack: Stack, query: str) -> None:
    """An empty since, status, event, offset or limit (or a date without a time) is a 422, not ignored."""
    account = unique("filters")
    key = stack.key(account)
    hook = _hook(stack, key, account)
    answer = stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}/deliveries?{query}"), timeout=10)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == query.split("=", maxsplit=1)[0]
