"""The per-key hourly rate limit: headers on every answer, 429 past it, counted per key in the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.helpers import free_port
from support.stack import Process, Stack, database_url, need_broker, unique

LIMIT = 3


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """hookd serve with api.rate_limit_per_hour: 3, and two serve processes on one database."""
    need_broker()
    folder = tmp_path_factory.mktemp(f"rate-{request.param}")
    with database_url(request.param, folder) as url:
        running = Stack(folder, url, run=False, api={"rate_limit_per_hour": LIMIT})
        yield running
        running.close()


def test_past_the_limit_a_key_gets_429_with_the_rate_limit_headers(limited: Stack) -> None:
    """Three requests count X-RateLimit-Remaining down; the fourth is 429 with Retry-After; other keys go on."""
    account = unique("limited")
    client = limited.client(limited.key(account))
    remaining = []
    for _ in range(LIMIT):
        answer = client.get(limited.api(account, "/hooks"), timeout=10)
        assert answer.status_code == 200
        assert answer.headers["X-RateLimit-Limit"] == str(LIMIT)
        remaining.append(int(answer.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    refused = client.get(limited.api(account, "/hooks"), timeout=10)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert int(refused.headers["X-RateLimit-Reset"]) > 0
    assert set(refused.json()) == {"message"}
    other = limited.client(limited.key(account)).get(limited.api(account, "/hooks"), timeout=10)
    assert other.status_code == 200 and other.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_the_count_is_shared_by_every_serve_process(limited: Stack) -> None:
    """A second hookd serve on the same database continues the key's count: the limit is per key."""
    account = unique("shared")
    key = limited.key(account)
    client = limited.client(key)
    assert client.get(limited.api(account, "/hooks"), timeout=10).headers["X-RateLimit-Remaining"] == "2"
    second_config = limited.folder / "second.yaml"
    port = free_port()
    second_config.write_text(limited.config.read_text().replace(f"127.0.0.1:{limited.port}", f"127.0.0.1:{port}"))
    second = Process("serve", second_config, limited.folder)
    try:
        second.wait_log("api.listening")
        answer = client.get(f"http://127.0.0.1:{port}/{account}/api/hooks", timeout=10)
        assert answer.headers["X-RateLimit-Remaining"] == "1"
    finally:
        code = second.stop()
    assert code == 0
