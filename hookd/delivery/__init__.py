"""Delivering over HTTP: the only package that sends HTTP requests.

`sender.Sender` makes one attempt (policy, deadline, outcome) on the delivery engine's event loop;
`http` holds the HTTP/1.1 exchange and the keep-alive pool under it.
"""

from hookd.delivery.sender import Sender

__all__ = ["Sender"]
