"""Ordered delivery as the account admin sees it: the hook page says how many deliveries wait for an
earlier event of their job, while its first event waits in a durable retry; none once it went through."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from support.stack import Stack, database_url, need_broker, unique, wait_for

from .console_client import sign_in

#: One attempt per delivery, then a durable retry 30 s later: the head waits long enough to be seen.
DELIVERY = {"inline_attempts": 1, "retry_delays_s": [30], "breaker_threshold": 0}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need_broker()
    folder = tmp_path_factory.mktemp("ordering-console")
    with database_url("sqlite", folder) as url:
        running = Stack(folder, url, delivery=DELIVERY, workers=1)
        yield running
        running.close()


def _waiting(page: str) -> str | None:
    found = re.search(r'<dd id="waiting">(.*?)</dd>', page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else None


def test_the_hook_page_shows_deliveries_waiting_behind_a_retried_one(stack: Stack) -> None:
    """job.submitted fails (503) and waits 30 s for its retry; job.started and job.completed of the
    same job wait behind it: the hook page says "2 waiting", and that the earlier event is retried."""
    account = unique("ordered")
    key = stack.key(account)
    path = f"/{account}/hook"
    stack.receiver.program(path, 503, then=200)
    payload = {"type": "web", "events": ["job"], "settings": {"url": stack.receiver.url(path)}}
    answer = stack.client(key).post(stack.api(account, "/hooks"), json=payload, timeout=10)
    assert answer.status_code == 201, answer.text
    hook_id = answer.json()["id"]
    stack.wait_loaded()
    for event in ("job.submitted", "job.started", "job.completed"):
        stack.publish(event, account, {"id": 42, "status": event})
    stack.wait_requests(path, 1)
    browser = sign_in(stack, key)

    def shown() -> str | None:
        text = _waiting(browser.get(f"{stack.url}/hooks/{hook_id}", timeout=10).text)
        return text if text and text.startswith("2 waiting") else None

    text = wait_for(shown, "the hook page's Waiting row", 30)
    assert "for an earlier event of the same job or cluster; 1 earlier event is being retried" in " ".join(text.split())
