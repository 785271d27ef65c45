"""Shared by every test directory. Fixtures live next to the tests that use them:
`tests/unit/conftest.py` (values, no network) and `tests/integration/conftest.py` (real broker)."""
