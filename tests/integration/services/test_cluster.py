"""RabbitCluster: three private nodes form one cluster, and a quorum queue outlives its first node."""

from __future__ import annotations

import json
import time

import pika
import pytest
from support.bootstrap.cluster import RabbitCluster

pytestmark = pytest.mark.cluster

QUEUE = "hookd-cluster-check"


@pytest.fixture(scope="module")
def cluster(rabbit_cluster: RabbitCluster) -> RabbitCluster:
    """The run's 3-node cluster (built by `RabbitCluster`, the bootstrap under test), whole for this
    module; the quorum test stops node 1 and leaves it down (the next module starts it again)."""
    rabbit_cluster.make_whole()
    return rabbit_cluster


def channel_on(url: str) -> tuple[pika.BlockingConnection, pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()  # a confirmed quorum-queue publish is on a majority of the members
    return connection, channel


def get_one(url: str, timeout_s: float = 30.0) -> bytes | None:
    """Consume one message from QUEUE through the node at `url` (retrying while a leader is elected)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection, channel = channel_on(url)
            try:
                method, _, body = channel.basic_get(QUEUE)
                if method is not None:
                    channel.basic_ack(method.delivery_tag)
                    return body
            finally:
                connection.close()
        except pika.exceptions.AMQPError:
            pass  # the queue's leader was on a node that just left: a new one takes a few seconds
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def test_three_nodes_run_as_one_cluster(cluster: RabbitCluster) -> None:
    """cluster_status, asked of node 1, lists all three nodes as running."""
    assert sorted(cluster.cluster_status()) == sorted(cluster.names)
    assert len(set(cluster.urls)) == 3


def test_a_quorum_queue_spans_all_nodes_and_survives_losing_node_1(cluster: RabbitCluster) -> None:
    """Declared via node 1 it has a member on every node; messages move between nodes; node 1 may stop."""
    connection, channel = channel_on(cluster.urls[0])
    try:
        channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.basic_publish("", QUEUE, b"first", pika.BasicProperties(delivery_mode=2), mandatory=True)
        channel.basic_publish("", QUEUE, b"second", pika.BasicProperties(delivery_mode=2), mandatory=True)
    finally:
        connection.close()

    listed = json.loads(cluster.nodes[0].cli("list_queues", "name", "members", "--formatter", "json"))
    members = next(queue["members"] for queue in listed if queue["name"] == QUEUE)
    assert sorted(members) == sorted(cluster.names)

    assert get_one(cluster.urls[2]) == b"first"
    cluster.stop_node(0)
    assert get_one(cluster.urls[1]) == b"second"
