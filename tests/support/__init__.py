"""Building blocks the test suites share (receivers, broker helpers, hookd processes, in-process daemons).
They are modules, not conftests: a suite imports what it uses from here."""
