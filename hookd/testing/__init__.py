"""Test and development helpers shipped with hookd: an in-memory broker, private services."""
