"""Writers for Bruker TopSpin and Magritek Spinsolve NMR data.

They feed round-trip tests and the experiment simulator, so they write the
real vendor layouts (docs/physics.md §5.1, §5.2) that nmrglue and the readers in
this package read back:

* Bruker 1D (:func:`write_bruker_1d`): ``pulseprogram``, ``acqu`` + ``acqus`` (JCAMP-DX 5.0
  ``##$KEY= value``, keys in TopSpin's sorted order), then ``fid``, then
  ``audita.txt`` (start in ``started at``, end in ``WHEN``).  ``fid`` is
  zero-padded to a multiple of 1024 bytes like the real XWIN-NMR files.  The order mirrors
  TopSpin: parameters exist before the data, and ``audita.txt`` appears when
  the acquisition has ended (the live watcher's completion check relies on it).
  ``DATE`` is written as the end of acquisition (epoch s), the convention the
  reader assumes (see :mod:`ingest.readers.bruker`).
* Bruker serial (:func:`write_bruker_ser`): ``acqus`` + ``acqu2s`` (TD = rows,
  PARMODE 1), ``ser`` with every row padded to 1024 bytes, ``audita.txt``.
* Spinsolve (:func:`write_spinsolve`): ``acqu.par`` (``key<pad> = value`` lines
  as in the real files, local times without zone) and ``data.1d`` (32-byte
  header ``PROS DATA V1.1``, data type 504, dims; float32 time axis in s; then
  float32 interleaved real/imaginary, stored conjugated: Spinsolve's
  frequency sense is opposite to Bruker's, see :mod:`ingest.readers.spinsolve`).

Integer data (``dtype='int32'``) are scaled by a power of two ``2**k`` so the
largest component uses about 2**29 of the int32 range, rounded, and ``NC = -k``
is recorded: the reader multiplies by ``2**NC`` and recovers the input to
within ``2**NC / 2`` (relative rounding error ≲ 2e-9 of the maximum).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Literal

import numpy as np

from ingest.types import as_utc

__all__ = ["write_bruker_1d", "write_bruker_ser", "write_spinsolve"]

_PEAK_INT = 2.0**29  # target largest |component| for int32 data


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _fmt(v: float | int) -> str:
    """Number as TopSpin would write it, but with full (round-trip) precision."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _quantise(fid: np.ndarray, dtype: str) -> tuple[np.ndarray, int]:
    """Interleaved real/imag words and NC (stored·2**NC = data)."""
    c = np.ascontiguousarray(fid, dtype=np.complex128)
    words = c.view(np.float64)  # re, im, re, im ... without a copy
    if dtype == "float64":
        return words.astype("<f8", copy=False), 0
    if dtype != "int32":
        raise ValueError(f"dtype must be 'int32' or 'float64', not {dtype!r}")
    peak = float(max(-words.min(), words.max())) if words.size else 0.0
    if not np.isfinite(peak):
        raise ValueError("fid holds NaN or inf")
    k = 0 if peak == 0 else int(math.floor(math.log2(_PEAK_INT / peak)))
    scaled = words * (2.0**k)  # exact: a power of two
    np.rint(scaled, out=scaled)
    return scaled.astype("<i4"), -k


def _audit_stamp(t: datetime) -> str:
    t = as_utc(t)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d} +0000"


def _audita_text(start: datetime, end: datetime, data: bytes, n_words: int, owner: str) -> str:
    md5 = hashlib.md5(data).hexdigest().upper()
    md5s = " ".join(md5[i : i + 2] for i in range(0, 32, 2))
    size = f"{n_words // 1024}K" if n_words % 1024 == 0 else str(n_words)
    return (
        "##TITLE= Audit trail, TopSpin\t\tVersion 4.1.4\n"
        "##JCAMPDX= 5.01\n"
        "##ORIGIN= Bruker BioSpin GmbH\n"
        f"##OWNER= {owner}\n"
        "$$ written by flowcell ingest.readers.nmr_writers\n"
        "##AUDIT TRAIL=  $$ (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)\n"
        f"(   1,<{_audit_stamp(end)}>,<{owner}>,<flowcell>,<go>,<TOPSPIN 4.1.4>,\n"
        "      <created by zg\n"
        f"\tstarted at {_audit_stamp(start)},\n"
        "\tPOWCHK enabled, PULCHK disabled,\n"
        f"       data hash MD5: {size}\n"
        f"       {md5s}>)\n"
        "##END=\n"
    )


