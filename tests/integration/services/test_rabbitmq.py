"""`services.rabbitmq_url`: the configured broker when it answers AMQP, else a private node.

One private node (about 10 s to boot) serves the three tests; the last one closes it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest
from support.bootstrap import services
from support.bootstrap.devbroker import PrivateBroker, reachable, speaks_amqp

from .conftest import dead_amqp_url, gone


@pytest.fixture(scope="module")
def private_service(rabbitmq_installed: None) -> Iterator[services.Service]:
    """What `rabbitmq_url` returns for a configured URL that does not answer."""
    service = services.rabbitmq_url(dead_amqp_url())
    yield service
    service.close()


def test_a_dead_configured_broker_gets_a_private_node_that_serves_amqp(private_service: services.Service) -> None:
    """The private node's URL works for a client: a queue declared there takes a message and gives it back."""
    assert isinstance(private_service.private, PrivateBroker)
    connection = pika.BlockingConnection(pika.URLParameters(private_service.url))
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish("", queue, b"ping")
        for _ in range(50):
            _, _, body = channel.basic_get(queue, auto_ack=True)
            if body is not None:
                break
            connection.sleep(0.1)
        assert body == b"ping"
    finally:
        connection.close()


def test_an_answering_broker_is_used_as_is_and_left_running(private_service: services.Service) -> None:
    """A configured URL that answers AMQP is returned unchanged, and closing it stops nothing."""
    service = services.rabbitmq_url(private_service.url)
    assert (service.url, service.private) == (private_service.url, None)
    service.close()
    assert private_service.private is not None
    assert speaks_amqp("127.0.0.1", private_service.private.port)


def test_closing_the_private_service_stops_its_node(private_service: services.Service) -> None:
    """close() ends the node's process and frees its port (runs last: it ends the shared node)."""
    node = private_service.private
    assert node is not None and node.pid is not None
    pid = node.pid
    private_service.close()
    assert gone(pid)
    assert not reachable("127.0.0.1", node.port, timeout=0.5)
    assert not node.data_dir.exists()
