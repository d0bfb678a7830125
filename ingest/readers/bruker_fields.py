"""The numbers of a Bruker ``acqus`` that :mod:`ingest.readers.bruker` puts in the metadata, checked.

:func:`_meta_fields` (the :class:`ingest.types.NMRMeta` fields and derived numbers) and
:func:`_check_size` (the data file's size against ``TD``, ``DTYPA``, ``BYTORDA``), with the
errors that name the file and the key (docs/physics.md §5.1); :func:`_checked_fields` runs both
for a 1D fid and reuses the last results when the acqus values they read are the very same
objects (an acqus patched from the last one parsed: consecutive expnos of a series).  Kept
apart from :mod:`ingest.readers.bruker` so that module stays a readable size.
"""

from __future__ import annotations

import math
import operator
import os
import threading
from pathlib import Path
from typing import Any

from ingest.readers.checks import regular_size
from ingest.types import IngestError

__all__ = ["BLOCK_BYTES"]

_MAX_NC = 64  # |NC| beyond this is no TopSpin scaling (2**64 ~ 1.8e19)

#: Every FID (1D fid or ser row) starts on a multiple of this many bytes.
BLOCK_BYTES = 1024

_ITEMSIZE = {0: 4, 2: 8}  # DTYPA -> bytes per stored word


def _num(dic: dict[str, Any], key: str, path: str | Path, default: Any = None, *, required: bool = False) -> Any:
    """A numeric parameter, with an error naming the file when it is missing or bad."""
    if key not in dic:
        if required:
            raise IngestError(path, f"acqus has no {key}")
        return default
    val = dic[key]
    if isinstance(val, (int, float)) and not isinstance(val, bool):
        num = val
    else:
        try:
            num = float(str(val).strip())
        except ValueError:
            raise IngestError(path, f"{key} = {val!r} is not a number") from None
    if not math.isfinite(num):
        raise IngestError(path, f"{key} = {val!r} is not a finite number")
    return num


def _text(dic: dict[str, Any], key: str) -> str | None:
    val = dic.get(key)
    if val is None:
        return None
    s = str(val).strip().strip("<>").strip()
    return s or None


#: DSPFVS values with a row in nmrglue's ``bruker_dsp_table`` (old firmware): only these
#: import nmrglue (and scipy.signal, ~0.5 s on the first spectrum of a ``flowcell watch``);
#: tests/test_bruker_fast_read.py checks the set against nmrglue's table.
_DSP_TABLE_FIRMWARE = frozenset({10, 11, 12, 13})


def _group_delay(acqus: dict[str, Any], path: Path) -> float:
    grp = _num(acqus, "GRPDLY", path, -1)
    if grp is not None and grp > 0:
        return float(grp)
    dspfvs = int(_num(acqus, "DSPFVS", path, 0) or 0)
    decim = _num(acqus, "DECIM", path, 0) or 0
    if dspfvs not in _DSP_TABLE_FIRMWARE:  # newer firmware without GRPDLY > 0: no filter delay
        return 0.0
    import nmrglue as ng  # lazy: only old firmware (no GRPDLY) needs its table; keeps start-up light
    table = ng.fileio.bruker.bruker_dsp_table
    if dspfvs in table:
        key = int(decim) if float(decim).is_integer() else decim
        if key in table[dspfvs]:
            return float(table[dspfvs][key])
    return 0.0


def _scan_time_s(acqus: dict[str, Any], path: Path) -> float:
    """One scan, AQ + D1 (s), with AQ = TD/(2·SW_h)."""
    td = _num(acqus, "TD", path, required=True)
    sw_h = _num(acqus, "SW_h", path, required=True)
    d = acqus.get("D")
    d1 = float(d[1]) if isinstance(d, list) and len(d) > 1 else 0.0
    return float(td) / (2.0 * float(sw_h)) + d1


