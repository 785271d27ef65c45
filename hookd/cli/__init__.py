"""The `hookd` command line: one module per command group, dispatched from `main`.

Exit codes: 0 success, 1 runtime failure (database or broker unreachable), 2 a bad argument or
configuration, in which case nothing was changed.
"""

from hookd.cli.main import _parser, main

__all__ = ["_parser", "main"]
