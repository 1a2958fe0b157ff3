import pytest


@pytest.fixture
def novalet_apps():
    """The app under test (novalet.testing loads it, and the core)."""
    return ["leases"]