def _acqus_text(params: dict[str, object], when: datetime, path: str, owner: str) -> str:
    head = (
        "##TITLE= Parameter file, TopSpin\t\tVersion 4.1.4\n"
        "##JCAMPDX= 5.0\n"
        "##DATATYPE= Parameter Values\n"
        "##NPOINTS= 1\n"
        "##ORIGIN= Bruker BioSpin GmbH\n"
        f"##OWNER= {owner}\n"
        f"$$ {as_utc(when).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} +0000  {owner}@flowcell\n"
        f"$$ {path}\n"
    )
    lines = []
    for key in sorted(params):
        val = params[key]
        if isinstance(val, (list, tuple, np.ndarray)):
            vals = " ".join(_fmt(v) for v in val)
            lines.append(f"##${key}= (0..{len(val) - 1})\n{vals}")
        elif isinstance(val, str):
            lines.append(f"##${key}= <{val}>")
        else:
            lines.append(f"##${key}= {_fmt(val)}")
    return head + "\n".join(lines) + "\n##END=\n"


def _bruker_params(
    *,
    td_words: int,
    sfo1_hz: float,
    sw_hz: float,
    carrier_ppm: float,
    ns: int,
    ds: int,
    rg: float,
    temperature_K: float,
    end: datetime,
    nucleus: str,
    solvent: str,
    pulse_program: str,
    dtype: str,
    group_delay: float,
    d1_s: float,
    nc: int,
    parmode: int,
) -> dict[str, object]:
    if sfo1_hz <= 0 or sw_hz <= 0:
        raise ValueError(f"sfo1_hz ({sfo1_hz}) and sw_hz ({sw_hz}) must be positive")
    sfo1 = sfo1_hz / 1e6  # MHz
    x = carrier_ppm * 1e-6
    bf1_hz = sfo1_hz / (1.0 + x)  # 0 ppm
    o1 = sfo1_hz * x / (1.0 + x)  # Hz, = SFO1 - BF1 without cancellation
    bf1 = bf1_hz / 1e6  # MHz
    d = [0.0] * 64
    d[1] = float(d1_s)
    return {
        "AQ_mod": 3,
        "AQSEQ": 0,
        "BF1": bf1,
        "BYTORDA": 0,
        "D": d,
        "DATE": int(round(as_utc(end).timestamp())),
        "DECIM": 1 if group_delay == 0 else 16,
        "DIGMOD": 1,
        "DS": int(ds),
        "DSPFVS": 20,
        "DTYPA": 2 if dtype == "float64" else 0,
        "GRPDLY": float(group_delay),
        "NC": int(nc),
        "NS": int(ns),
        "NUC1": nucleus,
        "O1": o1,
        "PARMODE": parmode,
        "PULPROG": pulse_program,
        "RG": float(rg),
        "SFO1": sfo1,
        "SOLVENT": solvent,
        "SW": sw_hz / sfo1,
        "SW_h": float(sw_hz),
        "TD": int(td_words),
        "TE": float(temperature_K),
    }


def _pulseprogram(name: str) -> str:
    """A minimal one-pulse TopSpin pulse program (nmrglue's read_pprog parses it)."""
    return (
        f"# 1 \"/opt/topspin/exp/stan/nmr/lists/pp/{name}\"\n"
        f";{name}\n;1D sequence written by flowcell ingest.readers.nmr_writers\n"
        "#include <Avance.incl>\n\n"
        "1 ze\n2 30m\n  d1\n  p1*0.33 ph1\n  go=2 ph31\n  30m mc #0 to 2 F0(zd)\nexit\n\n"
        "ph1=0 2 2 0 1 3 3 1\nph31=0 2 2 0 1 3 3 1\n"
    )


