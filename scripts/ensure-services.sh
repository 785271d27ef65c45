#!/usr/bin/env bash
# Make sure the services the integration tests need answer: RabbitMQ on 127.0.0.1:5672.
# This machine kind starts them before a session; if one has stopped, start it the same way.
set -uo pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done; return 1; }

if ! port_open 5672; then
  echo "ensure-services: RabbitMQ not answering on 5672, starting it" >&2
  if command -v rabbitmq-server >/dev/null; then
    rabbitmq-server -detached || true
  fi
  wait_port 5672 || { echo "ensure-services: RabbitMQ did not come up on 127.0.0.1:5672" >&2; exit 1; }
fi

# PostgreSQL on 127.0.0.1:5432 (trust auth, database test) for the database store's tests.
if ! port_open 5432; then
  echo "ensure-services: PostgreSQL not answering on 5432, starting it" >&2
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  wait_port 5432 || { echo "ensure-services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi
