"""The result of one peak extraction: :class:`PeakFit` (value, standard errors, diagnostics).

Returned by every extractor of :mod:`ingest.processing.peaks` (and by the batch fits of
:mod:`ingest.processing.lorentz_batch`); importable from there as before
(``from ingest.processing.peaks import PeakFit``).  Units: centre in ppm, widths (FWHM) in
Hz, areas as the integral of the real spectrum over frequency, (spectrum units) x Hz.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["NAN", "PeakFit", "empty_fit"]

NAN = float("nan")


@dataclass(frozen=True)
class PeakFit:
    """Result of one peak extraction.

    Attributes
    ----------
    center_ppm, center_err_ppm : float
        Peak centre and its standard error, ppm (NaN if not determined).
    fwhm_hz, fwhm_err_hz : float
        Full width at half maximum and its standard error, Hz.
    area, area_err : float
        Integral over frequency, (spectrum units) x Hz, and its standard error.
    height : float
        Peak height above the baseline (spectrum units).
    snr : float
        height / noise standard deviation.
    redchi : float
        Reduced chi-square of the fit (residuals in spectrum units**2; NaN for
        integrals).
    success : bool
        The fit converged and produced uncertainties.
    window : (float, float)
        Window used, ppm (low, high).
    n_points : int
        Points used (inside the window; every k-th for large windows).
    method : str
        'lorentzian', 'voigt' or 'integral'.
    warnings : tuple of str
        E.g. 'peak at window edge', 'no peak above noise', 'fit failed: ...'.
    """

    center_ppm: float
    center_err_ppm: float
    fwhm_hz: float
    fwhm_err_hz: float
    area: float
    area_err: float
    height: float
    snr: float
    redchi: float
    success: bool
    window: tuple[float, float]
    n_points: int
    method: str
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def columns(self, name: str) -> dict[str, float]:
        """Table columns for a peak called ``name`` (docs/architecture.md).

        Returns ``NAME_shift_ppm``, ``NAME_shift_err_ppm``, ``NAME_fwhm_Hz``,
        ``NAME_fwhm_err_Hz``, ``NAME_area``, ``NAME_area_err``.
        """
        return {
            f"{name}_shift_ppm": self.center_ppm,
            f"{name}_shift_err_ppm": self.center_err_ppm,
            f"{name}_fwhm_Hz": self.fwhm_hz,
            f"{name}_fwhm_err_Hz": self.fwhm_err_hz,
            f"{name}_area": self.area,
            f"{name}_area_err": self.area_err,
        }

    def as_dict(self) -> dict[str, Any]:
        """All fields as a plain dict."""
        return asdict(self)


def empty_fit(window: tuple[float, float], n: int, method: str, warnings, area: float = NAN, area_err: float = NAN,
              height: float = NAN, snr: float = NAN) -> PeakFit:
    """A :class:`PeakFit` with NaN centre, width and chi-square, ``success`` False, and the
    ``warnings`` saying why (an empty or failed window)."""
    return PeakFit(NAN, NAN, NAN, NAN, area, area_err, height, snr, NAN, False, window, n, method, tuple(warnings))
