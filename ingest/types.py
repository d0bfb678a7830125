"""Typed data containers returned by the readers.

Readers return plain numpy arrays plus a small typed metadata record, never a
vendor dictionary as the data model (the raw parameters are kept in
``extra`` for provenance only).  Units are SI and carried in the field names:
``_hz`` (Hz), ``_s`` (s), ``_K`` (K), ``_T`` (tesla), ``_W`` (watt).
Chemical shifts are in ppm (dimensionless, 1e-6).  Conversion to mT, G, MHz
or dB happens only at the edges (tables, plots, the command line).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

__all__ = [
    "NMRMeta",
    "NMRSpectrum",
    "EPRMeta",
    "EPRSpectrum",
    "Spectrum",
    "IngestError",
    "IngestWarning",
    "as_utc",
]


def as_utc(dt: datetime) -> datetime:
    """Aware UTC datetime: a naive one is taken as UTC, an aware one is converted."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


class IngestError(ValueError):
    """A file could not be read or makes no sense.

    The message always starts with the offending path, so a batch or the live
    watcher can report it as is.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class IngestWarning(UserWarning):
    """A file was read, but something in it is doubtful (the message names the
    path and the key); the readers warn with it where they cannot decide."""


_M = TypeVar("_M", bound="_Acquired")


class _Acquired:
    """What NMR and EPR metadata share: the acquisition's start and end, and copies."""

    start: datetime | None
    end: datetime | None

    @property
    def mid(self) -> datetime | None:
        """Acquisition mid-time (the time stamp a spectrum is reported at)."""
        if self.start is None:
            return self.end
        if self.end is None:
            return self.start
        return self.start + (self.end - self.start) / 2

    def with_(self: _M, **changes: Any) -> _M:
        """Return a copy with some fields replaced."""
        return replace(self, **changes)


@dataclass(frozen=True)
class NMRMeta(_Acquired):
    """Acquisition parameters of one NMR experiment.

    Attributes
    ----------
    path : Path
        The experiment folder (Bruker expno, Spinsolve folder) or file (JCAMP-DX).
    vendor : {'bruker', 'spinsolve', 'jcampdx'}
        Which reader produced it.
    nucleus : str
        Observed nucleus, e.g. ``'1H'``.
    sfo1_hz : float
        Observe (carrier) frequency, Hz (Bruker SFO1, Spinsolve b1Freq).
    bf1_hz : float
        Basic frequency that defines 0 ppm before referencing, Hz.
    sw_hz : float
        Spectral width, Hz.
    carrier_ppm : float
        Chemical shift of the carrier (spectrum centre), ppm.
    td : int
        Number of complex points acquired per FID.
    ns : int
        Number of scans.
    rg : float or None
        Receiver gain (vendor units, linear).
    temperature_K : float or None
        Sample temperature, K.
    start, end : datetime or None
        Acquisition start and end, timezone-aware (UTC if the file gives no zone).
    group_delay : float
        Bruker digital-filter group delay in points (0 when there is none).
    pulse_program : str or None
    solvent : str or None
    row : int or None
        Row index inside a serial (pseudo-2D) acquisition, None for a plain 1D.
    extra : dict
        Raw vendor parameters, for provenance only.
    """

    path: Path
    vendor: Literal["bruker", "spinsolve", "jcampdx"]
    nucleus: str
    sfo1_hz: float
    bf1_hz: float
    sw_hz: float
    carrier_ppm: float
    td: int
    ns: int
    rg: float | None = None
    temperature_K: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    group_delay: float = 0.0
    pulse_program: str | None = None
    solvent: str | None = None
    row: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class NMRSpectrum:
    """One 1D NMR acquisition (or one row of a serial acquisition).

    Attributes
    ----------
    fid : ndarray of complex128, shape (td,), or None
        Time-domain data as stored (digital filter NOT removed).  None when the
        file holds only a processed spectrum.
    meta : NMRMeta
    processed_ppm, processed : ndarray or None
        The vendor's own processed real spectrum and its ppm axis (Bruker
        pdata/1/1r, Spinsolve spectrum.1d), when present.
    """

    fid: np.ndarray | None
    meta: NMRMeta
    processed_ppm: np.ndarray | None = None
    processed: np.ndarray | None = None

    kind: Literal["nmr"] = "nmr"


@dataclass(frozen=True)
class EPRMeta(_Acquired):
    """Acquisition parameters of one CW EPR spectrum.

    Attributes
    ----------
    path : Path
        The data file (.DTA, .spc, .xml, .csv).
    format : {'bes3t', 'esp', 'winepr', 'magnettech', 'csv'}
    mw_freq_hz : float or None
        Microwave frequency, Hz.
    mw_power_W : float or None
        Microwave power, W.
    mod_amp_T : float or None
        Field-modulation amplitude (peak-to-peak as the vendor records it), T.
    mod_freq_hz : float or None
    receiver_gain : float or None
        Receiver gain as a LINEAR factor (dB values converted, 10**(dB/20)).
    receiver_gain_db : float or None
        The gain in dB when the file records it so.
    conversion_time_s : float or None
        Conversion (sampling) time per point, s.
    time_constant_s : float or None
    n_scans : int or None
    temperature_K : float or None
    start, end : datetime or None
        Timezone-aware; UTC if the file gives no zone.
    scans_normalised : bool or None
        Xepr ``SctNorm``: True if the software already divided by scans etc.
    row : int or None
        Row of a 2D (time/field) set, None for 1D.
    extra : dict
        Raw parameters, for provenance only.
    """

    path: Path
    format: Literal["bes3t", "esp", "winepr", "magnettech", "csv"]
    mw_freq_hz: float | None = None
    mw_power_W: float | None = None
    mod_amp_T: float | None = None
    mod_freq_hz: float | None = None
    receiver_gain: float | None = None
    receiver_gain_db: float | None = None
    conversion_time_s: float | None = None
    time_constant_s: float | None = None
    n_scans: int | None = None
    temperature_K: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    scans_normalised: bool | None = None
    row: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class EPRSpectrum:
    """One CW EPR field sweep (first-derivative spectrum), or a 2D set.

    Attributes
    ----------
    field_T : ndarray, shape (n,)
        Magnetic field axis, T.
    intensity : ndarray, shape (n,) or (m, n)
        First-harmonic signal, arbitrary units.  2D for a time/field set.
    meta : EPRMeta
    y_axis : ndarray, shape (m,), or None
        Second axis of a 2D set (e.g. time in s), None for 1D.
    y_unit : str or None
    """

    field_T: np.ndarray
    intensity: np.ndarray
    meta: EPRMeta
    y_axis: np.ndarray | None = None
    y_unit: str | None = None

    kind: Literal["epr"] = "epr"


Spectrum = NMRSpectrum | EPRSpectrum
