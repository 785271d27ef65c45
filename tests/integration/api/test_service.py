"""`hookd serve` as a systemd service: READY=1 once listening, STOPPING=1 and exit 0 on SIGTERM; its unit file."""

from __future__ import annotations

import socket
from pathlib import Path

from support.stack import Process, Stack, need_broker

UNIT = Path(__file__).resolve().parents[3] / "deploy" / "systemd" / "hookd-api.service"


def test_serve_notifies_systemd_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """With $NOTIFY_SOCKET set, serve sends READY=1 once it answers, STOPPING=1 on SIGTERM, and exits 0."""
    need_broker()
    stack = Stack(tmp_path, f"sqlite:///{tmp_path / 'hooks.db'}", run=False)
    stack.serve.stop()
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.settimeout(20)
        process = Process("serve", stack.config, tmp_path, env={"NOTIFY_SOCKET": address})
        try:
            assert systemd.recv(4096).decode().startswith("READY=1")
            assert stack.client(None).get(f"{stack.url}/hook_events", timeout=10).status_code == 200
        finally:
            code = process.stop()
            stopping = systemd.recv(4096).decode()
            stack.close()
    assert code == 0 and stopping.startswith("STOPPING=1")
    assert any(e.get("msg") == "api.stopped" for e in process.logs())


def test_the_unit_is_a_hardened_notify_service() -> None:
    """hookd-api.service: Type=notify, the shared env file, dynamic user and state, and the daemon's hardening."""
    lines = [line.strip() for line in UNIT.read_text(encoding="utf-8").splitlines()]
    settings = {line for line in lines if "=" in line and not line.startswith("#")}
    for expected in (
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=/usr/bin/env hookd serve --config /etc/hookd/hookd.yaml",
        "EnvironmentFile=-/etc/hookd/hookd.env",
        "DynamicUser=yes",
        "StateDirectory=hookd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "KillSignal=SIGTERM",
        "WantedBy=multi-user.target",
    ):
        assert expected in settings, expected
