"""Bruker TopSpin 1D ¹H expnos written without the package (numpy only).

What a spectrometer leaves on disk, from TopSpin's own conventions, so that the package's
readers and processing meet files they did not write: an ``acqus`` JCAMP parameter file with
TopSpin's keys (``TD`` counts real words, ``SW`` in ppm, ``O1`` = SFO1 − BF1 in Hz,
``GRPDLY`` the digital filter's delay in points, ``DATE`` the end of acquisition, Unix s) and
a ``fid`` of little-endian int32 words, real and imaginary interleaved (``BYTORDA = 0``,
``DTYPA = 0``).  The FID is a sum of Lorentzian lines with an optional zero-order phase
error, delayed as a digital filter delays it (below), plus complex white noise.

The digital filter (docs/physics.md §5.1): a Bruker console records the band-limited FID
``GRPDLY`` dwell points late, x_k = f((k - GD)/sw), with the filter's precursor (its response
to the FID's abrupt onset) in the points before GD; the last GD points of the FID fall off the
end of the record.  :func:`fid` builds exactly that: the ideal FID sampled at t = k/sw with the
t = 0 sample halved (the band-limited record of a FID that starts at t = 0 carries half its
first value there, the trapezoid weight), zero-padded, delayed by a linear phase of the padded
transform, cut back to ``td`` points.  It is the inverse of TopSpin's processing (zero-filled
transform of the raw FID times exp(+2 pi i GD q / m), no first-point factor), independently of
the package's code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

#: A 400 MHz spectrometer: SFO1 (Hz), spectral width (Hz), carrier (ppm), filter delay (points).
SF, SW, CAR, GD = 400.13e6, 8012.8, 4.7, 67.98


def fid(lines: Iterable[tuple[float, float, float]], td: int, *, sw: float = SW, sf: float = SF,
        car: float = CAR, phase_deg: float | None = None, noise: float = 0.0,
        rng: np.random.Generator | None = None, group_delay: float = 0.0) -> np.ndarray:
    """``td`` complex points: Σ area·exp(2πi ν t − π fwhm t) over ``lines`` = (ppm, area, fwhm Hz).

    Then, in this order: the phase error ``exp(i phase_deg)``, the digital filter's delay of
    ``group_delay`` points (:func:`delay`, skipped when 0), and ``noise`` × (N(0,1) + i N(0,1))
    from ``rng`` on all ``td`` points (the receiver records noise before the FID arrives too).
    """
    t = np.arange(td) / sw
    f = np.zeros(td, complex)
    for ppm, area, fwhm in lines:
        f += area * np.exp(2j * np.pi * (ppm - car) * sf * 1e-6 * t - np.pi * fwhm * t)
    if phase_deg is not None:
        f *= np.exp(1j * np.deg2rad(phase_deg))
    if group_delay:
        f = delay(f, group_delay)
    if noise:
        rng = rng if rng is not None else np.random.default_rng(0)
        f += noise * (rng.standard_normal(td) + 1j * rng.standard_normal(td))
    return f


def delay(f: np.ndarray, group_delay: float, pad: int = 4) -> np.ndarray:
    """The FID ``f`` (sampled from t = 0) as a digital filter records it, ``group_delay`` points late.

    The t = 0 sample is halved (trapezoid weight), the record zero-padded to ``pad`` ×
    next_pow2(len(f)) points and its transform multiplied by exp(−2πi·group_delay·q/L) (q the
    signed frequency index, L the padded length); the first len(f) points are kept.  Padding
    (>= 4 × len(f)) makes the circular delay act as the aperiodic one on the kept points: the
    precursor's slow tail before the first point wraps to the far end of the buffer, >= 3 × len(f)
    away, not into the record.  A whole ``group_delay`` is an exact shift (zeros before it).
    """
    x = np.array(f, dtype=complex)
    n = x.size
    big = pad * (1 << max(n - 1, 1).bit_length())
    x[0] *= 0.5
    q = np.fft.fftfreq(big) * big
    return np.fft.ifft(np.fft.fft(x, big) * np.exp(-2j * np.pi * group_delay * q / big))[:n]


def write_expno(folder: Path, data: np.ndarray, when: datetime, *, sw: float = SW, sf: float = SF,
                car: float = CAR, group_delay: float = GD, scale_bits: int = 20,
                extra: Mapping[str, Any] | None = None, acqu: bool = False) -> Path:
    """Write ``folder/fid`` and ``folder/acqus`` (and ``acqu`` when asked) for the FID ``data``.

    The FID is scaled so that its largest magnitude is ``2**scale_bits`` (the absolute scale is
    arbitrary); ``extra`` adds or overrides acqus keys (e.g. ``{"SOLVENT": "<D2O>"}``).
    """
    folder.mkdir(parents=True)
    td = data.size
    scale = 2.0 ** scale_bits / np.abs(data).max()
    words = np.empty(2 * td, "<i4")
    words[0::2] = np.round(data.real * scale)
    words[1::2] = np.round(data.imag * scale)
    words.tofile(folder / "fid")
    bf1 = sf / (1 + car * 1e-6)
    keys = {"TD": 2 * td, "SW_h": sw, "SW": sw / (sf * 1e-6), "SFO1": sf * 1e-6, "BF1": bf1 * 1e-6,
            "O1": sf - bf1, "GRPDLY": group_delay, "DSPFVS": 20, "DECIM": 1, "DTYPA": 0, "BYTORDA": 0,
            "NC": 0, "NS": 16, "DS": 0, "RG": 1, "TE": 298.15, "D": "(0..1)\n0 1", "NUC1": "<1H>",
            "PULPROG": "<zg30>", "DATE": int(when.timestamp()), **(extra or {})}
    text = "##TITLE= Parameter file\n##JCAMPDX= 5.0\n"
    text += "".join(f"##${k}= {v}\n" for k, v in keys.items()) + "##END=\n"
    (folder / "acqus").write_text(text)
    if acqu:
        (folder / "acqu").write_text(text)
    return folder
