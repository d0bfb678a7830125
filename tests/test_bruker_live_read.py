"""The live Bruker read and completeness check at less CPU (issue 13): the same numbers as an
independent read, on the real TopSpin files and on generated ones.

The truth here is read with numpy and a regex from the files themselves (TD, DTYPA, BYTORDA, NC
in acqus; int32/float64 words), and the parameters with nmrglue where it is installed; the
generated expnos are written by :func:`_expno`, which imports nothing from the package.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ingest.live.completion import acquisition_for, check_complete, quick_signature
from ingest.readers.bruker import identify_dir, is_params, read_bruker
from ingest.readers.bruker_audita import read_audita
from ingest.readers.bruker_params import read_acqus
from ingest.readers.checks import check_meta
from ingest.readers.dispatch import read_rows
from ingest.types import IngestError

_DERIVED = ("time_source", "nominal_duration_s", "data_file")


def _acqus(td: int, *, dtypa: int = 0, bytorda: int = 0, nc: int = 0) -> str:
    return ("##TITLE= Parameter file, TopSpin\t\tVersion 4.1.4\n##JCAMPDX= 5.0\n$$ test generator\n"
            f"##$BF1= 400.13\n##$BYTORDA= {bytorda}\n##$D= (0..3)\n0 1 0 0\n##$DATE= 1764000000\n"
            f"##$DTYPA= {dtypa}\n##$GRPDLY= 67.98\n##$NC= {nc}\n##$NS= 4\n##$NUC1= <1H>\n##$O1= 1880.6\n"
            f"##$SFO1= 400.1318806\n##$SW_h= 8000\n##$TD= {td}\n##END=\n")


def _audita(zone_start: str = "+0000", zone_end: str = "+0000") -> str:
    return ("##TITLE= Audit trail, TopSpin\n##AUDIT TRAIL=  $$ (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)\n"
            f"(   1,<2025-11-24 15:59:30.000 {zone_end}>,<t>,<t>,<go>,<TOPSPIN 4.1.4>,\n"
            f"      <created by zg\n\tstarted at 2025-11-24 15:59:00.000 {zone_start},\n\tdata hash MD5: 1K>)\n##END=\n")


def _expno(folder: Path, words: np.ndarray, *, dtypa: int = 0, big: bool = False, nc: int = 0,
           pad_to: int | None = None, audita: str | None = None) -> None:
    """An expno holding ``words`` (int32 or float64, TD = their number), block-padded to ``pad_to`` words."""
    folder.mkdir(parents=True, exist_ok=True)
    dt = (">" if big else "<") + ("f8" if dtypa == 2 else "i4")
    stored = np.zeros(pad_to or words.size, dtype=dt)
    stored[: words.size] = words
    (folder / "acqus").write_text(_acqus(words.size, dtypa=dtypa, bytorda=int(big), nc=nc), encoding="latin-1")
    (folder / "fid").write_bytes(stored.tobytes())
    (folder / "audita.txt").write_text(audita or _audita(), encoding="latin-1")


def _truth(folder: Path) -> np.ndarray:
    """The FID from the files alone: TD words of DTYPA's type in BYTORDA's order, pairs, times 2**NC."""
    text = (folder / "acqus").read_text(encoding="latin-1")
    key = {k: float(v) for k, v in re.findall(r"^##\$(TD|DTYPA|BYTORDA|NC)= *(\S+)", text, re.MULTILINE)}
    dt = (">" if key.get("BYTORDA", 0) == 1 else "<") + ("f8" if key.get("DTYPA", 0) == 2 else "i4")
    w = np.fromfile(folder / "fid", dtype=dt)[: int(key["TD"]) // 2 * 2].astype(np.float64)
    if key.get("DTYPA", 0) != 2:
        w = w * 2.0 ** key.get("NC", 0)
    out = np.empty(w.size // 2, dtype=np.complex128)
    out.real, out.imag = w[0::2], w[1::2]
    return out


def _generated(root: Path) -> list[Path]:
    rng = np.random.default_rng(7)
    ints = np.rint(rng.normal(0, 3e4, 2048)).astype(np.int64)
    cases = {
        "plain": {"words": ints},
        "odd_td_padded": {"words": ints[:1001], "pad_to": 1024},
        "nc": {"words": ints, "nc": -13},
        "big": {"words": ints, "big": True, "nc": 3},
        "float_big": {"words": rng.normal(0, 1e4, 512), "dtypa": 2, "big": True},
    }
    for name, kw in cases.items():
        _expno(root / name, **kw)
    return [root / n for n in cases]


def _shared_expnos(shared: Path) -> list[Path]:
    return sorted(p.parent for p in (shared / "nmr").rglob("acqus") if (p.parent / "fid").is_file())


def test_fid_and_parameters_equal_an_independent_read(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folders = _generated(tmp_path)
    try:
        folders += _shared_expnos(request.getfixturevalue("shared_data"))
    except pytest.skip.Exception:
        pass
    ng = None
    try:
        import nmrglue as ng  # the parameters as nmrglue parses them, where it is installed
    except ImportError:
        pass
    for folder in folders:
        for form in (folder, str(folder), folder / "fid"):
            spec = read_bruker(form)
            truth = _truth(folder)
            assert spec.fid.dtype == np.complex128
            assert spec.fid.tobytes() == truth.tobytes(), folder  # bit for bit
            assert spec.meta.path == folder and spec.meta.extra["data_file"] == str(folder / "fid")
        rows = read_rows(folder)
        assert len(rows) == 1 and rows[0].fid.tobytes() == spec.fid.tobytes()
        if ng is not None:
            params = {k: v for k, v in spec.meta.extra.items() if k not in _DERIVED}
            assert params == ng.fileio.bruker.read_jcamp(str(folder / "acqus")), folder


def test_fid_finiteness_checked_after_the_read_and_float_nan_refused(tmp_path: Path) -> None:
    _expno(tmp_path / "i", np.arange(1, 257))
    spec = read_bruker(tmp_path / "i")
    check_meta(spec)  # finite
    spec.fid[3] = np.nan  # a later check looks at the numbers
    with pytest.raises(IngestError, match=r"FID holds 1 non-finite value\(s\) \(NaN/inf\), the first at point 3"):
        check_meta(spec)
    words = np.ones(256)
    words[101] = np.inf
    _expno(tmp_path / "f", words, dtypa=2)
    with pytest.raises(IngestError, match=r"FID holds 1 non-finite value\(s\) \(NaN/inf\), the first at point 50"):
        read_bruker(tmp_path / "f")


def test_truncated_fid_error_unchanged(tmp_path: Path) -> None:
    _expno(tmp_path / "t", np.arange(4096))
    with open(tmp_path / "t" / "fid", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(IngestError, match="fid holds 250 points but acqus TD says 4096 — truncated or still being written"):
        read_bruker(tmp_path / "t")


def test_is_params_sees_a_rewrite_after_the_cached_parse(tmp_path: Path) -> None:
    d = tmp_path / "e"
    _expno(d, np.arange(64))
    read_acqus(d / "acqus")  # parsed and cached, as the completeness check does
    assert is_params(d / "acqus") and identify_dir(d) == "bruker"
    st = (d / "acqus").stat()
    tmp = d / "acqus.new"
    tmp.write_bytes(b"\x00" * st.st_size)  # same size, same mtime: another inode
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, d / "acqus")
    assert not is_params(d / "acqus") and identify_dir(d) is None


def test_expno_acquisition_follows_its_layout_and_the_walk_matches_the_path_walk(tmp_path: Path) -> None:
    root = tmp_path / "watched"
    d = root / "run" / "5"
    _expno(d, np.arange(64))
    (d / "pdata" / "1").mkdir(parents=True)
    (d / "pdata" / "1" / "1r").write_bytes(b"\0" * 8)
    for p in (d / "fid", d / "acqus", d, d / "pdata" / "1" / "1r", d / "audita.txt"):
        a = acquisition_for(p, root)
        assert a is not None and a.format == "bruker" and a.key == d and a.files == (d / "acqus", d / "fid")
        assert a.read_path == d and a.data_file == d / "fid"
    assert [t[0] for t in quick_signature(a)] == ["acqus", "fid", "audita.txt"]
    assert check_complete(a, 0.0, settle_s=0.0, now=1e10).complete
    assert acquisition_for(d / "fid", d / "pdata") is None  # the walk stops at the root
    cwd = os.getcwd()
    try:  # a relative path takes the Path walk: the same acquisition
        os.chdir(tmp_path)
        rel = acquisition_for(Path("watched/run/5/fid"), Path("watched"))
    finally:
        os.chdir(cwd)
    assert rel is not None and rel.format == "bruker" and rel.key == Path("watched/run/5")
    os.remove(d / "fid")
    (d / "ser").write_bytes(b"\0" * 1024)
    a = acquisition_for(d / "ser", root)
    assert a.format == "bruker-ser" and a.files == (d / "acqus", d / "ser")
    (d / "acqu2s").write_text(_acqus(1), encoding="latin-1")
    a = acquisition_for(d / "ser", root)
    assert a.format == "bruker-ser" and a.files == (d / "acqus", d / "acqu2s", d / "ser") and a.data_file == d / "ser"


@pytest.mark.parametrize("zs, ze, start, end", [
    ("+0000", "+0000", (15, 59, 0), (15, 59, 30)),
    ("-0000", "+0000", (15, 59, 0), (15, 59, 30)),
    ("+0200", "+0200", (13, 59, 0), (13, 59, 30)),
    ("-500", "+0000", (20, 59, 0), (15, 59, 30)),
])
def test_audita_times_and_zones(tmp_path: Path, zs: str, ze: str, start: tuple, end: tuple) -> None:
    (tmp_path / "audita.txt").write_text(_audita(zs, ze), encoding="latin-1")
    s, e = read_audita(tmp_path / "audita.txt")
    day = datetime(2025, 11, 24, tzinfo=timezone.utc)
    assert s == day + timedelta(hours=start[0], minutes=start[1]) and s.tzinfo == timezone.utc
    assert e == day + timedelta(hours=end[0], minutes=end[1], seconds=end[2]) and e.tzinfo == timezone.utc
    assert read_audita(tmp_path / "missing.txt") == (None, None)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(IngestError, match="audita.txt is empty"):
        read_audita(tmp_path / "empty.txt")