def _meta_fields(folder: Path, acqus: dict[str, Any], acqus_path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The NMRMeta fields read from ``acqus`` (all but ``extra`` and the times), checked, plus
    a dict of derived numbers."""
    td = int(_num(acqus, "TD", acqus_path, required=True))
    if td <= 0:
        raise IngestError(acqus_path, f"TD = {td} (no points)")
    sw_h = float(_num(acqus, "SW_h", acqus_path, required=True))
    sfo1 = float(_num(acqus, "SFO1", acqus_path, required=True))
    bf1 = float(_num(acqus, "BF1", acqus_path, sfo1))
    o1 = float(_num(acqus, "O1", acqus_path, (sfo1 - bf1) * 1e6))
    if sw_h <= 0 or sfo1 <= 0:
        raise IngestError(acqus_path, f"SW_h = {sw_h}, SFO1 = {sfo1}: must be positive")
    ns = int(_num(acqus, "NS", acqus_path, 1))
    ds = int(_num(acqus, "DS", acqus_path, 0))
    rg = _num(acqus, "RG", acqus_path, None)
    te = _num(acqus, "TE", acqus_path, None)
    nucleus = _text(acqus, "NUC1") or "1H"
    if nucleus.lower() == "off":
        nucleus = "1H"
    fields = {
        "path": folder,
        "vendor": "bruker",
        "nucleus": nucleus,
        "sfo1_hz": sfo1 * 1e6,
        "bf1_hz": bf1 * 1e6,
        "sw_hz": sw_h,
        "carrier_ppm": o1 / bf1,  # O1 (Hz) / BF1 (MHz) = ppm, SR = 0
        "td": td // 2,
        "ns": ns,
        "rg": None if rg is None else float(rg),
        "temperature_K": None if te is None or te <= 0 else float(te),
        "group_delay": _group_delay(acqus, acqus_path),
        "pulse_program": _text(acqus, "PULPROG"),
        "solvent": _text(acqus, "SOLVENT"),
    }
    nc = int(_num(acqus, "NC", acqus_path, 0))
    if abs(nc) > _MAX_NC:
        raise IngestError(acqus_path, f"NC = {nc}: the scaling 2**NC is beyond any TopSpin data (|NC| <= {_MAX_NC})")
    if ns < 1 or ds < 0:
        raise IngestError(acqus_path, f"NS = {ns}, DS = {ds}: NS must be >= 1 and DS >= 0")
    derived = {"ds": ds, "scan_s": _scan_time_s(acqus, acqus_path), "nc": nc}
    return fields, derived


#: The keys :func:`_meta_fields` and :func:`_check_size` read (``D`` apart: see :func:`_checked_fields`).
_FIELD_KEYS = ("TD", "SW_h", "SFO1", "BF1", "O1", "NS", "DS", "RG", "TE", "NUC1", "PULPROG", "SOLVENT", "GRPDLY",
               "DSPFVS", "DECIM", "NC", "DTYPA", "BYTORDA")
_MISSING = object()
_MISSINGS = (_MISSING,) * len(_FIELD_KEYS)
#: The last (values, file size, fields, derived, size check) of :func:`_checked_fields`, per thread.
_LAST_FIELDS = threading.local()


def _field_values(acqus: dict[str, Any]) -> tuple:
    """The objects :func:`_meta_fields` and :func:`_check_size` read from ``acqus``
    (:data:`_MISSING` for an absent key; of ``D``, the list's type, length and ``D[1]``)."""
    d = acqus.get("D", _MISSING)
    d1 = d[1] if type(d) is list and len(d) > 1 else _MISSING
    return (*map(acqus.get, _FIELD_KEYS, _MISSINGS), type(d), d1)


def _checked_fields(folder: Path, acqus: dict[str, Any], acqus_path: str, data_path: str, size: int
                    ) -> tuple[dict[str, Any], dict[str, Any], tuple[int, bool, bool]]:
    """:func:`_meta_fields` and :func:`_check_size` of a 1D fid of ``size`` bytes.

    Their results depend on nothing but the objects :func:`_field_values` lists and the size
    (paths appear in errors only, and ``path`` in the fields).  When every one of those objects
    *is* the one of the last call that passed (identity, not equality: so the same type, value
    and sign of zero) and the size is the same, that call's results are reused: the
    case of an acqus patched from the last one parsed (:mod:`ingest.readers.bruker_params`)
    where only the date, the path or ``DATE`` differ.  Anything else is checked afresh.
    """
    vals = _field_values(acqus)
    last = getattr(_LAST_FIELDS, "v", None)
    if last is not None and last[1] == size and all(map(operator.is_, vals, last[0])):
        return {**last[2], "path": folder}, dict(last[3]), last[4]
    fields, derived = _meta_fields(folder, acqus, acqus_path)
    checked_size = _check_size(data_path, acqus, acqus_path, size=size)
    _LAST_FIELDS.v = (vals, size, fields, dict(derived), checked_size)
    return fields, derived, checked_size


def _check_size(data_path: str | Path, acqus: dict[str, Any], acqus_path: str | Path, rows: int = 1,
                size: int | None = None) -> tuple[int, bool, int]:
    """Check the binary size against TD, DTYPA, BYTORDA; return (row words, big, isfloat).
    ``size``: of the regular file ``data_path``, when the caller has just stat'ed it."""
    td = int(_num(acqus, "TD", acqus_path, required=True))
    dtypa = int(_num(acqus, "DTYPA", acqus_path, 0))
    if dtypa not in _ITEMSIZE:
        raise IngestError(acqus_path, f"DTYPA = {dtypa} is not supported (0 = int32, 2 = float64)")
    bytorda = int(_num(acqus, "BYTORDA", acqus_path, 0))
    if bytorda not in (0, 1):
        raise IngestError(acqus_path, f"BYTORDA = {bytorda} (must be 0 little or 1 big endian)")
    item = _ITEMSIZE[dtypa]
    name = os.path.basename(data_path)
    if size is None:
        size = regular_size(data_path, name)
    if size == 0:
        raise IngestError(data_path, f"{name} is empty (0 bytes): acquisition not started or still being written")
    if size % item:
        raise IngestError(data_path, f"{name} has {size} bytes, not a whole number of {item}-byte words (DTYPA {dtypa}): "
                                         f"truncated or still being written (acqus TD {td})")
    need = td * item
    padded = math.ceil(need / BLOCK_BYTES) * BLOCK_BYTES
    if rows == 1:
        if size < need:
            raise IngestError(
                data_path,
                f"{name} holds {size // item} points but acqus TD says {td} — truncated or still being written",
            )
        if size > padded:
            raise IngestError(
                data_path,
                f"{name} holds {size // item} points, more than acqus TD {td} allows "
                f"({padded // item} with block padding): wrong acqus or a serial file",
            )
        return size // item, bytorda == 1, dtypa == 2
    # serial: rows padded to blocks (TopSpin) or, leniently, unpadded
    for row_bytes in (padded, need):
        if size == rows * row_bytes:
            return row_bytes // item, bytorda == 1, dtypa == 2
    raise IngestError(
        data_path,
        f"{name} holds {size // item} points but {rows} rows of TD {td} need {rows * padded // item} "
        f"(block-padded) — truncated, still being written, or wrong acqu2s TD",
    )
