"""The hooks REST API against a real `hookd serve`: every endpoint and every error, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

from support.stack import Stack, unique

VND = "application/vnd.xplenty+json; version=2"
NOT_FOUND = {"message": "Item not found."}


def create(stack: Stack, key: str, account: str, **body: Any) -> dict[str, Any]:
    """Create a hook through the API and return its resource (the receiver's /in by default)."""
    payload = {"type": "web", "events": ["job"], "settings": {"url": stack.receiver.url("/in")}, **body}
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=payload, timeout=10)
    assert answer.status_code == 201, answer.text
    resource: dict[str, Any] = answer.json()
    return resource


def test_hook_events_lists_every_group_and_event(stack: Stack) -> None:
    """GET /hook_events answers the 16 entries of the catalogue (job, cluster, and hookd's own hook
    notifications), each group first, as the issues spell them."""
    answer = stack.client(None).get(f"{stack.url}/hook_events", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    events = answer.json()
    assert len(events) == 16
    assert events[0] == {"id": "job", "group_name": "Job", "name": "All Job Notifications"}
    assert events[1] == {"id": "job.submitted", "group_name": "Job", "name": "Job Submitted"}
    assert {"id": "cluster", "group_name": "Cluster", "name": "All Cluster Notifications"} in events
    assert {"id": "cluster.error", "group_name": "Cluster", "name": "Cluster Error"} in events
    hook_group = events[events.index({"id": "hook", "group_name": "Hook", "name": "All Hook Notifications"}) :]
    assert [(e["id"], e["name"]) for e in hook_group] == [
        ("hook", "All Hook Notifications"),
        ("hook.failing", "Hook Failing"),
        ("hook.disabled", "Hook Disabled"),
        ("hook.recovered", "Hook Recovered"),
    ]
    key = stack.key("acme")
    assert stack.client(key).get(stack.api("acme", "/hook_events"), timeout=10).json() == events


def test_no_bad_or_revoked_key_is_401_with_a_basic_challenge(stack: Stack) -> None:
    """Without a key, with a wrong one, a Bearer token or a revoked key: 401, WWW-Authenticate Basic realm hookd."""
    account = unique("auth")
    key = stack.key(account)
    code, out = stack.cli("api-keys", "list", "--account", account, "--json")
    key_id = __import__("json").loads(out)[0]["id"]
    attempts = [
        stack.client(None).get(stack.api(account, "/hooks"), timeout=10),
        stack.client("hookd_" + "x" * 43).get(stack.api(account, "/hooks"), timeout=10),
        stack.client(None).get(stack.api(account, "/hooks"), headers={"Authorization": f"Bearer {key}"}, timeout=10),
    ]
    assert stack.cli("api-keys", "revoke", key_id)[0] == 0
    attempts.append(stack.client(key).get(stack.api(account, "/hooks"), timeout=10))
    for answer in attempts:
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="hookd"'
        assert "WWW-Authenticate" in set(answer.raw.headers.keys())  # spelled so on the wire, too
        assert set(answer.json()) == {"message"}
    assert code == 0


def test_create_answers_201_with_the_salt_and_the_hook_is_listed_and_shown(stack: Stack) -> None:
    """POST /hooks: 201 with the generated salt; list shows it without the salt; show has salt and statuses."""
    account = unique("create")
    key = stack.key(account)
    client = stack.client(key)
    body = {
        "type": "web",
        "name": "ops monitor",
        "events": ["job.failed", "cluster"],
        "settings": {
            "url": "https://ops.example.com/hooks",
            "basic_auth": True,
            "basic_auth_data": base64.b64encode(b"ops:pa55").decode(),
            "insecure_ssl": True,
        },
    }
    answer = client.post(stack.api(account, "/hooks"), json=body, headers={"Accept": VND}, timeout=10)
    assert answer.status_code == 201, answer.text
    hook = answer.json()
    assert len(hook["salt"]) >= 40
    assert hook["type"] == "web" and hook["name"] == "ops monitor" and hook["active"] is True
    assert hook["events"] == ["job.failed", "cluster"]
    assert hook["settings"] == {
        "url": "https://ops.example.com/hooks",
        "basic_auth": True,
        "basic_auth_data": base64.b64encode(b"ops:pa55").decode(),
        "insecure_ssl": True,
        "ordered": True,
        "rate_limit": None,
    }
    assert answer.headers["Location"].endswith(f"/{account}/api/hooks/{hook['id']}")
    listed = client.get(stack.api(account, "/hooks"), headers={"Accept": VND}, timeout=10).json()
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "salt" not in listed[0] and "basic_auth_data" not in listed[0]["settings"]
    shown = client.get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()
    assert shown["salt"] == hook["salt"]
    assert [s["name"] for s in shown["statuses"]] == [
        "job.failed",
        *(f"cluster.{e}" for e in ("requested", "available", "terminated", "idled", "error")),
    ]
    assert shown["statuses"][0] == {
        "name": "job.failed",
        "last_trigger_status": None,
        "last_trigger_time": None,
        "last_response_code": None,
        "last_response": None,
    }


def test_defaults_active_true_and_name_the_url(stack: Stack) -> None:
    """A minimal body makes an active hook named after its URL."""
    account = unique("defaults")
    hook = create(stack, stack.key(account), account)
    assert hook["active"] is True and hook["name"] == hook["settings"]["url"]


def test_an_invalid_body_is_422_per_field_and_changes_nothing(stack: Stack) -> None:
    """Every problem is listed with its field, and the hooks database is not written."""
    account = unique("invalid")
    key = stack.key(account)
    client = stack.client(key)
    before = stack.revision()
    bad = {
        "type": "email",
        "events": ["job.exploded"],
        "active": "yes",
        "colour": "blue",
        "settings": {"url": "ftp://x", "basic_auth": True, "allow_private": True},
    }
    answer = client.post(stack.api(account, "/hooks"), json=bad, timeout=10)
    assert answer.status_code == 422
    body = answer.json()
    assert body["message"]
    fields = {e["field"] for e in body["errors"]}
    assert {
        "type",
        "events",
        "active",
        "colour",
        "settings.url",
        "settings.basic_auth_data",
        "settings.allow_private",
    } <= fields
    assert all(set(e) == {"field", "message"} and e["message"] for e in body["errors"])
    for raw in (b"{not json", b"[1, 2]", b""):
        answer = client.post(
            stack.api(account, "/hooks"), data=raw, headers={"Content-Type": "application/json"}, timeout=10
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "body"
    hook_url = {"type": "web", "events": ["job"], "settings": {"url": "http://localhost:1/private"}}
    assert (
        client.post(stack.api(account, "/hooks"), json=hook_url, timeout=10).status_code == 201
    )  # loopback: allowed by the operator's policy
    hook = client.get(stack.api(account, "/hooks"), timeout=10).json()[0]
    middle = stack.revision()
    for change in (
        {"events": []},
        {"settings": {"url": "not a url"}},
        {"settings": {"allow_private": True}},
        {"name": 7},
    ):
        answer = client.put(stack.api(account, f"/hooks/{hook['id']}"), json=change, timeout=10)
        assert answer.status_code == 422, change
    assert stack.revision() == middle
    assert client.get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()["events"] == ["job"]
    assert middle == before + 1


def test_update_changes_only_the_given_fields_and_replaces_events(stack: Stack) -> None:
    """PUT changes what it names; events are replaced as a whole; basic_auth false removes it."""
    account = unique("update")
    key = stack.key(account)
    hook = create(
        stack,
        key,
        account,
        name="first",
        settings={"url": "https://a.example.com/", "basic_auth_data": base64.b64encode(b"u:p").decode()},
    )
    answer = stack.client(key).put(
        stack.api(account, f"/hooks/{hook['id']}"),
        json={"events": ["cluster.error"], "active": False, "settings": {"basic_auth": False}},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert changed["events"] == ["cluster.error"] and changed["active"] is False and changed["name"] == "first"
    assert changed["settings"] == {
        "url": "https://a.example.com/",
        "basic_auth": False,
        "insecure_ssl": False,
        "ordered": True,
        "rate_limit": None,
    }
    assert "salt" not in changed


def test_delete_answers_the_deleted_hook_then_404(stack: Stack) -> None:
    """DELETE: 200 with what the hook was; afterwards the id is not found."""
    account = unique("delete")
    key = stack.key(account)
    hook = create(stack, key, account)
    answer = stack.client(key).delete(stack.api(account, f"/hooks/{hook['id']}"), timeout=10)
    assert answer.status_code == 200 and answer.json()["id"] == hook["id"] and "salt" not in answer.json()
    again = stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10)
    assert again.status_code == 404 and again.json() == NOT_FOUND


def test_another_accounts_hooks_are_not_found_both_ways(stack: Stack) -> None:
    """A key of account A gets exactly the 404 of a missing id for B's hooks, by either path; and B likewise."""
    a, b = unique("a"), unique("b")
    key_a, key_b = stack.key(a), stack.key(b)
    hook_a, hook_b = create(stack, key_a, a), create(stack, key_b, b)
    calls = [
        ("GET", ""),
        ("PUT", ""),
        ("DELETE", ""),
        ("GET", "/ping"),
        ("PUT", "/reset_salt"),
        ("GET", "/deliveries"),
        ("POST", "/deliveries/nope/redeliver"),
    ]
    for key, own, other, other_hook in ((key_a, a, b, hook_b), (key_b, b, a, hook_a)):
        client = stack.client(key)
        for method, tail in calls:
            for url in (
                stack.api(own, f"/hooks/{other_hook['id']}{tail}"),  # the other's hook id under one's own account
                stack.api(other, f"/hooks/{other_hook['id']}{tail}"),  # the other's account path
                stack.api(own, f"/hooks/999999{tail}"),  # an id that does not exist
            ):
                answer = client.request(
                    method, url, json={"name": "x"} if method == "PUT" and not tail else None, timeout=10
                )
                assert answer.status_code == 404, (method, url, answer.text)
                assert answer.json() == NOT_FOUND
        listing = client.get(stack.api(other, "/hooks"), timeout=10)
        assert listing.status_code == 404 and listing.json() == NOT_FOUND
    assert stack.client(key_b).get(stack.api(b, f"/hooks/{hook_b['id']}"), timeout=10).json()["name"] == hook_b["name"]
    operator = stack.client(stack.key(None))
    assert operator.get(stack.api(a, f"/hooks/{hook_a['id']}"), timeout=10).status_code == 200
    assert operator.get(stack.api(b, f"/hooks/{hook_a['id']}"), timeout=10).status_code == 404


def test_list_pages_with_link_headers_and_sorts(stack: Stack) -> None:
    """offset/limit pages with RFC 5988 Link headers (first, prev, next, last); sort and direction order them."""
    account = unique("pages")
    key = stack.key(account)
    client = stack.client(key)
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    ids = [create(stack, key, account, name=n)["id"] for n in names]
    first = client.get(stack.api(account, "/hooks"), params={"limit": 2}, timeout=10)
    assert [h["id"] for h in first.json()] == ids[:2]
    assert first.headers["X-Total-Count"] == "5"
    assert 'rel="next"' in first.headers["Link"] and 'rel="last"' in first.headers["Link"]
    seen = [h["id"] for h in first.json()]
    link = first.links["next"]["url"]
    while link:
        page = client.get(link, timeout=10)
        seen += [h["id"] for h in page.json()]
        assert "prev" in page.links and "first" in page.links
        link = page.links.get("next", {}).get("url")
    assert seen == ids
    last = client.get(first.links["last"]["url"], timeout=10).json()
    assert [h["id"] for h in last] == ids[4:]
    by_name = client.get(stack.api(account, "/hooks"), params={"sort": "name"}, timeout=10).json()
    assert [h["name"] for h in by_name] == sorted(names)
    backwards = client.get(
        stack.api(account, "/hooks"), params={"sort": "name", "direction": "desc"}, timeout=10
    ).json()
    assert [h["name"] for h in backwards] == sorted(names, reverse=True)
    created = client.get(
        stack.api(account, "/hooks"), params={"sort": "created", "direction": "desc"}, timeout=10
    ).json()
    assert [h["id"] for h in created] == ids[::-1]
    updated = client.get(stack.api(account, "/hooks"), params={"sort": "updated"}, timeout=10).json()
    assert [h["id"] for h in updated] == ids
    lone = client.get(stack.api(account, "/hooks"), params={"limit": 1000}, timeout=10)
    assert len(lone.json()) == 5 and "Link" not in lone.headers
    for params in ({"sort": "colour"}, {"direction": "sideways"}, {"limit": "0"}, {"offset": "-1"}, {"limit": "ten"}):
        bad = client.get(stack.api(account, "/hooks"), params=params, timeout=10)
        assert bad.status_code == 422, params
        assert bad.json()["errors"][0]["field"] == next(iter(params))


def test_every_authenticated_answer_reports_the_rate_limit(stack: Stack) -> None:
    """X-RateLimit-Limit is the configured default and X-RateLimit-Remaining counts down per request."""
    account = unique("quota")
    client = stack.client(stack.key(account))
    first = client.get(stack.api(account, "/hooks"), timeout=10)
    second = client.get(stack.api(account, "/hooks/404"), timeout=10)
    assert first.headers["X-RateLimit-Limit"] == "5000"
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(first.raw.headers.keys())
    assert int(first.headers["X-RateLimit-Remaining"]) == 4999
    assert int(second.headers["X-RateLimit-Remaining"]) == 4998


def test_openapi_describes_every_endpoint(stack: Stack) -> None:
    """/openapi.json is OpenAPI 3.1 and names every path and method of the issue, with Basic auth."""
    doc = stack.client(None).get(f"{stack.url}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    expected = {
        "/{account_id}/api/hooks": {"get", "post"},
        "/{account_id}/api/hooks/{hook_id}": {"get", "put", "delete"},
        "/{account_id}/api/hooks/{hook_id}/ping": {"get"},
        "/{account_id}/api/hooks/{hook_id}/reset_salt": {"put"},
        "/{account_id}/api/hooks/{hook_id}/deliveries": {"get"},
        "/{account_id}/api/hooks/{hook_id}/deliveries/{delivery_id}/redeliver": {"post"},
        "/hook_events": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(doc["paths"][path]), path
    assert doc["components"]["securitySchemes"]["apiKey"] == {"type": "http", "scheme": "basic"}
    refs = {ref for ref in _refs(doc)}
    assert all(ref.split("/")[-1] in doc["components"][ref.split("/")[-2]] for ref in refs)


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if "$ref" in value else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []
