"""The admin command groups of `hookd`: `hooks`, `deliveries`, `db`, `dlq` and `explain`.

Each group module has `register(subparsers)`, which adds its parser, and `run(args)`, which `cli.py`
dispatches to. Exit codes follow `cli.py`: 0 success, 1 runtime failure (database or broker
unreachable), 2 a bad argument, in which case nothing was changed.
"""

from hookd.commands import db, deliveries, dlq, explain, hooks

__all__ = ["db", "deliveries", "dlq", "explain", "hooks"]
