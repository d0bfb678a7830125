"""The compiled pass before the batch engine's split transform (ingest.processing.zf_fft_nb).

* :func:`prep_split` writes what numpy's five passes write (copy to complex64, apodization,
  zero filling, the odd bins' twiddle): the same bits where numpy's complex64 product uses
  fused multiply-add (x86-64-v3 processors), within one float32 ulp anywhere; and the FID's
  sum of squares.
* The batch engine's rows are the same with and without it.

Data: random FIDs over eight decades of amplitude; a Bruker series written by
tests/generators/bruker_expno.py (imports nothing from the package).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from generators.bruker_expno import GD, fid, write_expno

numba = pytest.importorskip("numba")
if os.environ.get("FLOWCELL_NUMBA", "").strip().lower() in ("0", "false", "no", "off"):
    pytest.skip("compiled kernels switched off (FLOWCELL_NUMBA=0)", allow_module_level=True)

from ingest.processing import zf_fft_nb  # noqa: E402
from ingest.processing.fft_precision import fid_norm  # noqa: E402
from ingest.processing.zf_fft import half_twiddle  # noqa: E402


def _numpy_prep(f: np.ndarray, apod: np.ndarray, tw: np.ndarray, h: int) -> np.ndarray:
    """The engine's numpy passes (batch_nmr._spectra_real and zf_fft.split_fft, before the FFT)."""
    td = f.size
    x = np.empty(td, np.complex64)
    x[:] = f
    u = np.empty((2, h), np.complex64)
    np.multiply(x, apod, out=u[0, :td])
    u[0, td:] = 0.0
    np.multiply(u[0], tw, out=u[1])
    return u


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 ulps (0 for equal values: +0 and -0 are one number)."""
    fa, fb = a.view(np.float32), b.view(np.float32)
    d = np.abs(fa.view(np.int32).astype(np.int64) - fb.view(np.int32).astype(np.int64))
    return np.where(fa == fb, 0, d)


def test_prep_split_is_numpys_passes():
    nb = zf_fft_nb.load()
    assert nb is not None
    rng = np.random.default_rng(11)
    td, h = 6000, 8192  # TD not a power of two: zero filling after the FID inside the row
    tw = half_twiddle(2 * h)
    apod = np.exp(-np.pi * 1.0 * (np.arange(td) - GD) / 8012.8).astype(np.float32)
    # does numpy's complex64 product fuse (fma(ar, br, -(ai*bi)))? then the kernel matches to the bit
    a = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64)
    b = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64)
    fused = (a.real.astype(np.float64) * b.real - (a.imag * b.imag).astype(np.float64)).astype(np.float32)
    numpy_fuses = np.array_equal((a * b).real, fused)
    worst, differ, total = 0, 0, 0
    for dec in range(8):
        f = (rng.standard_normal(td) + 1j * rng.standard_normal(td)) * 10.0 ** dec
        u = np.full((2, h), np.nan + 0j, np.complex64)  # stale values must be overwritten
        ss = nb.prep_split(f.view(np.float64), 1.0, apod, tw.view(np.float32), u[0].view(np.float32),
                           u[1].view(np.float32))
        ref = _numpy_prep(f, apod, tw, h)
        assert np.array_equal(u[0].view(np.uint32), ref[0].view(np.uint32))  # cast, apodization, zeros
        d = _ulps(u[1], ref[1])
        worst, differ, total = max(worst, int(d.max())), differ + int(np.count_nonzero(d)), total + d.size
        assert np.sqrt(ss) == pytest.approx(fid_norm(f), rel=1e-13)
    assert worst <= 1
    if numpy_fuses:
        assert differ == 0, f"{differ} of {total} twiddled values differ from numpy's"


def test_engine_rows_with_and_without_the_pass(tmp_path):
    from ingest.batch import find_acquisitions
    from ingest.processing.batch_nmr import BatchExtractor
    from ingest.processing.lorentz_batch import load_compiled
    from ingest.readers.dispatch import read_rows

    rng = np.random.default_rng(3)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    lines = ((4.79, 10.0, 1.0), (7.45, 1.0, 3.0), (7.05, 1.0, 3.0), (7.72, 1.0, 3.0))
    for k in range(20):
        f = fid(lines, 8192, phase_deg=-40.0, noise=2e-3, rng=rng, group_delay=GD)
        write_expno(tmp_path / str(10 + k), f, t0 + timedelta(minutes=k))
    spectra = [s for p in find_acquisitions(tmp_path) for s in read_rows(p)]
    assert load_compiled() and zf_fft_nb.kernels() is not None
    ex = BatchExtractor()
    fast = pd.DataFrame(ex.rows(spectra))
    assert ex.stats.get("complex64", 0) >= 19  # the series ran in single precision, through the pass
    kept = zf_fft_nb._KERNELS
    try:
        zf_fft_nb._KERNELS = False
        slow = pd.DataFrame(BatchExtractor().rows(spectra))
    finally:
        zf_fft_nb._KERNELS = kept
    pd.testing.assert_frame_equal(fast, slow)
    assert np.abs(fast["hdo_shift_ppm"] - 4.79).max() < 3e-4
