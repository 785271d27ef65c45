"""Test helpers shipped with hookd, for users' tests as well as ours.

- `stub_broker`: an in-memory broker (`StubBroker`), to build the daemon in-process without RabbitMQ
  (dramatiq ships its `brokers/stub.py` beside its real broker for the same reason).

Only what a user's tests need ships here. What installs packages or starts servers (private
RabbitMQ nodes and clusters, a private PostgreSQL, the test session's bootstrap) stays in the test
tree, `tests/support/bootstrap/`: no production install should carry it.
"""
