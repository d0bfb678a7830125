"""``ingest.process``: one call from a spectrum as read to a processed spectrum.

* NMR (:class:`~ingest.types.NMRSpectrum` with a FID): digital-filter removal,
  apodisation, zero filling, FFT, phase, baseline and referencing,
  :func:`ingest.processing.nmr.process_fid` -> :class:`~ingest.processing.nmr.ProcessedNMR`
  (``.ppm``, ``.real``, ``.p0_deg``, ``.p1_deg`` ...).
* EPR (:class:`~ingest.types.EPRSpectrum`, 1D field sweep): baselines and the model-free
  double integral, :func:`ingest.processing.epr.double_integral` ->
  :class:`~ingest.processing.epr.DoubleIntegral` (``.field_mT``, ``.derivative``,
  ``.first_integral``, ``.value`` in a.u. mT^2).

::

    import ingest
    spec = ingest.read("expno/1")
    proc = ingest.process(spec, lb_hz=0.3, reference={"window": (4.5, 5.1), "ppm": 4.79})
    proc.ppm, proc.real
"""

from __future__ import annotations

from typing import Any

from ingest.processing.epr import DoubleIntegral, double_integral
from ingest.processing.nmr import ProcessedNMR, process_fid
from ingest.types import EPRSpectrum, IngestError, NMRSpectrum

__all__ = ["process"]


def process(spectrum: NMRSpectrum | EPRSpectrum, **options: Any) -> ProcessedNMR | DoubleIntegral:
    """Process one 1D spectrum with the package's defaults (or ``options``).

    Parameters
    ----------
    spectrum : NMRSpectrum or EPRSpectrum
        As returned by :func:`ingest.read` (2D sets: take rows with :func:`ingest.read_rows`).
    **options
        NMR: the keywords of :func:`~ingest.processing.nmr.process_fid`: ``lb_hz`` (Hz),
        ``zero_fill``, ``phase=(p0_deg, p1_deg)`` (None: automatic), ``baseline``,
        ``reference`` (None, an offset in ppm, ``{"external": ppm}`` or
        ``{"window": (lo, hi), "ppm": value}``: the highest point of the window is put at
        ``value``), ``autophase_p1``, ``first_point``, ``group_delay``.
        EPR: the keywords of :func:`~ingest.processing.epr.double_integral`
        (``baseline_fraction``, ``derivative_order``, ``absorption_order``).

    Returns
    -------
    ProcessedNMR or DoubleIntegral

    Raises
    ------
    IngestError
        A 2D set, an NMR spectrum without a FID, or an object that is no spectrum.
    """
    if isinstance(spectrum, NMRSpectrum):
        if spectrum.fid is not None and spectrum.fid.ndim != 1:
            raise IngestError(spectrum.meta.path, f"a 2D set of {spectrum.fid.shape[0]} FIDs: process its rows "
                                                  "(ingest.read_rows) one by one")
        return process_fid(spectrum, **options)
    if isinstance(spectrum, EPRSpectrum):
        if spectrum.intensity.ndim != 1:
            raise IngestError(spectrum.meta.path, f"a 2D set of {spectrum.intensity.shape[0]} sweeps: process its "
                                                  "rows (ingest.read_rows) one by one")
        return double_integral(spectrum.field_T, spectrum.intensity, **options)
    raise IngestError("<object>", f"ingest.process needs an NMRSpectrum or EPRSpectrum, got {type(spectrum).__name__}")
