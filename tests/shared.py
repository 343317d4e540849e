"""`shared/` beside the repository: the upstream Hedgehog CRDs and samples that tests read.

Found relative to the repository root (a clone can live anywhere, with `shared/` beside it), or
at `$HHSYNC_SHARED`. CI always has it; elsewhere its absence skips the tests that need it, and
says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("HHSYNC_SHARED") or ROOT.parent / "shared")


def hedgehog(relative: str) -> Path:
    """A file of `shared/hedgehog/`; skips the test without it, fails it in CI."""
    path = shared_dir() / "hedgehog" / relative
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing: CI must have shared/ beside the checkout")
        pytest.skip(f"{path} is missing (shared/hedgehog is not beside this checkout)")
    return path
