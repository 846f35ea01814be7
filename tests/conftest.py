"""Shared test configuration: hypothesis profiles and import path.

Profiles (max_examples per property test):
  ci        selected when the environment has CI=true: bounded, derandomized
            (the same examples every run, no example database) and prints the
            reproduction blob of a failure
  dev       the default locally
  thorough  HYPOTHESIS_PROFILE=thorough for a long soak
HYPOTHESIS_PROFILE=<name> overrides the choice.
"""

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

import ferroconv as fc

# the helper modules (NumPy references, hypothesis strategies, the fuzz worker)
# live in tests/support/ and are imported by their bare names
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))

_common = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=40, print_blob=True, derandomize=True,
                          database=None, **_common)
settings.register_profile("dev", max_examples=150, **_common)
settings.register_profile("thorough", max_examples=1000, **_common)


def _profile():
    explicit = os.environ.get("HYPOTHESIS_PROFILE")
    if explicit:
        return explicit
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        return "ci"
    return "dev"


settings.load_profile(_profile())


def pytest_report_header(config):
    return f"hypothesis profile: {_profile()} (max_examples={settings.default.max_examples})"


@pytest.fixture
def restore_threads():
    """Yield the current thread count and restore it after the test."""
    before = fc.get_num_threads()
    yield before
    fc.set_num_threads(before)
    assert fc.get_num_threads() == before


# the session's dask.distributed cluster (tests/support/dask_support.py; skips without dask)
from dask_support import dask_client  # noqa: E402,F401
