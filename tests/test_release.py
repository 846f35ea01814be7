"""The release rules (.ci/check_version.py): one version, from Cargo.toml, named by
the tag and the CHANGELOG. Skipped where the source tree is not next to the tests."""

import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / ".ci" / "check_version.py"


def run(*args):
    if not SCRIPT.exists():
        pytest.skip("the source tree's .ci/ is not next to these tests")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_versions_agree_and_a_matching_tag_passes():
    import ferroconv

    untagged = run()
    assert untagged.returncode == 0, untagged.stderr
    tagged = run(f"v{ferroconv.__version__}")
    assert tagged.returncode == 0, tagged.stderr


def test_a_tag_naming_another_version_fails():
    result = run("v99.0.0")
    assert result.returncode == 1
    assert "does not name Cargo.toml's version" in result.stderr
