"""The compiled pass before the batch engine's split transform (ingest.processing.zf_fft_nb).

* :func:`prep_split` writes what numpy's five passes write (copy to complex64, apodization,
  zero filling, the odd bins' twiddle): the same bits where numpy's complex64 product uses
  fused multiply-add (x86-64-v3 processors), within one float32 ulp anywhere; and the FID's
  sum of squares; :func:`prep_quarters` likewise for the four-way layout's numpy operations.
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
from ingest.processing.zf_fft import half_twiddle, quarter_fft, split_twiddles  # noqa: E402


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
        nb.prep_split(f.view(np.float64), 1.0, apod, tw.view(np.float32), u[0].view(np.float32), u[1].view(np.float32))
        ss = nb.sum_squares(f.view(np.float64), 1.0)
        ref = _numpy_prep(f, apod, tw, h)
        assert np.array_equal(u[0].view(np.uint32), ref[0].view(np.uint32))  # cast, apodization, zeros
        d = _ulps(u[1], ref[1])
        worst, differ, total = max(worst, int(d.max())), differ + int(np.count_nonzero(d)), total + d.size
        assert np.sqrt(ss) == pytest.approx(fid_norm(f), rel=1e-13)
    assert worst <= 1
    if numpy_fuses:
        assert differ == 0, f"{differ} of {total} twiddled values differ from numpy's"


@pytest.mark.parametrize("td", [6000, 8192, 3000, 1])
def test_prep_quarters_is_numpys_passes(td, monkeypatch):
    """The four-way pass writes what quarter_fft's numpy operations write before the transform
    (same bits where numpy's complex64 product fuses, within one ulp anywhere), the apodized
    first point and the sum of squares; for a FID filling half the length, less, or under a
    quarter of it; from float64 pairs and from int32 words."""
    from ingest.processing import zf_fft

    nb = zf_fft_nb.load()
    rng = np.random.default_rng(td)
    m = 16384
    q = m // 4
    tw = split_twiddles(m, 4)
    apod = np.exp(-np.pi * 1.0 * (np.arange(td) - GD) / 8012.8).astype(np.float32)
    monkeypatch.setattr(zf_fft.scipy.fft, "fft", lambda a, **_: a)  # quarter_fft's rows, not transformed
    for words in (False, True):
        f = (rng.standard_normal(td) + 1j * rng.standard_normal(td)) * 1e3
        src, scale = (np.round(f.view(np.float64)).astype(np.int32), 0.25) if words else (f.view(np.float64), 1.0)
        f = src.astype(np.float64).view(np.complex128) * scale
        u = np.full((4, q), np.nan + 0j, np.complex64)  # stale values must be overwritten
        x0 = np.full(1, np.nan, np.complex64)
        tv = tw.view(np.float32)
        assert zf_fft_nb.exact_in_float32(src, scale)  # int32 words times 0.25, float64 pairs times 1.0
        ref = np.zeros((4, q), np.complex64)
        x = np.empty(td, np.complex64)
        x[:] = f
        np.multiply(x, apod, out=ref.reshape(-1)[:td])
        first = ref[0, 0]
        ref = quarter_fft(ref, tw)
        for f32 in (True, False):  # the float32 form of the cast and the general one: the same bits
            u[:] = np.nan
            nb.prep_quarters(src, scale, apod, tv[1], tv[2], tv[3], *u.view(np.float32), x0.view(np.float32), f32)
            ss = nb.sum_squares(src, scale)
            assert x0[0] == first
            assert np.array_equal(u[0].view(np.uint32), ref[0].view(np.uint32))  # additions only
            d = _ulps(u[1:], ref[1:])
            assert int(d.max()) <= 1
            if _numpy_fuses():
                assert not d.any()
            assert np.sqrt(ss) == pytest.approx(fid_norm(f), rel=1e-13)
    assert not zf_fft_nb.exact_in_float32(np.zeros(2), 0.25)  # float64 values: not without 1.0
    assert not zf_fft_nb.exact_in_float32(np.zeros(2, np.int32), 0.3)  # not a power of two
    assert not zf_fft_nb.exact_in_float32(np.zeros(2, np.int32), 2.0 ** -100)  # subnormal products


def _numpy_fuses() -> bool:
    """Does numpy's complex64 product fuse (fma(ar, br, -(ai*bi)))?  Then the kernels match it to the bit."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64)
    b = (rng.standard_normal(4096) + 1j * rng.standard_normal(4096)).astype(np.complex64)
    fused = (a.real.astype(np.float64) * b.real - (a.imag * b.imag).astype(np.float64)).astype(np.float32)
    return bool(np.array_equal((a * b).real, fused))


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
