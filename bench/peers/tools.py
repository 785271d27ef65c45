"""What the peers and the ceiling need from outside Python, installed by the bench itself.

- The Node.js peer's npm packages (exact versions in bench/peers/package.json) go into
  bench/peers/node_modules, a folder the bench owns (git-ignored); installed when missing or when
  package.json changed since. node and npm must be on the machine.
- wrk (the receiver's ceiling) comes from Debian: installed with apt-get when the bench runs as root,
  else the row fails with one line naming the package.

Each function returns None when the tool is ready, else one line saying what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PEERS = Path(__file__).resolve().parent
PACKAGE_JSON = PEERS / "package.json"
NODE_MODULES = PEERS / "node_modules"
_STAMP = NODE_MODULES / ".bench-installed"


def node_peer_ready() -> str | None:
    """Install the Node.js peer's packages if needed."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found: install Node.js (Debian: apt-get install nodejs npm)"
    wanted = PACKAGE_JSON.read_text()
    if _STAMP.exists() and _STAMP.read_text() == wanted:
        return None
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--omit=dev", "--prefix", str(PEERS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"npm install in {PEERS} failed: {last}"
    _STAMP.write_text(wanted)
    return None


def wrk_ready() -> str | None:
    """wrk on PATH, installing Debian's package when running as root."""
    if shutil.which("wrk"):
        return None
    if os.geteuid() != 0:
        return "wrk not found: install Debian's wrk (apt-get install wrk)"
    for step in (
        ["apt-get", "install", "-y", "-q", "wrk"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "wrk"],
    ):
        subprocess.run(step, capture_output=True, check=False, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if shutil.which("wrk"):
            return None
    return "wrk not found and apt-get install wrk failed: install Debian's wrk"
