"""A baseline that does not invent (issue 11 item 5).

On every real Bruker set in the ``shared_data`` folder that carries TopSpin's processed
spectrum (pdata/1/1r), the DEFAULT processing (ObservablesConfig.default())
must correlate >= 0.995 with 1r over the whole spectrum, and windowed
integrals (local linear baseline from the window edges, as the Extractor's
integral windows take) must agree with the same integrals of 1r within 1 % of
the largest line.  Also a crowded synthetic spectrum with known lines and a
known baseline, generated here with numpy only.
"""

from __future__ import annotations

from pathlib import Path

import nmrglue as ng
import numpy as np
import pytest
from scipy import ndimage

from ingest.processing.nmr import baseline, noise_sigma
from ingest.processing.observables import ObservablesConfig, process_for_config
from ingest.processing.peaks import integrate_window
from ingest.readers.dispatch import read

SETS = ["bruker-1h-d2o/1"] + [f"bruker-array/{n}" for n in (3, 6, 9, 12, 15, 18, 21, 24)]


def _topspin(folder: Path) -> tuple[np.ndarray, np.ndarray, float, float]:
    """TopSpin's 1r read with nmrglue, on its own axis (OFFSET, SW_p, SF), and SF, BF1 in MHz."""
    dic, real = ng.bruker.read_pdata(str(folder / "pdata" / "1"), scale_data=True)
    p = dic["procs"]
    ppm = p["OFFSET"] - np.arange(p["SI"]) * p["SW_p"] / p["SF"] / p["SI"]
    return ppm, np.asarray(real, float), float(p["SF"]), float(dic["acqus"]["BF1"])


def _windows(ppm: np.ndarray, y: np.ndarray, grow: int = 60) -> list[tuple[float, float]]:
    """Integration windows: every region of 1r above 2 % of its largest point, widened."""
    m = ndimage.binary_dilation(np.abs(y) > 0.02 * np.abs(y).max(), iterations=grow)
    lab, _ = ndimage.label(m)
    return [(float(ppm[s[0].stop - 1]), float(ppm[s[0].start])) for s in ndimage.find_objects(lab)]


@pytest.mark.parametrize("name", SETS)
def test_default_processing_reproduces_topspin_1r(shared_data: Path, name: str) -> None:
    folder = shared_data / "nmr" / name
    if not (folder / "pdata" / "1" / "1r").is_file():
        pytest.skip(f"{name}: no TopSpin 1r to compare with")
    spec = read(folder)
    proc = process_for_config(spec, ObservablesConfig.default())
    t_ppm, t_real, sf, bf1 = _topspin(folder)
    # TopSpin's axis carries the operator's SR referencing (SF - BF1); ours is unreferenced.
    t_ppm = t_ppm + (sf - bf1) / sf * 1e6
    ours = np.interp(-t_ppm, -proc.ppm, proc.real)
    corr = float(np.corrcoef(ours, t_real)[0, 1])
    assert corr >= 0.995, f"{name}: correlation with TopSpin 1r {corr:.4f}"
    wins = _windows(t_ppm, t_real)
    assert len(wins) >= 5
    kw = {"sfo1_hz": proc.sfo1_hz, "baseline": "linear"}
    a = np.array([integrate_window(proc.ppm, proc.real, w, **kw).area for w in wins])
    b = np.array([integrate_window(t_ppm, t_real, w, **kw).area for w in wins])
    big = int(np.argmax(np.abs(b)))
    scale = b[big] / a[big]
    err = np.abs(a * scale - b) / abs(b[big])
    assert err.max() < 0.01, f"{name}: windowed integrals off by {err.max():.4f} of the largest line"


# ------------------------------------------------------------ synthetic, crowded
def _crowded(seed: int = 3):
    """Real spectrum of 40 Lorentzians crowding the 0.5-5 ppm half, a smooth known baseline, noise.

    Written with numpy only (no package code): returns ppm, y, the lines-only
    spectrum, the baseline and the list of (centre ppm, fwhm ppm, area ppm-units).
    """
    rng = np.random.default_rng(seed)
    ppm = np.linspace(10.0, 0.0, 16384)
    lines = [(float(c), float(w), float(a)) for c, w, a in
             zip(rng.uniform(0.6, 4.9, 40), rng.uniform(0.002, 0.006, 40), rng.uniform(0.5, 2.0, 40))]
    lines += [(7.2, 0.003, 2.0), (8.1, 0.003, 1.0)]
    pure = np.zeros_like(ppm)
    for c, w, a in lines:
        g = w / 2
        pure += a * (g / np.pi) / ((ppm - c) ** 2 + g * g)
    x = (ppm - 5.0) / 5.0
    base = 3.0 + 2.0 * x - 1.5 * x ** 2 + 1.0 * x ** 3
    y = pure + base + rng.normal(0, 0.5, ppm.size)
    return ppm, y, pure, base, lines


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_crowded_synthetic_baseline_does_not_invent(seed: int) -> None:
    """The robust baseline removes the known one, or falls back to a lower order; it never adds
    an excursion larger than the baseline it was meant to remove (no extrapolated cubic)."""
    ppm, y, pure, base, _lines = _crowded(seed)
    bl = baseline(ppm, y, order=3)
    corr = float(np.corrcoef(y - bl, pure)[0, 1])
    assert corr >= 0.99, corr
    left = base - bl
    assert np.ptp(left) <= np.ptp(base) + 5 * noise_sigma(y)


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_crowded_synthetic_windowed_integrals(seed: int) -> None:
    """Windows over the crowded region and the isolated lines, with the local linear baseline the
    Extractor's integral windows take: same integral as the known lines alone, within 1 % of the
    largest line."""
    ppm, y, pure, _base, lines = _crowded(seed)
    corrected = y - baseline(ppm, y, order=3)
    largest = max(a for *_, a in lines)
    for c in (1.0, 2.0, 3.0, 4.0, 7.2, 8.1):
        w = (c - 0.05, c + 0.05)
        got = integrate_window(ppm, corrected, w, sfo1_hz=1e6, baseline="linear").area
        want = integrate_window(ppm, pure, w, sfo1_hz=1e6, baseline="linear").area
        # at sfo1 = 1 MHz an area in Hz x intensity is ppm x intensity
        assert abs(got - want) < 0.01 * largest, (w, got, want)
