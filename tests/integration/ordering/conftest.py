"""The ordering suite's fixtures: the order-keeping receiver (tests/support/order_receiver.py)."""

from support.order_receiver import order_receiver

__all__ = ["order_receiver"]
