"""The batch engine writes only the windows' slab and the baseline's points (ingest.processing.slab).

* :meth:`Slab.fill` gives :func:`vendor_real`'s numbers on the slab and at the baseline's points
  outside it, leaves every other point as it found it (NaN) and does not touch the transform.
* The rows are the whole-spectrum rows (within 1e-6 of each standard error: the baseline is
  subtracted by another matrix product), for narrow lines and for lines too broad for their
  windows (whose extended fits read beyond the slab: those spectra are made whole first); the
  extractor's last spectrum is whole.

Data: Bruker expnos written by tests/generators/bruker_expno.py (imports nothing from the package).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from generators.bruker_expno import GD, fid, write_expno

from ingest.batch import find_acquisitions
from ingest.processing import batch_series
from ingest.processing.batch_nmr import BatchExtractor
from ingest.processing.slab import Slab, slab_range
from ingest.processing.zf_fft import split_layout, vendor_real
from ingest.readers.dispatch import read_rows


@pytest.mark.parametrize("ways", [2, 4])
def test_fill_is_vendor_real_on_the_slab_and_nan_elsewhere(ways):
    rng = np.random.default_rng(2)
    m, b = 4096, 6  # more spectra than Slab.fill writes together
    q = m // ways
    R = (rng.standard_normal((b, ways, q)) + 1j * rng.standard_normal((b, ways, q))).astype(np.complex64)
    rot2 = split_layout(np.exp(1j * rng.uniform(0, 6.3, m)), ways, np.complex64)
    ref = np.empty((b, m))
    vendor_real(R.copy(), rot2, ref)
    fit_idx = np.arange(0, m, 7)
    for lo, hi in ((0, m), (100, 2000), (2047, 2049), (1500, 3901), (3000, m)):
        slab = Slab.build(m, lo, hi, fit_idx, rot2)
        got = np.full((b, m), np.nan)
        R0 = R.copy()
        slab.fill(R, rot2, got)
        assert np.array_equal(R, R0)  # the transform is kept for whole spectra
        written = np.zeros(m, bool)
        written[lo:hi] = True
        assert np.array_equal(got[:, written], ref[:, written])
        assert np.isnan(got[:, ~written]).all()  # nothing else written, the baseline's points neither
        assert np.array_equal(slab.at_points(R, rot2, got), ref[:, fit_idx])  # ... whose values are vendor_real's


def test_slab_range_covers_the_windows_moved_by_any_offset():
    ppm = 10.0 - np.arange(20000) * 1e-3  # 10 ... -9.999 ppm, decreasing
    lo, hi = slab_range(ppm, [(4.19, 5.39), (7.95, 8.15), (2.12, 2.32)], (-0.6, 0.6))
    inside = ppm[lo:hi]
    assert inside.max() >= 8.75 and inside.min() <= 1.52
    assert 8.75 + 0.07 > inside.max() and inside.min() > 1.52 - 0.07  # the margin, 64 points


def _series(root, widths_hz, n=12, td=8192, seed=4):
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for k in range(n):
        lines = ((4.79 + 0.003 * k, 10.0, 1.0),) + tuple((ppm, 1.0, w) for ppm, w in zip((7.45, 7.05, 7.72), widths_hz))
        write_expno(root / str(10 + k), fid(lines, td, phase_deg=-40.0, noise=2e-3, rng=rng, group_delay=GD),
                    t0 + timedelta(minutes=k))
    return [s for p in find_acquisitions(root) for s in read_rows(p)]


@pytest.mark.parametrize("widths_hz", [(3.0, 3.0, 3.0), (3.0, 30.0, 3.0)], ids=["narrow", "one-broad"])
def test_rows_equal_whole_spectra(tmp_path, monkeypatch, widths_hz):
    spectra = _series(tmp_path, widths_hz)
    calls = []
    whole_row = BatchExtractor._full_row
    monkeypatch.setattr(BatchExtractor, "_full_row", lambda self, *a: calls.append(a[1]) or whole_row(self, *a))
    ex = BatchExtractor(chunk=5)
    slab = pd.DataFrame(ex.rows(spectra))
    monkeypatch.undo()
    ser = next(iter(ex._series.values()))
    assert ser.slab_at is not None and ser.slab is not None  # the slab ran
    lo, hi = ser.slab_at
    assert hi - lo < 0.6 * ser.m
    assert np.isfinite(ex.extractor.last.real).all()  # the last spectrum is whole
    monkeypatch.setattr(batch_series, "slab_range", lambda *a: None)
    wx = BatchExtractor(chunk=5)
    whole = pd.DataFrame(wx.rows(spectra))
    assert next(iter(wx._series.values())).slab_at is None  # whole spectra this time
    for p in ("hdo", "dhaq_h1", "dhaq_h3", "dhaq_h4"):
        for col, err in (("shift_ppm", "shift_err_ppm"), ("fwhm_Hz", "fwhm_err_Hz"), ("area", "area_err")):
            a, b, e = slab[f"{p}_{col}"], whole[f"{p}_{col}"], whole[f"{p}_{err}"]
            assert np.isfinite(a).all() and np.isfinite(b).all(), (p, col)
            assert (np.abs(a - b) <= 1e-6 * e).all(), (p, col, float(np.abs(a - b).max()), float(e.min()))
    # whole spectra: the last of the call's last batch (the extractor's ``last``, made whole once
    # per call, not once per batch), and with a broad line every one, once (the first spectrum
    # is the series' reference, processed whole per spectrum)
    assert len(calls) == (11 if widths_hz[1] > 10 else 1), calls
    if widths_hz[1] > 10:
        assert np.abs(slab["dhaq_h3_fwhm_Hz"] - (30.0 + 0.5)).max() < 1.5
    assert list(slab["nmr_warnings"]) == list(whole["nmr_warnings"])


def test_four_way_transform_gives_the_two_way_rows(tmp_path, monkeypatch):
    """The batch's complex64 transform as four quarter-size ones (the default) or two half-size
    ones: the rows agree within 1 % of each standard error (float32 rounding only)."""
    spectra = _series(tmp_path, (3.0, 3.0, 3.0))
    ex = BatchExtractor(chunk=5)
    four = pd.DataFrame(ex.rows(spectra))
    ser = next(iter(ex._series.values()))
    assert batch_series.SPLIT_WAYS == 4 and ser.cast["F"][2][0] == 4 and ex.stats.get("complex64", 0) >= 10
    monkeypatch.setattr(batch_series, "SPLIT_WAYS", 2)
    two = pd.DataFrame(BatchExtractor(chunk=5).rows(spectra))
    for p in ("hdo", "dhaq_h1", "dhaq_h3", "dhaq_h4"):
        for col, err in (("shift_ppm", "shift_err_ppm"), ("fwhm_Hz", "fwhm_err_Hz"), ("area", "area_err")):
            a, b, e = four[f"{p}_{col}"], two[f"{p}_{col}"], two[f"{p}_{err}"]
            assert (np.abs(a - b) <= 1e-2 * e).all(), (p, col, float((np.abs(a - b) / e).max()))
    assert not four[[c for c in four.columns if c.endswith("_ppm")]].equals(
        two[[c for c in two.columns if c.endswith("_ppm")]])  # two computations, not one


def test_subtract_rows_is_the_product_subtracted_in_place():
    """The slab's baseline subtraction (BLAS dgemv row by row, on a column slice of the batch's
    array): ``real -= h @ basis`` to round-off, in place, and nothing outside the slice touched."""
    from ingest.processing.series_baseline import subtract_rows

    rng = np.random.default_rng(7)
    real = rng.standard_normal((5, 1000))
    h, basis = rng.standard_normal((5, 4)), np.ascontiguousarray(rng.standard_normal((4, 300)))
    want = real.copy()
    want[:, 200:500] -= h @ basis
    view = real[:, 200:500]
    subtract_rows(view, h, basis)
    assert np.shares_memory(view, real)
    np.testing.assert_allclose(real[:, 200:500], want[:, 200:500], rtol=0, atol=1e-12)
    assert np.array_equal(real[:, :200], want[:, :200]) and np.array_equal(real[:, 500:], want[:, 500:])
