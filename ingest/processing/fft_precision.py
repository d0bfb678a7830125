"""Single- or double-precision transforms for a series of FIDs, and the guard that decides.

The live plan (:class:`ingest.processing.nmr_plan.SeriesPlan`) and the batch engine
(:class:`ingest.processing.batch_nmr.BatchExtractor`) run their three FFTs (the exact
digital-filter shift's pair and the zero-filled transform) in complex64 when that is
*shown* harmless for the series, not assumed: on the series' first FID both precisions
are computed and compared (:func:`check_precision`).  complex64 is used when the
difference of the two real spectra, taken as an extra noise, is small against the
spectrum's noise ``sigma``:

* its rms over the spectrum is at most :data:`RMS_MAX` = 1e-3 ``sigma`` (the noise
  variance grows by 1e-6; a fitted parameter moves by ~1e-3 of its standard error at
  most in expectation), and
* no bin differs by more than :data:`PEAK_MAX` = 3e-2 ``sigma`` (float32 keeps ~7
  digits, so the bins of a line 1e5 times above the noise carry ~1e-2 ``sigma`` of
  rounding: harmless for fits, whose errors add over many bins, but no more is allowed).

Otherwise (a spectrum whose noise is below the float32 round-off: simulated noiseless
data, or a dynamic range above ~1e6) the series stays in complex128.

The round-off scales with the FID's norm, the noise does not, so each later spectrum is
re-checked for the price of one dot product (:meth:`PrecisionCheck.holds`): a FID much
larger than the first one (a receiver gain changed within the series) goes through
complex128.  Everything after the transforms (baseline, fits) runs in float64.

Measured on the real files of tests/test_precision.py: rms 2e-5 (Bruker 600 MHz,
presaturated water) to 3e-4 ``sigma`` (Spinsolve, water 1e5 times above the noise),
max 3e-4 to 1.5e-2 ``sigma``; the observables then agree with the complex128 path
within 1e-3 of their standard errors.  Processing numerics: docs/physics.md §5.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PEAK_MAX", "RMS_MAX", "PrecisionCheck", "check_precision", "fid_norm"]

#: Largest rms of the complex64 - complex128 difference of a series' first spectrum, in
#: units of its noise sigma, for which the series runs in complex64.
RMS_MAX = 1e-3
#: Largest single-bin difference allowed (noise sigma units).
PEAK_MAX = 3e-2


def fid_norm(fid: np.ndarray) -> float:
    """Euclidean norm of a FID (the scale of the FFT's round-off)."""
    x = np.ascontiguousarray(fid).reshape(-1)
    if np.iscomplexobj(x):
        x = x.view(x.real.dtype)  # (re, im) pairs: the same sum of squares, a real dot product
    return math.sqrt(float(np.dot(x, x)))


@dataclass(frozen=True)
class PrecisionCheck:
    """Outcome of :func:`check_precision` for one series.

    Attributes
    ----------
    dtype : numpy dtype
        ``complex64`` or ``complex128``: the precision of the series' transforms.
    rms_ratio, max_ratio : float
        rms and largest difference of the two precisions' real spectra of the first FID,
        in units of its noise sigma.
    norm : float
        Norm of that FID (:func:`fid_norm`).
    sigma : float
        Its spectrum's noise sigma (same units as the spectrum).
    """

    dtype: np.dtype
    rms_ratio: float
    max_ratio: float
    norm: float
    sigma: float

    @property
    def single(self) -> bool:
        """True when the series runs in complex64."""
        return self.dtype == np.complex64

    @property
    def label(self) -> str:
        """``'complex64'`` or ``'complex128'`` (for params and stats)."""
        return str(self.dtype)

    def holds(self, norm: float, sigma: float | None = None) -> bool:
        """Whether complex64 stays within the guard for a FID of norm ``norm`` whose spectrum
        has noise ``sigma`` (default: the first FID's): the round-off scales with the norm."""
        if not self.single:
            return False
        s = self.sigma if sigma is None else float(sigma)
        if not (s > 0 and math.isfinite(s) and math.isfinite(norm)):
            return False
        scale = (norm / self.norm if self.norm > 0 else math.inf) * (self.sigma / s)
        return self.rms_ratio * scale <= RMS_MAX and self.max_ratio * scale <= PEAK_MAX


def check_precision(spec64: np.ndarray, spec128: np.ndarray, sigma: float, norm: float) -> PrecisionCheck:
    """Compare the complex64 and complex128 real spectra of one FID (see the module docstring).

    Parameters
    ----------
    spec64, spec128 : ndarray, shape (n,)
        The same FID's real spectrum computed with complex64 and complex128 transforms.
    sigma : float
        Noise standard deviation of ``spec128`` (:func:`ingest.processing.nmr.noise_sigma`).
    norm : float
        :func:`fid_norm` of the FID.

    Returns
    -------
    PrecisionCheck
        ``dtype`` complex64 when both ratios are within :data:`RMS_MAX` and :data:`PEAK_MAX`.
    """
    d = np.asarray(spec64, dtype=np.float64) - np.asarray(spec128, dtype=np.float64)
    s = float(sigma)
    if not (s > 0 and math.isfinite(s)) or not np.isfinite(d).all():
        return PrecisionCheck(np.dtype(np.complex128), math.inf, math.inf, float(norm), s)
    rms = math.sqrt(float(np.dot(d, d)) / max(d.size, 1)) / s
    mx = float(np.abs(d).max()) / s if d.size else 0.0
    ok = rms <= RMS_MAX and mx <= PEAK_MAX
    return PrecisionCheck(np.dtype(np.complex64 if ok else np.complex128), rms, mx, float(norm), s)
