"""The broker: the only package that imports pika.

- `topology`: what hookd declares (queues, exchange, delay queues) and with which arguments;
- `messages`: `Incoming`, `Outgoing` and the `Connection` protocol the rest of hookd uses;
- `nodes`: a cluster's nodes in the order one process tries them;
- `connection`: `BrokerConnection` over pika, and `connect(settings)`.
"""

from hookd.broker.connection import BrokerConnection, connect
from hookd.broker.messages import Connection, Incoming, Outgoing
from hookd.broker.nodes import NodeRing, node_of
from hookd.broker.topology import Topology, topology_for

__all__ = [
    "BrokerConnection",
    "Connection",
    "Incoming",
    "NodeRing",
    "Outgoing",
    "Topology",
    "connect",
    "node_of",
    "topology_for",
]
