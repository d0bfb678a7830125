"""Hostile input: every reader keeps its contract on corrupted files.

Each case copies a real instrument file (``shared_data``) or a file the
package writes (:mod:`ingest.readers` writers) to ``tmp_path``, corrupts it in
one named way, and reads it with :func:`ingest.read`.  The contract
(:mod:`ingest.readers.checks`):

* a failure is an :class:`IngestError` whose message starts with a path inside
  the corrupted copy and names the key or what is wrong (checked per case);
* doubtful content is read with an :class:`IngestWarning` naming the key;
* never a plain exception, never silent garbage (every "refuse" case would
  otherwise return numbers: a 1e-314 spectrum, a 2099 time stamp ...).

A seeded random part flips and cuts bytes in every file of every sample: the
outcome must be a spectrum that passes the plausibility checks, or an
IngestError naming the copy.  The whole module runs in a few seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import ingest
from ingest.readers.checks import check_meta
from ingest.types import IngestError, IngestWarning

T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- samples


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        for sib in src.parent.glob(src.stem + ".*"):
            shutil.copyfile(sib, dst.with_suffix(sib.suffix))
    return dst


def _shared(rel: str) -> Callable[[Path, Path], Path]:
    def make(shared: Path, tmp: Path) -> Path:
        src = shared / rel
        return _copy(src, tmp / "s" / src.name)
    return make


def _written(kind: str) -> Callable[[Path, Path], Path]:
    """Files the package writes (small generators in the writers' own terms)."""
    def make(shared: Path, tmp: Path) -> Path:
        t = np.arange(2048) / 8000.0
        fid = 2e4 * np.exp(2j * np.pi * 700.0 * t - t / 0.05)
        if kind == "bruker":
            from ingest.readers.bruker import write_bruker_1d
            return write_bruker_1d(tmp / "w" / "1", fid, sfo1_hz=400.13e6, sw_hz=8000.0, carrier_ppm=4.7,
                                   start=T0, end=T0 + timedelta(seconds=30))
        if kind == "spinsolve":
            from ingest.readers.spinsolve import write_spinsolve
            return write_spinsolve(tmp / "w" / "s", fid, sfo1_hz=61.49e6, sw_hz=5000.0, carrier_ppm=4.7,
                                   start=T0, end=T0 + timedelta(seconds=30))
        from ingest.readers.bes3t import write_bes3t
        b = np.linspace(0.335, 0.345, 256)
        x = (b - 0.34) / 5e-4
        _, dta = write_bes3t(tmp / "w" / "x", b, -2 * x / (1 + x**2) ** 2, mw_freq_hz=9.4e9, mw_power_W=2e-3,
                             mod_amp_T=1e-4, receiver_gain_db=40.0, conversion_time_s=0.01, n_scans=1,
                             temperature_K=298.0, start=T0, end=T0 + timedelta(seconds=20),
                             byte_order="little" if kind == "bes3t-lit" else "big")
        return dta
    return make


def _csv(shared: Path, tmp: Path) -> Path:
    """A two-column export (generated here: the package writes no CSV)."""
    b = np.linspace(335.0, 345.0, 200)
    x = (b - 340.0) / 0.5
    p = tmp / "c" / "sweep.csv"
    p.parent.mkdir(parents=True)
    p.write_text("field_mT,intensity\n" + "".join(f"{bi:.5f},{-2 * xi / (1 + xi**2) ** 2:.7e}\n"
                                                  for bi, xi in zip(b, x)))
    return p


SAMPLES: dict[str, Callable[[Path, Path], Path]] = {
    "bruker": _shared("nmr/bruker-1h-d2o/1"),
    "spinsolve": _shared("nmr/spinsolve-series/00000"),
    "jcamp": _shared("nmr/spinsolve-jcamp/1D_exp_1_20240725-103717/nmr_fid.dx"),
    "bes3t": _shared("epr/bes3t-BDPA-1DFieldSweep.DTA"),
    "esp": _shared("epr/esp/ESP.spc"),
    "winepr": _shared("epr/esp/winepr.spc"),
    "magnettech": _shared("epr/magnettech/test-magnettech.xml"),
    "csv": _csv,
    "w-bruker": _written("bruker"),
    "w-spinsolve": _written("spinsolve"),
    "w-bes3t": _written("bes3t"),
    "w-bes3t-lit": _written("bes3t-lit"),
}


# --------------------------------------------------------------------------- corruptions


def _param_file(p: Path) -> Path:
    if p.is_dir():
        return p / ("acqus" if (p / "acqus").exists() else "acqu.par")
    if p.suffix.lower() in (".dta", ".dsc"):
        return p.with_suffix(".DSC")
    if p.suffix.lower() in (".spc", ".par"):
        return p.with_suffix(".par")
    return p


def _data_file(p: Path) -> Path:
    if p.is_dir():
        return p / ("fid" if (p / "fid").exists() else "data.1d")
    return p


def sub(pattern: str, repl: str, *, where: Callable[[Path], Path] = _param_file, count: int = 1):
    """Replace a regex in the parameter (or another) file, which must match."""
    def mutate(p: Path) -> None:
        f = where(p)
        text = f.read_bytes().decode("latin-1")
        new, n = re.subn(pattern, repl, text, count=count, flags=re.M)
        assert n, f"{pattern!r} not in {f}"
        f.write_bytes(new.encode("latin-1"))
    return mutate


def truncate(frac: float = 0.5):
    def mutate(p: Path) -> None:
        f = _data_file(p)
        data = f.read_bytes()
        f.write_bytes(data[: int(len(data) * frac)])
    return mutate


def endless(p: Path) -> None:
    f = _data_file(p)
    f.unlink()
    os.symlink("/dev/zero", f)


def flip_order(key: str, a: str, b: str):
    return sub(rf"^({re.escape(key)}\s*=?\s*){a}\b", rf"\g<1>{b}")


def nan_in_data(dtype: str, offset: int = 0, fill: float = np.nan):
    """Overwrite a few stored values with NaN/inf (float formats)."""
    def mutate(p: Path) -> None:
        f = _data_file(p)
        raw = bytearray(f.read_bytes())
        item = np.dtype(dtype).itemsize
        start = (offset if offset >= 0 else len(raw) + offset) + item * 40
        raw[start:start + 3 * item] = np.full(3, fill, dtype=dtype).tobytes()
        f.write_bytes(bytes(raw))
    return mutate


def csv_line(k: int, text: str):
    def mutate(p: Path) -> None:
        lines = p.read_text().splitlines(keepends=True)
        lines[k] = text
        p.write_text("".join(lines))
    return mutate


def jcamp_questions(p: Path) -> None:
    """Some values of the real part become '?' (JCAMP's 'missing value')."""
    lines = p.read_text(encoding="latin-1").splitlines(keepends=True)
    for k in range(60, 900, 3):
        parts = lines[k].split()
        parts[2] = "?"
        lines[k] = " ".join(parts) + "\n"
    p.write_text("".join(lines), encoding="latin-1")


def xml_attr(name: str, value: str, tag: str = "Measurement"):
    return sub(rf'(<{tag}\b[^>]*?\b{name}=")[^"]*(")', rf"\g<1>{value}\g<2>", where=lambda p: p)


def drop_dsc_dates(p: Path) -> None:
    f = p.with_suffix(".DSC")
    text = f.read_text(encoding="latin-1")
    text = re.sub(r"^(DATE|TIME)\s.*\n", "", text, flags=re.M)
    f.write_text(text, encoding="latin-1")


def move_dsc_dates_to_desc(p: Path) -> None:
    f = p.with_suffix(".DSC")
    text = f.read_text(encoding="latin-1")
    dates = "".join(re.findall(r"^(?:DATE|TIME)\s.*\n", text, flags=re.M))
    text = re.sub(r"^(DATE|TIME)\s.*\n", "", text, flags=re.M)
    text = text.replace("XPTS", dates + "XPTS", 1)
    f.write_text(text, encoding="latin-1")


def no_acqu_par(p: Path) -> None:
    (p / "acqu.par").unlink()


#: (sample, corruption name, mutation, expected outcome, words the message must hold)
CASES: list[tuple[str, str, Callable[[Path], None], str, tuple[str, ...]]] = [
    # Bruker TopSpin
    ("bruker", "SW_h nan", sub(r"^##\$SW_h=.*$", "##$SW_h= nan"), "error", ("SW_h",)),
    ("bruker", "SW_h inf", sub(r"^##\$SW_h=.*$", "##$SW_h= inf"), "error", ("SW_h",)),
    ("bruker", "SW_h negative", sub(r"^##\$SW_h=.*$", "##$SW_h= -4807"), "error", ("SW_h",)),
    ("bruker", "SFO1 zero", sub(r"^##\$SFO1=.*$", "##$SFO1= 0"), "error", ("SFO1",)),
    ("bruker", "NC 5000", sub(r"^##\$NC=.*$", "##$NC= 5000"), "error", ("NC",)),
    ("bruker", "DATE 1e20", sub(r"^##\$DATE=.*$", "##$DATE= 1e20"), "error", ("DATE",)),
    ("bruker", "DATE in 2035", sub(r"^##\$DATE=.*$", "##$DATE= 2065000000"), "error", ("DATE", "2035")),
    ("bruker", "DATE 1970", sub(r"^##\$DATE=.*$", "##$DATE= 1000"), "error", ("DATE", "1970")),
    ("bruker", "TD garbled", sub(r"^##\$TD=.*$", "##$TD= many"), "error", ("TD",)),
    ("bruker", "TD larger than fid", sub(r"^##\$TD=.*$", "##$TD= 65536"), "error", ("TD", "truncated")),
    ("bruker", "BYTORDA flipped", flip_order("##$BYTORDA", "1", "0"), "error", ("BYTORDA",)),
    ("bruker", "fid truncated", truncate(0.3), "error", ("TD", "truncated")),
    ("bruker", "fid endless device", endless, "error", ("fid",)),
    ("bruker", "acqus binary", lambda p: (p / "acqus").write_bytes(os.urandom(3000)), "error", ()),
    ("bruker", "audita bad date", lambda p: (p / "audita.txt").write_text(
        "##TITLE= Audit trail\n##AUDIT TRAIL=  $$ (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)\n"
        "(   1,<2005-13-45 99:28:25.000 -0500>,<nmr>,<x>,<go4>,<TOPSPIN 3.6>,\n"
        "      <started at 2005-05-04 11:21:08.000 -0500, POWCHK enabled>)\n##END=\n"), "error",
     ("audita.txt", "byte offset")),
    ("w-bruker", "BYTORDA flipped", flip_order("##$BYTORDA", "0", "1"), "error", ("BYTORDA",)),
    ("w-bruker", "fid truncated", truncate(0.9), "error", ("truncated",)),
    ("w-bruker", "audita start after end", sub(r"started at \d{4}", "started at 2024",
                                                where=lambda p: p / "audita.txt"), "ok", ()),
    # Spinsolve
    ("spinsolve", "startTime garbled", sub(r'^startTime\s*=.*$', 'startTime = "yesterday 25:99"'), "error",
     ("startTime",)),
    ("spinsolve", "startTime 2099", sub(r'^startTime\s*=.*$', 'startTime = "2099-08-05T10:39:36.371"'), "error",
     ("2099",)),
    ("spinsolve", "bandwidth nan", sub(r"^bandwidth\s*=.*$", "bandwidth = nan"), "error", ("bandwidth",)),
    ("spinsolve", "data NaN", nan_in_data("<f4", -4000), "error", ("non-finite",)),
    ("spinsolve", "data inf", nan_in_data("<f4", -4000, np.inf), "error", ("non-finite",)),
    ("spinsolve", "data truncated", truncate(0.6), "error", ("truncated",)),
    ("spinsolve", "data.1d endless device", endless, "error", ("data.1d",)),
    ("w-spinsolve", "start after end", sub(r'^startTime\s*=.*$', 'startTime = "2024-05-01T10:00:00"'), "error",
     ("after",)),
    # JCAMP-DX
    ("jcamp", "'?' values", jcamp_questions, "error", ("'?'",)),
    ("jcamp", "truncated", truncate(0.5), "error", ()),
    ("jcamp", "LONGDATE garbled", sub(r"^##LONGDATE=.*$", "##LONGDATE=not a date", where=lambda p: p), "warn",
     ("LONGDATE",)),
    # BES3T
    ("bes3t", "BSEQ flipped", flip_order("BSEQ", "BIG", "LIT"), "error", ("BSEQ",)),
    ("w-bes3t-lit", "BSEQ flipped", flip_order("BSEQ", "LIT", "BIG"), "error", ("BSEQ",)),
    ("bes3t", "XPTS larger", sub(r"^XPTS\s.*$", "XPTS\t5000"), "error", ("5000", ".DTA")),
    ("bes3t", "XPTS huge", sub(r"^XPTS\s.*$", "XPTS\t900000000000"), "error", (".DTA",)),
    ("bes3t", "DTA endless device", endless, "error", ("DTA", "regular")),
    ("bes3t", "data NaN", nan_in_data(">f8"), "error", ("non-finite",)),
    ("bes3t", "MWFQ nan", sub(r"^MWFQ\s.*$", "MWFQ    nan"), "error", ("microwave frequency",)),
    ("bes3t", "MWFQ negative", sub(r"^MWFQ\s.*$", "MWFQ    -9.8e9"), "error", ("microwave frequency",)),
    ("bes3t", "DATE in 2035", sub(r"^DATE\s.*$", "DATE    12/07/35"), "error", ("2035",)),
    ("bes3t", "no DATE/TIME anywhere", drop_dsc_dates, "warn", ("DATE",)),
    ("bes3t", "DATE/TIME in #DESC", move_dsc_dates_to_desc, "ok-time", ()),
    ("w-bes3t", "data NaN", nan_in_data(">f8"), "error", ("non-finite",)),
    ("w-bes3t", "AcqEnd before AcqStart", sub(r"^AcqStart\s.*$", "AcqStart           2024-05-01T11:00:00+00:00"),
     "error", ("after",)),
    # ESP / WinEPR
    ("winepr", "spc truncated, ANZ declared", truncate(0.5), "error", (".spc", "holds")),
    ("esp", "spc truncated, no point count", truncate(700 / 1024), "warn", ("truncated",)),
    ("winepr", "MF nan", sub(r"(^|\r)MF\s[^\r\n]*", r"\1MF  nan"), "error", ("microwave frequency",)),
    ("esp", "JDA 2099", sub(r"(^|\r)JDA\s[^\r\n]*", r"\1JDA  4-APR-2099"), "error", ("2099",)),
    ("esp", "spc endless device", endless, "error", (".spc",)),
    # Magnettech
    ("magnettech", "MwFreq garbled", xml_attr("MwFreq", "9,4x"), "error", ("MwFreq",)),
    ("magnettech", "Temperature garbled", xml_attr("Temperature", "warm"), "error", ("Temperature",)),
    ("magnettech", "Timestamp garbled", xml_attr("Timestamp", "2020-13-45T99:00"), "error", ("Timestamp",)),
    ("magnettech", "XSlope garbled", xml_attr("XSlope", "fast", tag="Curve"), "error", ("XSlope",)),
    ("magnettech", "XSlope zero", xml_attr("XSlope", "0", tag="Curve"), "error", ("XSlope",)),
    ("magnettech", "Timestamp 2099", xml_attr("Timestamp", "2099-11-18T16:56:04+01:00"), "error", ("2099",)),
    ("magnettech", "truncated", truncate(0.5), "error", ()),
    # CSV
    ("csv", "NaN value", csv_line(50, "345.1,nan\n"), "error", ("non-finite",)),
    ("csv", "inf value", csv_line(50, "345.1,inf\n"), "error", ("non-finite",)),
    ("csv", "garbage line", csv_line(50, "@@@@ garbage\n"), "error", ("non-numeric",)),
    ("csv", "field not monotonic", csv_line(50, "335.0,0.5\n"), "error", ("monotonic",)),
    ("csv", "half a line", lambda p: p.write_bytes(p.read_bytes()[:-9]), "ok", ()),
]


def _ids() -> list[str]:
    return [f"{s}:{n}" for s, n, *_ in CASES]


@pytest.mark.parametrize(("sample", "name", "mutate", "expect", "words"), CASES, ids=_ids())
def test_corruption_keeps_the_contract(shared_data: Path, tmp_path: Path, sample: str, name: str,
                                       mutate: Callable[[Path], None], expect: str, words: tuple[str, ...]) -> None:
    path = SAMPLES[sample](shared_data, tmp_path)
    mutate(path)
    root = str(path.parent if path.is_file() else path)
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spec = ingest.read(path)
        except IngestError as exc:
            msg = str(exc)
            assert expect == "error", f"refused, expected {expect}: {msg}"
            assert msg.startswith(root) or msg.startswith(str(path)), msg
            for w in words:
                assert w in msg, f"{w!r} not in {msg!r}"
            assert time.perf_counter() - t < 5.0
            return
    assert expect != "error", f"{sample} {name}: read without complaint: {spec.meta}"
    check_meta(spec)
    mine = [w for w in caught if issubclass(w.category, IngestWarning)]
    if expect == "warn":
        assert mine, "no IngestWarning"
        text = " ".join(str(w.message) for w in mine)
        for w in words:
            assert w in text, f"{w!r} not in {text!r}"
    else:
        assert not mine, [str(w.message) for w in mine]
    if expect == "ok-time":
        assert spec.meta.end == datetime(2020, 12, 7, 14, 23, 26, tzinfo=timezone.utc)


def test_spinsolve_without_acqu_par_is_skipped_not_dropped(shared_data: Path, tmp_path: Path) -> None:
    from ingest.batch import ingest_folder

    path = SAMPLES["spinsolve"](shared_data, tmp_path)
    no_acqu_par(path)
    res = ingest_folder(path.parent, progress=False, extractor=lambda s: {"kind": s.kind})
    assert len(res.table) == 0
    assert len(res.skipped) == 1 and res.skipped[0][0] == path and "acqu.par" in res.skipped[0][1]


# --------------------------------------------------------------------------- random bytes


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(f for f in path.rglob("*") if f.is_file() and "pdata" not in f.parts)
    return sorted(f for f in path.parent.iterdir() if f.is_file())


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_random_damage_is_an_ingest_error_or_a_plausible_spectrum(shared_data: Path, tmp_path: Path,
                                                                  sample: str) -> None:
    """Seeded byte flips, zeroed blocks and cuts in every file of the sample."""
    rng = np.random.default_rng(sum(map(ord, sample)))
    base = SAMPLES[sample](shared_data, tmp_path / "base")
    outcomes = {"error": 0, "ok": 0}
    for k in range(12):
        case = tmp_path / f"v{k}"
        path = _copy(base, case / base.name)
        f = rng.choice(_files(path))
        raw = bytearray(f.read_bytes())
        if not raw:
            continue
        how = k % 3
        if how == 0:  # flip a few bytes
            for i in rng.integers(0, len(raw), size=4):
                raw[i] ^= int(rng.integers(1, 256))
        elif how == 1:  # zero a block
            i = int(rng.integers(0, len(raw)))
            raw[i:i + 64] = bytes(len(raw[i:i + 64]))
        else:  # cut
            raw = raw[: int(rng.integers(0, len(raw)))]
        f.write_bytes(bytes(raw))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IngestWarning)
            try:
                spec = ingest.read(path)
            except IngestError as exc:
                assert str(exc).startswith(str(case)), str(exc)
                outcomes["error"] += 1
                continue
        check_meta(spec)
        outcomes["ok"] += 1
    assert sum(outcomes.values()) >= 10
