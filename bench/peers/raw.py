"""The raw HTTP client ceiling: the same POSTs as hookd (bodies, signed headers), no broker, one
`requests.Session` in one loop in one process. Prints its own CPU seconds and peak RSS as JSON.

    python -m bench.peers.raw SPEC.json    # {"events": N, "hooks": [...]}
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import requests

from bench.load import EVENT, BenchHook, delivery_headers, event_body, new_event_id


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    hooks = [BenchHook(**h) for h in spec["hooks"]]
    session = requests.Session()
    session.trust_env = False
    failures = 0
    before = os.times()
    for seq in range(int(spec["events"])):
        body, event_id = event_body(seq, seq), new_event_id()
        for hook in hooks:
            try:
                response = session.post(
                    hook.url,
                    data=body,
                    headers=delivery_headers(hook, EVENT, event_id, body),
                    timeout=10,
                    allow_redirects=False,
                )
                response.close()
            except requests.RequestException:
                failures += 1
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cpu_s": cpu, "peak_rss_mb": rss_mb, "failures": failures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
