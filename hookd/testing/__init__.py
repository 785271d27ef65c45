"""Test and development helpers shipped with hookd, so that users' tests and ours share them.

- `devbroker`: a private, throw-away RabbitMQ node (`PrivateBroker`);
- `cluster`: a private RabbitMQ cluster of such nodes (`RabbitCluster`);
- `postgres`: a private, throw-away PostgreSQL cluster (`PrivatePostgres`);
- `services`: the bootstrap a test session runs first: use the configured RabbitMQ and PostgreSQL
  when they answer, else start private ones (installing missing Debian packages when root).
- `stub_broker`: an in-memory broker, to build the daemon in-process without RabbitMQ.

Nothing here is imported by the daemon itself; these modules start processes and are meant for test
and development machines only.
"""
