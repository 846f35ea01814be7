"""The version rules of a release, checked by .ci/run and the release workflow.

Cargo.toml's version is the one version: pyproject.toml takes it (``dynamic``),
CHANGELOG.md has a section for it, and a release tag (the optional argument,
``vX.Y.Z``) names exactly it. Exits non-zero with the rule that failed.
"""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    package = text.split("[package]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version\s*=\s*"([^"]+)"', package, flags=re.M)
    if match is None:
        raise SystemExit("Cargo.toml: no version in [package]")
    return match.group(1)


def main(argv: list[str]) -> int:
    version = cargo_version()
    problems = []
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    if not re.search(r'^dynamic\s*=\s*\[[^]]*"version"', project, flags=re.M):
        pinned = re.search(r'^version\s*=\s*"([^"]+)"', project, flags=re.M)
        if pinned is None or pinned.group(1) != version:
            problems.append(f"pyproject.toml's version must be dynamic or {version}")
    if not re.search(rf"^## \[{re.escape(version)}\]", (ROOT / "CHANGELOG.md").read_text(), flags=re.M):
        problems.append(f"CHANGELOG.md has no '## [{version}]' section")
    tag = argv[0] if argv else ""
    if tag and tag != f"v{version}":
        problems.append(f"tag {tag!r} does not name Cargo.toml's version {version} (expected v{version})")
    for problem in problems:
        print(f"check_version: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_version: {version} ({'tag ' + tag if tag else 'no tag'}) consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
