"""Fault injection (issue 4): hookd under crashes, broker restarts, hostile receivers and failing hooks.

Each test publishes a known set of events and accounts for every (event, hook) pair with the ledger:
delivered, duplicated, dead-lettered or lost. Nothing may be lost.
"""
