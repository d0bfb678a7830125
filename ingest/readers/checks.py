"""The readers' contract, in one place: bounded reads and plausibility checks.

Every public reader in :mod:`ingest.readers` keeps one contract: any failure
while reading or interpreting a file is an :class:`ingest.types.IngestError`
whose message starts with the path and names the key or the byte offset; what
a vendor's file carries is checked for plausibility before it is returned, so
garbage is refused (or, where a judgement is involved, warned about with an
:class:`ingest.types.IngestWarning`), never passed on silently.

Checks (docs/physics.md §5 lists the formats)
---------------------------------------------
* reads are bounded: the file must be a regular file (not a FIFO or a device
  such as ``/dev/zero``) and its size is compared with what the header
  declares *before* anything is read (:func:`read_bytes`);
* widths and frequencies are finite and positive (:func:`positive`);
* time stamps lie between :data:`EARLIEST` and tomorrow, and a start is not
  after its end (:func:`plausible_time`, :func:`check_meta`);
* data are finite (:func:`check_meta` via :func:`checked`);
* the byte order declared (Bruker ``BYTORDA``, BES3T ``BSEQ``) agrees with the
  magnitude of the data (:func:`byte_order_check`).
"""

from __future__ import annotations

import functools
import math
import os
import stat
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ingest.types import EPRSpectrum, IngestError, NMRSpectrum

__all__ = [
    "EARLIEST",
    "MAX_FILE_BYTES",
    "byte_order_check",
    "check_meta",
    "checked",
    "checked_size",
    "epoch_time",
    "plausible_time",
    "positive",
    "read_bytes",
    "read_small",
    "regular_size",
]

#: No spectrometer file the package reads predates this (UTC).
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
#: Largest single data file read (bytes); larger declared sizes are refused
#: before anything is allocated.
MAX_FILE_BYTES = 4 << 30

F = TypeVar("F", bound=Callable[..., Any])


def regular_size(path: str | Path, what: str = "file") -> int:
    """Size in bytes of a regular file; IngestError for anything else.

    A FIFO, a device (``/dev/zero``) or a folder has no size that can be
    trusted: reading it could block or never end.  One ``os.stat`` on the path as
    given (no Path object: the live read asks several times per spectrum).
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise IngestError(path, f"{what} cannot be opened ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (device, FIFO or socket)"
        raise IngestError(path, f"{what} is {kind}: refused, its size is unknown")
    return int(st.st_size)


def read_bytes(path: str | Path, expected: int | None = None, *, what: str = "data file",
               exact: bool = True, declared_by: str = "the header") -> bytes:
    """Read a whole regular file whose size is known before reading.

    Parameters
    ----------
    path : path-like
    expected : int, optional
        Size (bytes) the header declares; with ``exact`` a different size is
        refused, without it a smaller one is.  Checked before reading.
    what : str
        Name used in messages (``'the .DTA'``).
    declared_by : str
        Who declares the size (``'the .DSC (XPTS 1024, IRFMT D)'``).

    Raises
    ------
    IngestError
        Not a regular file, empty, too large, or the wrong size.
    """
    p = path  # str or Path as given: IngestError makes the Path, only when there is an error
    size = checked_size(p, expected, what=what, exact=exact, declared_by=declared_by)
    with open(p, "rb") as fh:
        raw = fh.read(size if expected is None else expected)
    if len(raw) < (expected or size):
        raise IngestError(p, f"{what} shrank while being read (byte offset {len(raw)})")
    return raw


def read_small(path: str | Path, n: int, *, to_end: bool = False) -> bytes:
    """Up to ``n`` bytes from the start of a file (fewer only at its end), or with ``to_end``
    at least ``n`` and whatever was appended since, to its end; with ``os.open`` /
    ``os.read``: no Python file objects (~10 us less a file on the live path)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = [os.read(fd, n)]
        got = len(parts[0])
        while parts[-1] and (got < n or to_end):
            parts.append(os.read(fd, n - got if got < n else 1 << 16))
            got += len(parts[-1])
    finally:
        os.close(fd)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def checked_size(path: str | Path, expected: int | None = None, *, what: str = "data file",
                 exact: bool = True, declared_by: str = "the header") -> int:
    """The size (bytes) of a regular file about to be read, with :func:`read_bytes`'s checks
    and messages (parameters as there); for readers that read the file themselves."""
    p = path
    size = regular_size(p, what)
    if size == 0:
        raise IngestError(p, f"{what} is empty (0 bytes): not written yet or truncated")
    if expected is not None:
        if expected > MAX_FILE_BYTES:
            raise IngestError(p, f"{declared_by} declares {expected} bytes, more than the {MAX_FILE_BYTES} read at most")
        if (exact and size != expected) or size < expected:
            raise IngestError(p, f"{what} holds {size} bytes, {declared_by} says {expected}"
                                 + (" — truncated or still being written" if size < expected else ""))
    elif size > MAX_FILE_BYTES:
        raise IngestError(p, f"{what} holds {size} bytes, more than the {MAX_FILE_BYTES} read at most")
    return size


