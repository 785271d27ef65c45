"""Chromium holding an admin's API key for hookd's origin (as a browser that remembered Basic
credentials would send it with every request there), on a page of another site: its forms, fetches
and images change nothing. On the main of 57fffb1 the text/plain form created a hook."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from support.stack import Stack, unique

from .pages import Console

ATTACKER_URL = "https://attacker.example/collect"


@pytest.fixture
def cached_key(console: Console) -> Iterator[Any]:
    """Every request of the browser carries `Authorization: Basic <key>:` (the cached credentials), until the end."""
    console.driver.execute_cdp_cmd("Network.enable", {})
    yield lambda key: console.driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders",
        {"headers": {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}},
    )
    console.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
    console.driver.execute_cdp_cmd("Network.disable", {})


def _attack_page(api: str, hook_id: str) -> str:
    """Forms and scripts of another site aimed at the account's API (none needs a preflight)."""
    body = json.dumps({"type": "web", "events": ["job"], "settings": {"url": ATTACKER_URL + "?a=b"}})
    name, value = body.split("=", 1)  # text/plain encodes name=value: the "=" lands inside the URL, valid JSON
    return f"""<!doctype html><html><head><title>Cute cats</title></head><body>
<form id="create" method="post" action="{api}/hooks" enctype="text/plain">
  <input type="hidden" name='{name}' value='{value}'><button id="go-create">Create</button></form>
<form id="redeliver" method="post" action="{api}/hooks/{hook_id}/deliveries/x/redeliver">
  <button id="go-redeliver">Redeliver</button></form>
<img id="ping" src="{api}/hooks/{hook_id}/ping" alt="">
<script>
window.results = [];
function hit(url, init) {{
  return fetch(url, Object.assign({{mode: "no-cors", credentials: "include"}}, init))
    .then(function () {{ window.results.push("sent"); }}, function () {{ window.results.push("blocked"); }});
}}
window.attack = function () {{
  return Promise.all([
    hit("{api}/hooks", {{method: "POST", headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(body)}}}),
    hit("{api}/hooks/{hook_id}/ping"),
    hit("{api}/hooks/{hook_id}/reset_salt", {{method: "PUT", mode: "cors"}}),
    hit("{api}/hooks/{hook_id}", {{method: "DELETE", mode: "cors"}}),
    hit("{api}/hooks/{hook_id}", {{method: "PUT", mode: "cors", body: '{{"active": false}}'}}),
  ]);
}};
</script></body></html>"""


def test_another_sites_forms_and_fetches_change_nothing(
    console: Console, stack: Stack, other_site: tuple[str, dict[str, str]], cached_key: Any
) -> None:
    """With the key attached to every request to hookd, another site's text/plain form, form POST,
    image and no-cors fetches (create, ping, reset_salt, update, DELETE, redeliver) change nothing."""
    account = unique("xsite")
    key = stack.key(account)
    path = f"/{account}/in"
    hook = (
        stack.client(key)
        .post(
            stack.api(account, "/hooks"),
            json={"events": ["job"], "settings": {"url": stack.receiver.url(path)}},
            timeout=10,
        )
        .json()
    )
    before = stack.revision()
    origin, site_pages = other_site
    site_pages["/cats"] = _attack_page(stack.api(account), hook["id"])
    cached_key(key)
    console.driver.get(origin + "/cats")
    console.driver.set_script_timeout(30)
    console.driver.execute_async_script("var done = arguments[0]; window.attack().then(done, done);")
    answers = []
    for form in ("go-create", "go-redeliver"):
        console.driver.get(origin + "/cats")
        console.press(console.driver.find_element(By.ID, form))
        answers.append(console.driver.find_element(By.TAG_NAME, "body").text)
    assert stack.revision() == before
    hooks = stack.client(key).get(stack.api(account, "/hooks"), timeout=10).json()
    assert [h["id"] for h in hooks] == [hook["id"]] and hooks[0]["active"] is True
    assert stack.client(key).get(stack.api(account, f"/hooks/{hook['id']}"), timeout=10).json()["salt"] == hook["salt"]
    assert stack.receiver.requests(path) == []  # no ping was sent
    assert all("Refused" in answer for answer in answers), answers
    refused = [e for e in stack.serve.logs() if e.get("msg") == "api.request" and e.get("status") == 403]
    assert len(refused) >= 5, refused  # the forms, the image and the simple fetches reached hookd: refused
