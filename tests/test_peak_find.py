"""ingest.processing.peak_find gives scipy.signal's find_peaks (with a prominence) and
peak_widths, exactly: noisy curves with lines, curves with plateaus (rounded values), flat and
monotonic ones, peaks at the edges; and the broadened-line path no longer imports scipy.signal.

Data: random curves made here (numpy only).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import find_peaks, peak_widths

from ingest.processing.peak_find import local_maxima, peak_widths_at, prominences, prominent_peaks


def _curves():
    rng = np.random.default_rng(4)
    x = np.linspace(-1, 1, 1500)
    for k in range(30):
        y = rng.standard_normal(x.size)
        for _ in range(rng.integers(0, 5)):
            c, w, a = rng.uniform(-1, 1), rng.uniform(0.002, 0.2), rng.uniform(-5, 60)
            y += a / (1 + ((x - c) / w) ** 2)
        if k % 3 == 1:
            y = np.round(y)  # plateaus, ties among the bases
        if k % 5 == 2:
            y = y[: rng.integers(3, 40)]  # short
        yield y
    yield np.zeros(50)
    yield np.arange(50.0)
    yield np.array([0.0, 2.0, 2.0, 2.0, 1.0, 3.0, 3.0])  # plateau peak; a plateau at the end is none
    yield np.array([5.0, 1.0, 4.0, 1.0, 5.0])
    yield np.array([1.0, 2.0])


@pytest.mark.parametrize("p", [0.5, 3.0, 10.0])
def test_prominent_peaks_and_widths_are_scipys(p):
    for y in _curves():
        want, props = find_peaks(y, prominence=p)
        got, prom, left, right = prominent_peaks(y, p)
        assert np.array_equal(got, want)
        assert np.array_equal(prom, props["prominences"])
        assert np.array_equal(left, props["left_bases"]) and np.array_equal(right, props["right_bases"])
        if want.size:
            for rel in (0.5, 0.9):
                assert np.array_equal(peak_widths_at(y, got, prom, left, right, rel), peak_widths(y, want, rel)[0])


def test_local_maxima_and_prominences_of_every_maximum():
    for y in _curves():
        want, props = find_peaks(y, prominence=(None, None))
        assert np.array_equal(local_maxima(y), want)
        prom, left, right = prominences(y, want)
        assert np.array_equal(prom, props["prominences"])
        assert np.array_equal(left, props["left_bases"]) and np.array_equal(right, props["right_bases"])


def test_widths_module_does_not_import_scipy_signal():
    code = ("import sys, numpy as np; from ingest.processing import widths; "
            "x = np.linspace(0, 1, 400); y = 50 / (1 + ((x - .5) / .05) ** 2) + 0.01 * np.sin(40 * x); "
            "print(len(widths._unconfigured_lines(x, y, (0.0, 1.0), [0.2], [5.0], 400e6, 0.1)), "
            "'scipy.signal' in sys.modules, 'scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "False", "False"], out
