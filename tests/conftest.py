"""Shared fixtures.

Real instrument files live in ``../shared/data`` next to the repository (see its
README). Tests that need them use the ``shared_data`` fixture, which skips with a
clear message when the folder is absent (e.g. on a user's machine).
"""

from __future__ import annotations

import os
from pathlib import Path

# pytest-xdist runs one worker per core; BLAS threads on top of that only oversubscribe the
# machine (small dot products became 1000x slower under load).  Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib

matplotlib.use("Agg")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FLOWCELL_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real instrument files not found at {SHARED_DATA} (set FLOWCELL_SHARED_DATA)")
    return SHARED_DATA