def positive(path: str | Path, key: str, value: Any, unit: str = "") -> float:
    """``value`` as a finite positive float, else IngestError naming the key."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise IngestError(path, f"{key} = {value!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise IngestError(path, f"{key} = {value!r}{(' ' + unit) if unit else ''} must be finite and positive")
    return v


def _latest() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=1)


def plausible_time(path: str | Path, key: str, t: datetime | None) -> datetime | None:
    """``t`` unchanged if it lies between :data:`EARLIEST` and tomorrow, else IngestError."""
    return _plausible(path, key, t, None)


def _plausible(path: str | Path, key: str, t: datetime | None, latest: datetime | None) -> datetime | None:
    """:func:`plausible_time` with tomorrow's bound ``latest`` given (None: read the clock)."""
    if t is None:
        return None
    tu = t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)
    if not EARLIEST <= tu <= (latest or _latest()):
        raise IngestError(path, f"{key} gives {tu.isoformat()}, outside {EARLIEST.year} … tomorrow: "
                                "a wrong instrument clock or a garbled file")
    return t


def epoch_time(path: str | Path, key: str, seconds: Any) -> datetime:
    """Seconds since 1970 (Bruker ``DATE``) → aware UTC datetime, range-checked."""
    try:
        s = float(seconds)
        if not math.isfinite(s):
            raise ValueError
        t = datetime.fromtimestamp(s, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise IngestError(path, f"{key} = {seconds!r} is not a time (s since 1970)") from None
    plausible_time(path, key, t)
    return t


def check_meta(spec: NMRSpectrum | EPRSpectrum, *, fid_finite: bool = False) -> NMRSpectrum | EPRSpectrum:
    """Refuse a spectrum whose metadata or data make no physical sense.

    Checks times (range, start before end), frequencies and widths (finite,
    positive), and that the data are finite.  Returns ``spec`` unchanged.

    ``fid_finite``: the reader knows the FID finite by its making (Bruker integer words
    times ``2**NC``, ``|NC| <= 64``: every product of an int32 and such a power of two is a
    finite float64), so only its size is checked, not its values (one pass over the FID less).
    """
    m = spec.meta
    where = m.path
    latest = _latest() if m.start is not None or m.end is not None else None  # one clock read for both
    _plausible(where, "the start time", m.start, latest)
    _plausible(where, "the end time", m.end, latest)
    if m.start is not None and m.end is not None and m.start > m.end + timedelta(seconds=1):
        raise IngestError(where, f"start {m.start.isoformat()} is after end {m.end.isoformat()}")
    if m.temperature_K is not None and not 0 < m.temperature_K < 2000:
        raise IngestError(where, f"temperature {m.temperature_K} K is not physical")
    if isinstance(spec, NMRSpectrum):
        positive(where, "observe frequency (SFO1/b1Freq)", m.sfo1_hz, "Hz")
        positive(where, "basic frequency (BF1)", m.bf1_hz, "Hz")
        positive(where, "spectral width (SW_h/bandwidth)", m.sw_hz, "Hz")
        if not math.isfinite(m.carrier_ppm):
            raise IngestError(where, f"carrier {m.carrier_ppm} ppm is not finite")
        if fid_finite and spec.fid is not None:
            if np.size(spec.fid) == 0:
                raise IngestError(where, "FID holds no points")
        else:
            _finite(where, "FID", spec.fid)
        if spec.processed is not None:  # absent in the live and the generated case: no calls
            _finite(where, "processed spectrum", spec.processed)
        if spec.processed_ppm is not None:
            _finite(where, "processed ppm axis", spec.processed_ppm)
    else:
        if m.mw_freq_hz is not None:
            positive(where, "microwave frequency", m.mw_freq_hz, "Hz")
        for key, v in (("microwave power", m.mw_power_W), ("modulation amplitude", m.mod_amp_T),
                       ("conversion time", m.conversion_time_s), ("time constant", m.time_constant_s)):
            if v is not None and not (math.isfinite(v) and v >= 0):  # 0: "not recorded" in some files
                raise IngestError(where, f"{key} = {v!r} must be finite and >= 0")
        if m.receiver_gain is not None:
            positive(where, "receiver gain (RCAG/RRG)", m.receiver_gain)
        if m.n_scans is not None and m.n_scans < 1:
            raise IngestError(where, f"number of scans {m.n_scans} must be >= 1")
        _finite(where, "field axis", spec.field_T)
        _finite(where, "intensity", spec.intensity)
    return spec


#: Arrays whose finiteness :func:`_finite` proves with one dot product (native float64 pairs).
_DOT_DTYPES = (np.dtype(np.float64), np.dtype(np.complex128))


def _finite(where: Path, name: str, arr: np.ndarray | None) -> None:
    if arr is None:
        return
    a = np.asarray(arr)
    if a.size == 0:
        raise IngestError(where, f"{name} holds no points")
    if a.dtype.kind in "iub":  # integers and booleans are finite
        return
    if a.dtype.kind in "fc":
        # one reduction instead of a boolean array and its scan (~45 instead of ~110 us for a
        # 64k-point FID): a NaN or an inf makes the sum non-finite, so a finite sum proves
        # every value finite; a non-finite sum (or finite values overflowing) gets the exact test
        with np.errstate(all="ignore"):
            if a.dtype in _DOT_DTYPES and a.flags.c_contiguous:
                # the same proof from one BLAS dot product (~20 instead of ~45 us): a sum of
                # squares is NaN or inf whenever a value is, and never inf - inf
                v = a.reshape(-1).view(np.float64)
                if np.isfinite(np.dot(v, v)):
                    return
            elif np.isfinite(a.sum()):
                return
    ok = np.isfinite(a)
    if not ok.all():
        i = int(np.flatnonzero(~ok.reshape(-1))[0])
        raise IngestError(where, f"{name} holds {int((~ok).sum())} non-finite value(s) (NaN/inf), the first at point {i}")


def _sign_extended(values: np.ndarray) -> float:
    """Fraction of integers whose top byte is pure sign extension (0x00 or 0xFF).

    Integer FIDs rarely use the top byte: read in the right order most values
    have it sign-extended; read in the wrong order that byte is the original
    low byte, i.e. random (~1 %)."""
    if values.size == 0:
        return float("nan")
    bits = 8 * values.dtype.itemsize
    if values.dtype.kind == "i":  # top byte 0x00 or 0xFF <=> -2**(bits-8) <= v < 2**(bits-8)
        lim = 1 << (bits - 8)
        ok = (values >= -lim) & (values < lim)
    else:  # unsigned: top byte 0x00 or 0xFF
        lim = 1 << (bits - 8)
        ok = (values < lim) | (values >= (1 << bits) - lim)
    return float(np.count_nonzero(ok)) / values.size


def _magnitude(values: np.ndarray) -> tuple[float, float]:
    """(fraction of sane values, median |x| of the non-zero tail)."""
    if values.dtype.kind in "iu":  # integers are all sane (finite, 0 or |x| >= 1)
        tail = np.abs(values[len(values) // 2:].astype(np.int64))
        tail = tail[tail > 0]
        return 1.0, float(np.median(tail)) if tail.size else 0.0
    v = values
    with np.errstate(all="ignore"):
        a = np.abs(v)
        sane = np.isfinite(a) & ((a == 0) | ((a > 1e-100) & (a < 1e100)))
        tail = a[len(a) // 2:]
        tail = tail[np.isfinite(tail) & (tail > 0)]
    return float(sane.mean()) if a.size else 1.0, float(np.median(tail)) if tail.size else 0.0


def byte_order_check(path: str | Path, key: str, raw: bytes, dtype: np.dtype, *, limit: int = 1 << 14) -> None:
    """Refuse data whose declared byte order contradicts their magnitude.

    Read in the declared order, a flipped file gives values near 1e-314 or
    1e300 (floats) or a noise tail of ~1e7-1e9 where the other order gives
    ~1 (integers).  The data are compared in both orders; when the other order
    is plainly the sane one (all values sane where the declared ones are not,
    or a tail 1000× smaller), an IngestError names ``key``.
    """
    dt = np.dtype(dtype)
    if dt.itemsize == 1:
        return
    n = min(len(raw) // dt.itemsize, limit)
    if n < 8:
        return
    declared = np.frombuffer(raw[: n * dt.itemsize], dtype=dt)
    other = np.frombuffer(raw[: n * dt.itemsize], dtype=dt.newbyteorder())
    s_d, m_d = _magnitude(declared)
    s_o, m_o = _magnitude(other)
    flipped = s_o > 0.99 and s_o - s_d > 0.5
    if not flipped and s_d > 0.99 and s_o > 0.99 and m_d > 0 and m_o > 0:
        flipped = m_d > 1e3 * m_o and dt.kind in "iu"
    if not flipped and dt.kind in "iu" and dt.itemsize >= 4:
        flipped = _sign_extended(other) - _sign_extended(declared) > 0.3 and _sign_extended(declared) < 0.1
    if flipped:
        order = "big" if dt.byteorder == ">" else "little"
        raise IngestError(
            path,
            f"{key} declares {order}-endian data, but read that way the values are implausible "
            f"(median |tail| {m_d:.3g}, {100 * s_d:.0f} % sane) while the other order gives "
            f"{m_o:.3g} ({100 * s_o:.0f} % sane): byte order flipped in the parameter file?",
        )


def checked(path_arg: int = 0, *, meta: bool = True) -> Callable[[F], F]:
    """Decorator for a public reader: keep the contract whatever goes wrong.

    Exceptions other than IngestError (ValueError, OverflowError,
    MemoryError, struct errors from a library…) become an IngestError naming
    the path the reader was given and the exception; what the reader returns
    (a spectrum or a list of them) passes :func:`check_meta` (``meta`` False: the
    reader calls :func:`check_meta` itself, on everything it returns, with what it knows).
    """

    def deco(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            path = args[path_arg] if len(args) > path_arg else kwargs.get("path", "?")
            try:
                out = func(*args, **kwargs)
            except IngestError:
                raise
            except (RecursionError, KeyboardInterrupt):
                raise
            except Exception as exc:
                raise IngestError(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
            if meta:
                for spec in out if isinstance(out, list) else [out]:
                    check_meta(spec)
            return out

        return wrapper  # type: ignore[return-value]

    return deco
