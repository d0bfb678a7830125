"""Bruker ESP / WinEPR (.par + .spc): identify, read, completeness.

writes ``DOS Format`` as its first line and stores float32
little-endian; the older ESP (Unix/Aspect) stores int32 big-endian and has
no ``DOS Format`` line.  The decision is made on that key and then checked
against the file size (4 bytes per point, ``ANZ``/``RES``/``SSX`` points
when given); WinEPR ``MIN``/``MAX`` keys, when present, are checked too.
Field axis: ``GST + GSI * linspace(0, 1, n)`` in ``JUN`` (G by default),
falling back to ``HCF ± HSW/2``.  Units: ``MF`` GHz, ``MP`` mW, ``RMA`` G,
``RCT``/``RTC`` ms, ``RRG`` linear, ``TE`` K.  ``JDA``/``JTM`` are taken as
the end of the acquisition, like Xepr (not verifiable on the shared
files; the start is estimated as for BES3T).

Completeness (:func:`expected_size`): ``4·N`` bytes of .spc when the .par
declares ``N`` (``ANZ``, ``RES`` or ``SSX``, times ``SSY``).  Many ESP files
declare no point count (the shared ``ESP.par`` has neither ``ANZ`` nor
``RES``): then nothing on disk says when the .spc is finished, and the live
watcher waits the long quiet period :data:`ingest.live.completion.UNSIZED_QUIET_S`;
the reader warns when such a .spc holds a point count that is not a power of
two (ESP resolutions are), the mark of a truncated file.
Formats: docs/physics.md §5.5.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ingest.readers.checks import checked, read_bytes, regular_size
from ingest.readers.epr_common import FIELD_UNITS, float_key
from ingest.types import EPRMeta, EPRSpectrum, IngestError, IngestWarning, as_utc

__all__ = ["ESP_KEYS", "expected_size", "is_par", "paths", "read_esp"]

#: Keys of which at least three make a ``KEY value`` file an ESP/WinEPR .par.
ESP_KEYS = frozenset({"HCF", "HSW", "GST", "GSI", "RES", "ANZ", "JSS", "MF", "RRG", "RMA", "JUN", "JEX", "JNS",
                      "MP", "RCT", "SSX"})


def is_par(path: Path) -> bool:
    """True if ``path`` is text of ``KEY value`` lines with ESP/WinEPR keys (CR-only line ends allowed)."""
    try:
        with open(path, "rb") as fh:
            h = fh.read(4096)
    except OSError:
        return False
    if not h or b"\x00" in h:
        return False
    text = h.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    keys = {ln.split()[0] for ln in text.split("\n") if ln.strip()}
    return len(keys & ESP_KEYS) >= 3


def paths(path: str | Path) -> tuple[Path, Path]:
    """(.par, .spc) for a path given as either file or their common stem."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix.lower() in (".par", ".spc") else p

    def find(ext: str) -> Path:
        for cand in (ext, ext.upper()):
            q = stem.with_name(stem.name + cand)
            if q.exists():
                return q
        return stem.with_name(stem.name + ext)

    return find(".par"), find(".spc")


def _declared_points(par: dict[str, str]) -> int | None:
    for key in ("ANZ", "RES", "SSX"):
        v = float_key(par, key)
        if v is not None and v >= 1:
            ny = int(float_key(par, "SSY") or 1) if "SSY" in par else 1
            return int(v) * max(ny, 1)
    return None


def expected_size(par_path: Path) -> int | None:
    """Bytes the .par promises for the .spc (4 per point); None when it declares no count."""
    try:
        n = _declared_points(_parse_par(par_path))
    except IngestError:
        return None
    return None if n is None else 4 * n


def _parse_par(path: Path) -> dict[str, str]:
    try:
        if regular_size(path, "parameter file") > 1 << 20:
            raise IngestError(path, "parameter file larger than 1 MB: not an ESP/WinEPR .par")
        text = read_bytes(path, what="parameter file").decode("latin-1")
    except OSError as exc:
        raise IngestError(path, f"cannot read parameter file: {exc}") from exc
    out: dict[str, str] = {}
    for line in re.split(r"\r\n|\r|\n", text):
        s = line.strip()
        if not s:
            continue
        if s.upper().startswith("DOS") and "FORMAT" in s.upper():
            out["DOS Format"] = "1"
            continue
        parts = s.split(None, 1)
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    if not out:
        raise IngestError(path, "empty parameter file")
    return out


def _esp_datetime(par: dict[str, str]) -> datetime | None:
    date, time = par.get("JDA", "").strip(), par.get("JTM", "").strip()
    if not date:
        return None
    fmts_d = ("%d.%b.%Y", "%d-%b-%Y", "%m/%d/%Y", "%d.%m.%Y", "%m/%d/%y", "%d-%b-%y")
    fmts_t = ("%H:%M:%S", "%H:%M")
    for fd in fmts_d:
        for ft in fmts_t:
            try:
                return as_utc(datetime.strptime(f"{date.title()} {time}", f"{fd} {ft}"))
            except ValueError:
                continue
    return None


def _point_counts(spc_path: Path, par: dict[str, str], raw: bytes) -> tuple[int, int]:
    """Points per spectrum and number of spectra, from the .par, checked against the .spc size.

    Returns
    -------
    tuple of int
        ``(n, ny)``: points per spectrum (ANZ/RES/SSX, else the file size) and rows (SSY, else 1).
    """
    n_file = len(raw) // 4
    n = None
    for key in ("ANZ", "RES", "SSX"):
        v = float_key(par, key)
        if v is not None:
            n = int(v)
            break
    ny = int(float_key(par, "SSY") or 1) if "SSY" in par else 1
    if n is None:
        n = n_file // ny
        if n & (n - 1):
            warnings.warn(f"{spc_path}: {n} points and no point count (ANZ/RES/SSX) in the .par; ESP "
                          "resolutions are powers of two: truncated .spc?", IngestWarning, stacklevel=4)
    if n * ny != n_file:
        raise IngestError(spc_path, f"holds {len(raw)} bytes, the .par says {n * ny} points of 4 bytes")
    return n, ny


