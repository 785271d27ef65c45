"""Tests of the admin command line: `hookd hooks`, `hookd deliveries`, `hookd db`."""