def _check_times(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    s, e = as_utc(start), as_utc(end)
    if e < s:
        raise ValueError(f"end ({e}) is before start ({s})")
    return s, e


# --------------------------------------------------------------------------- #
# Bruker
# --------------------------------------------------------------------------- #
def _write_expno(folder: Path, data_name: str, data: bytes, n_words: int, params: dict,
                 extra_dims: dict[str, dict], start: datetime, end: datetime, pulse_program: str,
                 owner: str) -> Path:
    """Write an expno in TopSpin's order: pulseprogram, parameter files, data, audita.txt last.

    ``extra_dims`` maps further parameter-file stems (``acqu2``) to their parameters; each
    is written as the stem (start stamp) and the stem + ``s`` (end stamp), like acqu/acqus.
    The live watcher takes ``audita.txt`` as the end-of-acquisition marker.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pulseprogram").write_text(_pulseprogram(pulse_program))
    for stem, p in {"acqu": params, **extra_dims}.items():
        (folder / stem).write_text(_acqus_text(p | {"DATE": 0} if stem == "acqu" else p, start,
                                               str(folder / stem), owner))
        (folder / f"{stem}s").write_text(_acqus_text(p, end, str(folder / f"{stem}s"), owner))
    (folder / data_name).write_bytes(data)
    (folder / "audita.txt").write_text(_audita_text(start, end, data, n_words, owner))
    return folder


def write_bruker_1d(
    folder: str | Path,
    fid: np.ndarray,
    *,
    sfo1_hz: float,
    sw_hz: float,
    carrier_ppm: float,
    start: datetime,
    end: datetime,
    ns: int = 1,
    ds: int = 0,
    rg: float = 1.0,
    temperature_K: float = 298.15,
    nucleus: str = "1H",
    solvent: str = "D2O",
    pulse_program: str = "zg30",
    dtype: Literal["int32", "float64"] = "int32",
    group_delay: float = 0.0,
    d1_s: float = 1.0,
    owner: str = "flowcell",
) -> Path:
    """Write a TopSpin 1D expno folder: ``acqu``, ``acqus``, ``fid``, ``audita.txt``.

    Parameters
    ----------
    folder : str or Path
        The expno folder (created, parents too); existing files are replaced.
    fid : array_like of complex, shape (n,)
        Time-domain data; TD = 2n words are written.
    sfo1_hz : float
        Observe (carrier) frequency, Hz.
    sw_hz : float
        Spectral width, Hz (SW_h).
    carrier_ppm : float
        Shift of the carrier, ppm; BF1 = SFO1/(1 + carrier_ppm·1e-6), O1 = SFO1 - BF1.
    start, end : datetime
        Acquisition start and end (naive = UTC); written to audita.txt, end also as DATE.
    ns, ds : int
        Scans and dummy scans.
    rg : float
        Receiver gain.
    temperature_K : float
        TE, K.
    nucleus, solvent, pulse_program : str
        NUC1, SOLVENT, PULPROG.
    dtype : {'int32', 'float64'}
        DTYPA 0 (power-of-two scaled, NC recorded) or 2.
    group_delay : float
        GRPDLY, points (0: no digital filter, DSPFVS 20).
    d1_s : float
        Relaxation delay D1, s (used by the reader for durations).
    owner : str
        OWNER recorded in the files.

    Returns
    -------
    Path
        The expno folder.
    """
    folder = Path(folder)
    fid = np.asarray(fid)
    if fid.ndim != 1 or fid.size == 0:
        raise ValueError(f"fid must be a non-empty 1D array, got shape {fid.shape}")
    s, e = _check_times(start, end)
    words, nc = _quantise(fid.astype(np.complex128, copy=False), dtype)
    params = _bruker_params(
        td_words=2 * fid.size, sfo1_hz=sfo1_hz, sw_hz=sw_hz, carrier_ppm=carrier_ppm, ns=ns, ds=ds, rg=rg,
        temperature_K=temperature_K, end=e, nucleus=nucleus, solvent=solvent, pulse_program=pulse_program,
        dtype=dtype, group_delay=group_delay, d1_s=d1_s, nc=nc, parmode=0,
    )
    # pad to a 1024-byte block as TopSpin/XWIN-NMR do (nmrglue's guess_shape expects it)
    data = words.tobytes() + bytes((-words.nbytes) % 1024)
    return _write_expno(folder, "fid", data, words.size, params, {}, s, e, pulse_program, owner)


def write_bruker_ser(
    folder: str | Path,
    fids_2d: np.ndarray,
    *,
    sfo1_hz: float,
    sw_hz: float,
    carrier_ppm: float,
    start: datetime,
    end: datetime,
    ns: int = 1,
    ds: int = 0,
    rg: float = 1.0,
    temperature_K: float = 298.15,
    nucleus: str = "1H",
    solvent: str = "D2O",
    pulse_program: str = "zg30",
    dtype: Literal["int32", "float64"] = "int32",
    group_delay: float = 0.0,
    d1_s: float = 1.0,
    owner: str = "flowcell",
) -> Path:
    """Write a TopSpin serial (pseudo-2D) expno: ``acqus``, ``acqu2s``, ``ser``, ``audita.txt``.

    Parameters
    ----------
    folder : str or Path
        The expno folder.
    fids_2d : array_like of complex, shape (rows, n)
        One FID per row; each row is padded to a multiple of 1024 bytes in
        ``ser`` as TopSpin does.  One common int32 scale (NC) for all rows.
    start, end : datetime
        Start of the first row and end of the last (audita.txt); the reader
        gives row ``i`` the interval ``start + [i, i+1]·(end - start)/rows``.
    **others
        As :func:`write_bruker_1d`.

    Returns
    -------
    Path
        The expno folder.
    """
    folder = Path(folder)
    fids = np.asarray(fids_2d)
    if fids.ndim != 2 or fids.size == 0:
        raise ValueError(f"fids_2d must be a non-empty 2D array (rows, points), got shape {fids.shape}")
    rows, n = fids.shape
    s, e = _check_times(start, end)
    words, nc = _quantise(fids.astype(np.complex128, copy=False), dtype)
    item = words.dtype.itemsize
    row_words = math.ceil(2 * n * item / 1024) * 1024 // item
    padded = np.zeros((rows, row_words), dtype=words.dtype)
    padded[:, : 2 * n] = words
    params = _bruker_params(
        td_words=2 * n, sfo1_hz=sfo1_hz, sw_hz=sw_hz, carrier_ppm=carrier_ppm, ns=ns, ds=ds, rg=rg,
        temperature_K=temperature_K, end=e, nucleus=nucleus, solvent=solvent, pulse_program=pulse_program,
        dtype=dtype, group_delay=group_delay, d1_s=d1_s, nc=nc, parmode=1,
    )
    p2 = {"TD": rows, "SW_h": 1.0, "SW": 1.0, "SFO1": params["SFO1"], "BF1": params["BF1"], "O1": 0,
          "NUC1": nucleus, "FnMODE": 1, "AQ_mod": 0}
    return _write_expno(folder, "ser", padded.tobytes(), padded.size, params, {"acqu2": p2}, s, e,
                        pulse_program, owner)


# --------------------------------------------------------------------------- #
# Spinsolve
# --------------------------------------------------------------------------- #
def _local(t: datetime, tz: tzinfo | None) -> str:
    """Spinsolve time string (local wall time, no zone, ms)."""
    t = as_utc(t).astimezone(tz or timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _acqu_par_text(params: list[tuple[str, object]]) -> str:
    """Spinsolve ``acqu.par`` text: ``key = value`` lines (strings quoted), CRLF line ends."""
    lines = []
    for k, v in params:
        if isinstance(v, str):
            val = f'"{v}"'
        else:
            val = _fmt(v)
        lines.append(f"{k:<36s}= {val}")
    return "\r\n".join(lines) + "\r\n"


def _data_1d_bytes(fid: np.ndarray, dwell_us: float) -> bytes:
    """Spinsolve ``data.1d`` bytes: header, time axis (s, from 0) and the conjugated FID as float32."""
    n = fid.size
    header = b"SORPATAD1.1V" + np.array([504, n, 1, 1, 1], dtype="<i4").tobytes()
    body = np.empty(3 * n, dtype="<f4")
    body[:n] = np.arange(n) * (dwell_us * 1e-6)  # time axis from 0, s (as in the real files)
    body[n::2] = fid.real
    body[n + 1 :: 2] = -fid.imag  # Spinsolve's frequency sense is the conjugate (ingest.readers.spinsolve)
    return header + body.tobytes()


def write_spinsolve(
    folder: str | Path,
    fid: np.ndarray,
    *,
    sfo1_hz: float,
    sw_hz: float,
    carrier_ppm: float,
    start: datetime,
    end: datetime,
    ns: int = 1,
    rep_time_s: float = 10.0,
    rx_gain: float = 31.0,
    temperature_K: float = 299.65,
    nucleus: str = "1H",
    solvent: str = "D2O",
    sample: str = "flowcell",
    tz: tzinfo | None = None,
) -> Path:
    """Write a Spinsolve experiment folder: ``acqu.par`` then ``data.1d``.

    Parameters
    ----------
    folder : str or Path
        The experiment folder (created).
    fid : array_like of complex, shape (n,)
        Time-domain data, stored as float32 (relative precision ~6e-8).
    sfo1_hz : float
        Transmitter frequency, Hz (``b1Freq`` = sfo1_hz/1e6 MHz).
    sw_hz : float
        Spectral width, Hz (``bandwidth`` kHz, ``dwellTime`` = 1e6/sw µs).
    carrier_ppm : float
        Shift of the spectrum centre, ppm; ``lowestFrequency`` =
        (sfo1 - bf1) - sw/2 Hz with bf1 = sfo1/(1 + carrier_ppm·1e-6).
    start, end : datetime
        ``startTime`` and ``CurrentTime`` (written as wall time in ``tz``, no zone).
    ns : int
        ``nrScans``.
    rep_time_s : float
        Repetition time, s (``repTime`` in ms).
    rx_gain : float
        ``rxGain``.
    temperature_K : float
        Written as magnet temperature ``CurrentTemperatureMagnet`` (°C).
    nucleus, solvent, sample : str
        ``rxChannel``, ``Solvent``, ``Sample``.
    tz : tzinfo, optional
        Zone of the wall times written (default UTC); read back with the same ``tz``.

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    fid = np.asarray(fid, dtype=np.complex128)
    if fid.ndim != 1 or fid.size == 0:
        raise ValueError(f"fid must be a non-empty 1D array, got shape {fid.shape}")
    if sfo1_hz <= 0 or sw_hz <= 0:
        raise ValueError(f"sfo1_hz ({sfo1_hz}) and sw_hz ({sw_hz}) must be positive")
    s, e = _check_times(start, end)
    n = fid.size
    bf1_hz = sfo1_hz / (1.0 + carrier_ppm * 1e-6)
    car_hz = sfo1_hz - bf1_hz
    dwell_us = 1e6 / sw_hz
    tc = temperature_K - 273.15
    params: list[tuple[str, object]] = [
        ("Sample", sample), ("Solvent", solvent), ("Custom", ""),
        ("startTime", _local(s, tz)), ("PreProtocolDelay", 0), ("acqDelay", 24),
        ("b1Freq", sfo1_hz / 1e6), ("bandwidth", sw_hz / 1e3), ("dwellTime", dwell_us),
        ("experiment", "1D"), ("expName", "1D"), ("nrPnts", n), ("nrScans", int(ns)),
        ("repTime", rep_time_s * 1e3), ("rxChannel", nucleus), ("rxGain", rx_gain),
        ("lowestFrequency", car_hz - sw_hz / 2), ("totalAcquisitionTime", (e - s).total_seconds()),
        ("graphTitle", f"1D-{nucleus}"), ("linearPrediction", "no"), ("userData", ""),
        ("Protocol", "1D EXTENDED+"), ("Software", "flowcell ingest.readers.nmr_writers"),
        ("StartProtocolTemperatureMagnet", tc), ("CurrentTemperatureMagnet", tc),
        ("CurrentTime", _local(e, tz)),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acqu.par").write_text(_acqu_par_text(params))
    (folder / "data.1d").write_bytes(_data_1d_bytes(fid, dwell_us))
    return folder