def _check_range(spc_path: Path, par: dict[str, str], data: np.ndarray) -> None:
    """Refuse data whose range disagrees with the .par MIN/MAX (a wrong number format)."""
    vmin, vmax = float_key(par, "MIN"), float_key(par, "MAX")
    if vmin is not None and vmax is not None:
        tol = 1e-5 * max(abs(vmin), abs(vmax), 1.0)
        if abs(data.min() - vmin) > tol or abs(data.max() - vmax) > tol:
            raise IngestError(
                spc_path,
                f"data range [{data.min():g}, {data.max():g}] disagrees with the .par MIN/MAX "
                f"[{vmin:g}, {vmax:g}]: wrong number format?",
            )


def _field_axis(par_path: Path, par: dict[str, str], n: int) -> tuple[np.ndarray, str]:
    """Field axis from GST/GSI or HCF/HSW in the .par unit JUN.

    Returns
    -------
    tuple
        ``(field_T, unit)``: the field of each of the ``n`` points, T, and the .par's unit key.
    """
    unit = par.get("JUN", "G").strip().upper() or "G"
    if unit not in FIELD_UNITS:
        raise IngestError(par_path, f"unknown field unit JUN {par.get('JUN')!r}")
    gst, gsi = float_key(par, "GST"), float_key(par, "GSI")
    hcf, hsw = float_key(par, "HCF"), float_key(par, "HSW")
    if gst is not None and gsi is not None:
        start_f, width = gst, gsi
    elif hcf is not None and hsw is not None:
        start_f, width = hcf - hsw / 2.0, hsw
    else:
        raise IngestError(par_path, "field axis undefined: need GST/GSI or HCF/HSW")
    field_T = (start_f + width * np.linspace(0.0, 1.0, n)) * FIELD_UNITS[unit]
    return field_T, unit


@checked()
def read_esp(path: str | Path) -> EPRSpectrum:
    """Read a Bruker ESP or WinEPR spectrum (.par + .spc).

    Parameters
    ----------
    path : str or Path
        The .par, the .spc, or their common stem.

    Returns
    -------
    EPRSpectrum
        ``meta.format`` is ``'winepr'`` (float32 little-endian) or ``'esp'``
        (int32 big-endian); see the module docstring for how it is decided.

    Raises
    ------
    IngestError
        Missing files, a .spc whose size does not fit, inconsistent MIN/MAX.
    """
    par_path, spc_path = paths(path)
    if not par_path.exists():
        raise IngestError(par_path, "parameter file .par not found")
    if not spc_path.exists():
        raise IngestError(spc_path, "data file .spc not found")
    par = _parse_par(par_path)
    if regular_size(spc_path, "the .spc") == 0:
        raise IngestError(spc_path, "the .spc is empty")
    declared = _declared_points(par)
    raw = read_bytes(spc_path, None if declared is None else 4 * declared, what="the .spc",
                     declared_by=f"the .par ({declared} points of 4 bytes)")
    winepr = "DOS Format" in par
    dt = np.dtype("<f4") if winepr else np.dtype(">i4")
    if len(raw) % 4:
        raise IngestError(spc_path, f"holds {len(raw)} bytes, not a multiple of 4 (float32/int32)")
    n, ny = _point_counts(spc_path, par, raw)
    data = np.frombuffer(raw, dtype=dt).astype(float)
    if not np.all(np.isfinite(data)):
        raise IngestError(spc_path, f"non-finite values when read as {dt} ({'WinEPR' if winepr else 'ESP'})")
    _check_range(spc_path, par, data)

    field_T, unit = _field_axis(par_path, par, n)

    mf = float_key(par, "MF")
    mp = float_key(par, "MP")
    rma = float_key(par, "RMA")
    rct = float_key(par, "RCT")
    rtc = float_key(par, "RTC")
    rrg = float_key(par, "RRG")
    te = float_key(par, "TE")
    nsc = float_key(par, "JSD") if "JSD" in par else float_key(par, "JNS")
    n_scans = int(nsc) if nsc is not None else None
    end = _esp_datetime(par)
    start = None
    if end is not None:
        start = end - timedelta(seconds=(rct or 0.0) * 1e-3 * n * ny * (n_scans or 1))
    meta = EPRMeta(
        path=spc_path,
        format="winepr" if winepr else "esp",
        mw_freq_hz=None if mf is None else mf * 1e9,
        mw_power_W=None if mp is None else mp * 1e-3,
        mod_amp_T=None if rma is None else rma * FIELD_UNITS[unit],
        mod_freq_hz=None,
        receiver_gain=rrg,
        receiver_gain_db=None,
        conversion_time_s=None if rct is None else rct * 1e-3,
        time_constant_s=None if rtc is None else rtc * 1e-3,
        n_scans=n_scans,
        temperature_K=te,
        start=start,
        end=end,
        scans_normalised=None,
        extra={"par": par, "par_path": str(par_path), "start_estimated": end is not None},
    )
    intensity = data if ny == 1 else data.reshape(ny, n)
    y_axis = None if ny == 1 else np.arange(ny, dtype=float)
    return EPRSpectrum(field_T=field_T, intensity=intensity, meta=meta, y_axis=y_axis,
                       y_unit=None if ny == 1 else "index")


