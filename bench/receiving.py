"""The receiver process (bench/receiver.py) as the harness drives it: start, reset, read, check, stop."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from typing import Any

from bench.hosts import ALIASES
from bench.load import ROOT, BenchHook
from bench.procs import cpu_seconds
from hookd.signing import verify, verify_standard


class ReceiverProcess:
    """bench/receiver.py in its own process, listening on 127.0.0.1 and `ALIASES` loopback aliases."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", "--aliases", str(ALIASES)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError("the receiver did not start")
        self.port = int(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _call(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self, *, order: bool = False) -> None:
        """Forget what arrived; with `order`, keep each delivery id's first arrival (bench/ordering.py)."""
        self._call("/_reset?order=1" if order else "/_reset", "POST")

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("/_count").items()}

    def stats(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self._call("/_stats")
        return result

    def first_arrivals(self) -> list[tuple[str, str, int]]:
        return [(str(h), str(j), int(s)) for h, j, s in self._call("/_order")]

    def signature_problem(self, cls: str, hooks: list[BenchHook]) -> str | None:
        """None when the first request of `cls` carries both valid signatures (X-Hook-Signature and the
        Standard Webhooks headers) for its hook; else what is wrong. Every sender must sign."""
        sample = self._call("/_sample").get(cls)
        if sample is None:
            return f"no {cls} request arrived"
        headers = {str(k).lower(): str(v) for k, v in sample["headers"].items()}
        body = str(sample["body"]).encode()
        hook = next((h for h in hooks if h.id == headers.get("x-hook-id")), None)
        if hook is None:
            return f"unknown X-Hook-ID {headers.get('x-hook-id')!r}"
        if not verify(hook.secret, body, headers.get("x-hook-signature", "")):
            return "X-Hook-Signature does not verify"
        if not verify_standard(hook.secret, headers, body):
            return "webhook-signature does not verify"
        return None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
