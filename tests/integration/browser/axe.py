"""axe-core, the accessibility engine, injected into the console's pages by selenium.

It comes from npm at the version of package.json beside this file, installed by the test setup into
node_modules here (once; again when package.json changes). Without node/npm or the registry, the
tests that need it fail under CI=true (skip elsewhere) with one line saying what to install.
Running it through WebDriver is not subject to the page's Content-Security-Policy (no script may
load from the page itself), so the console's CSP stays as strict as it is.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from support.services import unavailable

HERE = Path(__file__).parent
PACKAGE = HERE / "package.json"
SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"
_STAMP = HERE / "node_modules" / ".installed-from"
_lock = threading.Lock()
#: The rules axe runs: WCAG 2.0/2.1 A and AA, and its best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def source() -> str:
    """axe.min.js, installed with npm first when missing or older than package.json."""
    with _lock:
        wanted = PACKAGE.read_text(encoding="utf-8")
        if not SCRIPT.exists() or not _STAMP.exists() or _STAMP.read_text(encoding="utf-8") != wanted:
            _install()
            _STAMP.write_text(wanted, encoding="utf-8")
        return SCRIPT.read_text(encoding="utf-8")


def _install() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            unavailable(f"axe-core needs {tool}: install Node.js (Debian: apt-get install nodejs npm)")
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", str(HERE)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not SCRIPT.exists():
        last = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[-1]
        unavailable(f"npm install of axe-core into {HERE} failed ({last}): run npm install --prefix {HERE}")


def violations(driver: Any) -> list[dict[str, Any]]:
    """axe's violations on the page the driver shows (id, impact, help, and the failing nodes' targets)."""
    driver.execute_script(source())
    driver.set_script_timeout(60)
    found = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(function (r) { done(JSON.stringify(r.violations.map(function (v) {"
        "  return {id: v.id, impact: v.impact, help: v.help,"
        "          nodes: v.nodes.map(function (n) { return n.target.join(' '); })}; }))); })"
        ".catch(function (e) { done(JSON.stringify([{id: 'axe-error', help: String(e)}])); });",
        TAGS,
    )
    result: list[dict[str, Any]] = json.loads(found)
    return result
