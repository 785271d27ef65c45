#!/usr/bin/env bash
# Check the systemd units in deploy/systemd with `systemd-analyze verify`, as the install guide uses
# them: every .service file as written, and the template once instantiated (hookd@1.service).
# The units start hookd through /usr/bin/env, so verify needs no installed hookd. Without
# systemd-analyze this is skipped with a note, except under CI=true, where it installs the
# `systemd` package (Debian) or fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null; then
  if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "verify-units: installing systemd for systemd-analyze" >&2
    apt-get install -y --no-install-recommends systemd >/dev/null \
      || { apt-get update >/dev/null && apt-get install -y --no-install-recommends systemd >/dev/null; }
  fi
fi
if ! command -v systemd-analyze >/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "verify-units: systemd-analyze is missing (install the systemd package)" >&2
    exit 1
  fi
  echo "verify-units: skipped, systemd-analyze is not installed" >&2
  exit 0
fi

units=(deploy/systemd/*.service)
# verify prints problems on stderr and may still exit 0 for some: any output is a failure.
output=$(systemd-analyze verify "${units[@]}" 2>&1) || { echo "$output" >&2; exit 1; }
if [ -n "$output" ]; then echo "$output" >&2; exit 1; fi
for template in deploy/systemd/*@.service; do
  [ -e "$template" ] || continue
  instance="$(basename "${template%@.service}")@1.service"
  output=$(systemd-analyze verify "$template:$instance" 2>&1) || { echo "$output" >&2; exit 1; }
  if [ -n "$output" ]; then echo "$output" >&2; exit 1; fi
done
echo "verify-units: ${units[*]} ok"
