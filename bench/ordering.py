"""Jobs out of order, computed at the receiver (issue 19): pure, from the first arrivals it recorded.

For one hook and one job, the first arrival of each of the job's events (one `X-Hook-Delivery`
each; a repeat of a delivery id is a duplicate, not a new arrival) must come in publish order
(`seq`). A job is out of order when, at any hook, a later event's first arrival came before an
earlier one's. A job whose events did not all arrive is judged on those that did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class OrderCount:
    jobs: int  # jobs seen at the receiver
    jobs_out_of_order: int  # jobs out of order at one hook or more
    sequences: int  # (hook, job) pairs seen
    sequences_out_of_order: int


def out_of_order(first_arrivals: Iterable[tuple[str, str, int]]) -> OrderCount:
    """`first_arrivals`: `(hook, job, seq)` in arrival order, one per delivery id (bench/receiver.py)."""
    sequences: dict[tuple[str, str], list[int]] = {}
    for hook, job, seq in first_arrivals:
        sequences.setdefault((hook, job), []).append(seq)
    broken = {key for key, seqs in sequences.items() if any(a > b for a, b in pairwise(seqs))}
    jobs = {job for _, job in sequences}
    return OrderCount(
        jobs=len(jobs),
        jobs_out_of_order=len({job for _, job in broken}),
        sequences=len(sequences),
        sequences_out_of_order=len(broken),
    )
