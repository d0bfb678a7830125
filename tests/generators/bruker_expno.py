"""Bruker TopSpin 1D ¹H expnos written without the package (numpy only).

What a spectrometer leaves on disk, from TopSpin's own conventions, so that the package's
readers and processing meet files they did not write: an ``acqus`` JCAMP parameter file with
TopSpin's keys (``TD`` counts real words, ``SW`` in ppm, ``O1`` = SFO1 − BF1 in Hz,
``GRPDLY`` the digital filter's delay in points, ``DATE`` the end of acquisition, Unix s) and
a ``fid`` of little-endian int32 words, real and imaginary interleaved (``BYTORDA = 0``,
``DTYPA = 0``).  The FID is a sum of Lorentzian lines with an optional zero-order phase
error, complex white noise and the filter's delay (a band-limited circular shift, as the
digital filter leaves it).
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

    Then, in this order: the phase error ``exp(i phase_deg)``, ``noise`` × (N(0,1) + i N(0,1))
    from ``rng``, and a delay of ``group_delay`` points (skipped when 0).
    """
    t = np.arange(td) / sw
    f = np.zeros(td, complex)
    for ppm, area, fwhm in lines:
        f += area * np.exp(2j * np.pi * (ppm - car) * sf * 1e-6 * t - np.pi * fwhm * t)
    if phase_deg is not None:
        f *= np.exp(1j * np.deg2rad(phase_deg))
    if noise:
        rng = rng if rng is not None else np.random.default_rng(0)
        f += noise * (rng.standard_normal(td) + 1j * rng.standard_normal(td))
    if group_delay:  # the FID arrives group_delay points late (band-limited circular delay)
        nu = np.fft.fftfreq(td) * td
        f = np.fft.ifft(np.fft.fft(f) * np.exp(-2j * np.pi * group_delay * nu / td))
    return f


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
