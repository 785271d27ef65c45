"""The receiving hosts: the receiver listens on 127.0.0.1 and on loopback aliases, one per hook."""

from __future__ import annotations

#: Distinct receiving hosts the receiver listens on (bench/receiver.py --aliases).
ALIASES = 1000


def host_alias(index: int) -> str:
    """Distinct receiving host number `index` (0-based): 127.0.1.1 ... 127.0.1.250, 127.0.2.1 ..."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"
