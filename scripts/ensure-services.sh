#!/usr/bin/env bash
# Make sure the services the integration tests need answer: RabbitMQ on 127.0.0.1:5672.
# This machine kind starts them before a session; if one has stopped, start it the same way.
set -uo pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done; return 1; }

# An AMQP 0-9-1 protocol header must get the first byte of a Connection.Start frame (type 1) back.
# A node seen wedged here once accepted TCP connections and never answered them.
amqp_answers() {
  timeout 15 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672 && printf "AMQP\0\0\11\1" >&3 && head -c 1 <&3' 2>/dev/null |
    od -An -tx1 | grep -q 01
}
wait_amqp() { for _ in $(seq 1 60); do amqp_answers && return 0; sleep 1; done; return 1; }

if ! port_open 5672; then
  echo "ensure-services: RabbitMQ not answering on 5672, starting it" >&2
  if command -v rabbitmq-server >/dev/null; then
    rabbitmq-server -detached || true
  fi
  wait_port 5672 || { echo "ensure-services: RabbitMQ did not come up on 127.0.0.1:5672" >&2; exit 1; }
fi
if ! amqp_answers && ! amqp_answers; then  # two tries of 15 s each: only a wedged node fails both
  echo "ensure-services: RabbitMQ accepts connections on 5672 but does not speak AMQP: restarting it" >&2
  if command -v rabbitmqctl >/dev/null; then
    timeout 60 rabbitmqctl stop >/dev/null 2>&1 || pkill -9 -f beam.smp || true
    sleep 2
    rabbitmq-server -detached || true
  fi
fi
wait_amqp || { echo "ensure-services: RabbitMQ on 127.0.0.1:5672 does not answer AMQP" >&2; exit 1; }

# PostgreSQL on 127.0.0.1:5432 (trust auth, database test) for the database store's tests.
if ! port_open 5432; then
  echo "ensure-services: PostgreSQL not answering on 5432, starting it" >&2
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  wait_port 5432 || { echo "ensure-services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi
