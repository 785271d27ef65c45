#!/usr/bin/env bash
# Run a command in a fresh network namespace with only loopback up: a machine where no service runs,
# to check that the test suite sets itself up (private RabbitMQ, PostgreSQL; Chromium on loopback).
#   CI=true scripts/netns-run.sh make test
# Needs root (unshare -n). The namespace is new and ours, so every process left in it when the
# command ends was started by the command (Erlang's epmd daemonises itself when none runs); those
# are stopped by pid (TERM, then KILL after 5 s), so nothing keeps the namespace alive afterwards.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD [ARG...]" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "netns-run: needs root to create a network namespace (unshare -n)" >&2
  exit 2
fi

exec unshare -n -- bash -c '
  set -u
  leftovers() {  # pids in this namespace, less this shell, this subshell and its own ps and awk
    local own inner=$BASHPID  # read here: inside the pipeline it would name ps or awk
    own=$(stat -L -c %i /proc/$$/ns/net)
    ps -e -o pid=,ppid=,netns= |
      awk -v own="$own" -v me="$$" -v inner="$inner" '\''
        $3 == own && $1 != me && $1 != inner && $2 != inner { print $1 }'\''
  }
  stop_leftovers() {
    local pids
    pids=$(leftovers)
    [ -z "$pids" ] && return 0
    echo "netns-run: stopping processes left in the namespace: $(echo $pids)" >&2
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 1 50); do
      pids=$(leftovers)
      [ -z "$pids" ] && return 0
      sleep 0.1
    done
    kill -KILL $pids 2>/dev/null
    return 0
  }
  trap stop_leftovers EXIT
  ip link set lo up
  "$@"
' netns-run "$@"
