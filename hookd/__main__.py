"""`python -m hookd` is the `hookd` command."""

import sys

from hookd.cli import main

sys.exit(main())
