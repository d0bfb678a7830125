"""The cheap per-file path of a Bruker expno in ``flowcell watch`` (issue 13): caches that
re-read what changed, a byte-order check that only skips what cannot be flipped, a content
fingerprint that is sha256 of the bytes, and the same answers as before on odd paths.

Expnos are written by :func:`_expno` below, a TopSpin-layout generator that imports nothing
from the package (acqus text + int32 fid + audita.txt)."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.live.completion import (
    acquisition_for,
    check_complete,
    fingerprint,
    quick_signature,
)
from ingest.readers import bruker
from ingest.readers.bruker import _declared_order_evident, read_bruker
from ingest.readers.bruker_params import _jcamp_value, parse_jcamp, read_acqus
from ingest.readers.checks import byte_order_check
from ingest.readers.dispatch import identify, read_rows
from ingest.selection import STANDARD_FOLDERS, is_spin_standard
from ingest.types import IngestError

DATE = 1764000000  # 2025-11-24 UTC


def _acqus(td: int, *, bytorda: int = 0, nc: int = 0, extra: str = "") -> str:
    return (
        "##TITLE= Parameter file, TopSpin\t\tVersion 4.1.4\n##JCAMPDX= 5.0\n##ORIGIN= Bruker BioSpin GmbH\n"
        f"$$ test generator\n##$BF1= 400.13\n##$BYTORDA= {bytorda}\n##$D= (0..3)\n0 1 0 0\n"
        f"##$DATE= {DATE}\n##$DECIM= 1\n##$DSPFVS= 20\n##$DTYPA= 0\n##$GRPDLY= -1\n##$NC= {nc}\n##$NS= 4\n"
        f"##$NUC1= <1H>\n##$O1= 1880.611\n##$SFO1= 400.1318806\n##$SW_h= 8000\n##$TD= {td}\n{extra}##END=\n"
    )


def _audita() -> str:
    return ("##TITLE= Audit trail, TopSpin\n##AUDIT TRAIL=  $$ (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)\n"
            "(   1,<2025-11-24 15:59:30.000 +0000>,<t>,<t>,<go>,<TOPSPIN 4.1.4>,\n"
            "      <created by zg\n\tstarted at 2025-11-24 15:59:00.000 +0000,\n\tdata hash MD5: 128K>)\n##END=\n")


def _expno(folder: Path, n: int = 4096, *, amp: float = 2.0e5, seed: int = 0, big: bool = False) -> np.ndarray:
    """A TopSpin expno of ``n`` complex points: a decaying 500 Hz line plus noise (int32 words)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000.0
    sig = amp * np.exp(2j * np.pi * 500 * t - t / 0.05) + rng.normal(0, 30, n) + 1j * rng.normal(0, 30, n)
    words = np.empty(2 * n, dtype=np.int32)
    words[0::2], words[1::2] = np.rint(sig.real), np.rint(sig.imag)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acqus").write_text(_acqus(2 * n, bytorda=int(big)), encoding="latin-1")
    (folder / "acqu").write_text(_acqus(2 * n, bytorda=int(big)), encoding="latin-1")
    (folder / "fid").write_bytes(words.astype(">i4" if big else "<i4").tobytes())
    (folder / "audita.txt").write_text(_audita(), encoding="latin-1")
    return words[0::2] + 1j * words[1::2]


def _replace_same_stamp(path: Path, text: str) -> None:
    """Rewrite ``path`` under a temporary name renamed over it, with the old mtime: only the
    inode tells the two apart (a copy tool preserving times)."""
    st = path.stat()
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text, encoding="latin-1")
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- caches


def test_reader_returns_the_generated_fid_and_times(tmp_path: Path) -> None:
    truth = _expno(tmp_path / "1")
    spec = read_bruker(tmp_path / "1")
    np.testing.assert_array_equal(spec.fid, truth)
    assert spec.meta.td == 4096 and spec.meta.sw_hz == 8000.0 and spec.meta.group_delay == 0.0
    assert spec.meta.start.isoformat() == "2025-11-24T15:59:00+00:00"
    assert spec.meta.end.isoformat() == "2025-11-24T15:59:30+00:00"


def test_acqus_cache_rereads_a_rewritten_file(tmp_path: Path) -> None:
    _expno(tmp_path / "1", n=4096)
    acqus = tmp_path / "1" / "acqus"
    assert read_acqus(acqus)["TD"] == 8192
    acqus.write_text(_acqus(4096), encoding="latin-1")  # an ordinary rewrite: new mtime (and size)
    assert read_acqus(acqus)["TD"] == 4096
    _replace_same_stamp(acqus, _acqus(6144))  # same size and mtime, a new inode
    assert read_acqus(acqus)["TD"] == 6144
    acqus.unlink()
    with pytest.raises(IngestError, match="parameter file is missing"):
        read_acqus(acqus)


def test_completion_memo_sees_a_new_acqus_and_a_truncated_fid(tmp_path: Path) -> None:
    _expno(tmp_path / "1", n=4096)
    acq = acquisition_for(tmp_path / "1" / "fid")
    assert acq is not None and acq.format == "bruker"
    chk = check_complete(acq, 10.0, settle_s=0.0)
    assert chk.complete and chk.expected_bytes == chk.actual_bytes == 4 * 8192
    # the header now promises more points: same size and mtime, only the inode differs
    _replace_same_stamp(acq.files[0], _acqus(8194))
    chk = check_complete(acq, 10.0, settle_s=0.0)
    assert not chk.complete and chk.expected_bytes == 4 * 8194 and "fid holds 32768 of 32776 bytes" in chk.reason
    _replace_same_stamp(acq.files[0], _acqus(8192))
    assert check_complete(acq, 10.0, settle_s=0.0).complete
    # a truncated fid, after the acqus was parsed and cached: caught by the check and the reader
    fid = tmp_path / "1" / "fid"
    fid.write_bytes(fid.read_bytes()[:-1000])
    chk = check_complete(acq, 10.0, settle_s=0.0)
    assert not chk.complete and chk.may_grow and chk.actual_bytes == 4 * 8192 - 1000
    with pytest.raises(IngestError, match=r"fid.*not a whole number of 4-byte words|truncated"):
        read_bruker(tmp_path / "1")
    fid.write_bytes(fid.read_bytes()[:-24])  # whole words, too few of them
    with pytest.raises(IngestError, match=r"fid holds 7936 points but acqus TD says 8192 .* truncated"):
        read_rows(tmp_path / "1")


def test_missing_and_arriving_files(tmp_path: Path) -> None:
    d = tmp_path / "1"
    _expno(d, n=256)
    (d / "audita.txt").unlink()
    fid_bytes = (d / "fid").read_bytes()
    (d / "fid").unlink()
    acq = acquisition_for(d / "acqus")
    assert acq is not None
    chk = check_complete(acq, 10.0, settle_s=0.0)
    assert not chk.complete and chk.reason == "waiting for fid" and chk.actual_bytes is None
    assert [t[0] for t in quick_signature(acq)] == ["acqus"]
    (d / "fid").write_bytes(fid_bytes)
    chk = check_complete(acq, 10.0, settle_s=0.0, quiet_s=3.0, max_scan_wait_s=30.0)
    # no audita.txt: one scan time (AQ + D1 = 0.032 + 1 s, x1.5) of silence is asked for
    assert chk.complete and chk.reason == "complete"
    chk = check_complete(acq, 0.5, settle_s=0.0, now=(d / "fid").stat().st_mtime + 0.5)
    assert not chk.complete and "1.55 s" in chk.reason
    (d / "audita.txt").write_text(_audita())
    assert [t[0] for t in quick_signature(acq)] == ["acqus", "fid", "audita.txt"]


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_sha256_of_the_bytes_and_sees_one_changed_byte(tmp_path: Path) -> None:
    d = tmp_path / "1"
    _expno(d, n=1024)
    acq = acquisition_for(d)
    fp, files = fingerprint(acq)
    h = hashlib.sha256()
    for name in ("acqus", "fid"):  # independent: the manifest key is sha256 over names + file sha256s
        digest = hashlib.sha256((d / name).read_bytes()).hexdigest()
        h.update(name.encode() + b"\0" + digest.encode())
    assert fp == h.hexdigest()
    assert [f["sha256"] for f in files] == [hashlib.sha256((d / n).read_bytes()).hexdigest() for n in ("acqus", "fid")]
    assert [f["size"] for f in files] == [(d / "acqus").stat().st_size, 8192]
    st = (d / "fid").stat()
    raw = bytearray((d / "fid").read_bytes())
    raw[5000] ^= 1
    (d / "fid").write_bytes(bytes(raw))
    os.utime(d / "fid", ns=(st.st_atime_ns, st.st_mtime_ns))
    fp2, files2 = fingerprint(acq)
    assert fp2 != fp and files2[1]["mtime_ns"] == files[1]["mtime_ns"] and files2[1]["size"] == files[1]["size"]


# --------------------------------------------------------------------------- byte order


@pytest.mark.parametrize("big", [False, True])
def test_byte_order_right_is_read_flipped_is_refused(tmp_path: Path, big: bool) -> None:
    truth = _expno(tmp_path / "1", n=8192, big=big)
    np.testing.assert_array_equal(read_bruker(tmp_path / "1").fid, truth)
    acqus = tmp_path / "1" / "acqus"
    acqus.write_text(_acqus(16384, bytorda=int(not big)), encoding="latin-1")
    with pytest.raises(IngestError, match=r"acqus: BYTORDA \d declares .*byte order flipped"):
        read_bruker(tmp_path / "1")


def test_shortcut_never_skips_a_refusal() -> None:
    """Whenever the shortcut says the declared order is evident, the full check agrees
    (random int32 FIDs from tiny to full-scale, both orders, tails of zeros)."""
    rng = np.random.default_rng(1)
    evident = refused = 0
    for scale, zeros, order in itertools.product([1, 30, 1e3, 1e5, 3e6, 2e7, 1e9], [0.0, 0.3, 0.6, 0.95], "<>"):
        v = np.clip(rng.normal(0, scale, 4000), -2**31, 2**31 - 1).astype(np.int64)
        v[rng.random(v.size) < zeros] = 0
        raw = v.astype(order + "i4").tobytes()
        for dt in (np.dtype(order + "i4"), np.dtype(order + "i4").newbyteorder()):
            try:
                byte_order_check("acqus", "BYTORDA", raw, dt)
                ok = True
            except IngestError:
                ok, refused = False, refused + 1
            if _declared_order_evident(raw, dt):
                evident += 1
                assert ok, (scale, zeros, order, dt)
    assert evident >= 12 and refused >= 12, (evident, refused)  # both branches exercised


def test_shortcut_on_real_fids(shared_data: Path) -> None:
    """Real TopSpin/XWIN-NMR fids (big-endian int32): evident as declared, never flipped."""
    fids = sorted((shared_data / "nmr").rglob("fid"))
    assert fids
    for f in fids:
        a = read_acqus(f.parent / "acqus")
        dt = np.dtype((">" if a["BYTORDA"] == 1 else "<") + "i4")
        raw = f.read_bytes()
        assert _declared_order_evident(raw, dt), f
        assert not _declared_order_evident(raw, dt.newbyteorder()), f


# --------------------------------------------------------------------------- nmrglue only when needed


def test_dsp_table_firmware_matches_nmrglue_and_old_files_use_it(shared_data: Path) -> None:
    import nmrglue as ng

    assert set(ng.fileio.bruker.bruker_dsp_table) == bruker._DSP_TABLE_FIRMWARE
    d = shared_data / "nmr" / "bruker-1h-d2o" / "1"  # XWIN-NMR 2.6: no GRPDLY, DSPFVS 10-13
    a = read_acqus(d / "acqus")
    if a.get("GRPDLY", -1) > 0 or a.get("DSPFVS") not in bruker._DSP_TABLE_FIRMWARE:
        pytest.skip("this file has GRPDLY")
    want = ng.fileio.bruker.bruker_dsp_table[a["DSPFVS"]][a["DECIM"]]
    assert read_bruker(d).meta.group_delay == pytest.approx(want) and want > 0


def test_reading_new_firmware_does_not_import_nmrglue(tmp_path: Path) -> None:
    _expno(tmp_path / "1", n=256)
    code = ("import sys; from ingest.readers.dispatch import read_rows; "
            f"s = read_rows({str(tmp_path / '1')!r})[0]; "
            "assert s.meta.group_delay == 0.0; "
            "from ingest.processing.nmr import group_delay_points; assert group_delay_points(s.meta) == 0.0; "
            "assert 'nmrglue' not in sys.modules, 'nmrglue imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# --------------------------------------------------------------------------- same answers as before


def test_parse_jcamp_arrays_as_one_value_at_a_time() -> None:
    text = ("##TITLE= x\n##$A= (0..5)\n1 2.5 <s> nan 1e3 -7\n##$B= (0..3)\n0 1 2 3\n##$C= (0..2)\n1E5 inf +4\n"
            "##$D= (0..1)\n<> <b>\n##END=\n")
    d = parse_jcamp(text)
    assert d["A"] == [_jcamp_value(t) for t in ["1", "2.5", "<s>", "nan", "1e3", "-7"]] == [1, 2.5, "s", "nan", 1000.0, -7]
    assert d["B"] == [0, 1, 2, 3] and all(type(x) is int for x in d["B"])
    assert d["C"] == ["1E5", float("inf"), 4] and d["D"] == ["", "b"]


def test_identify_bruker_and_not_bruker(tmp_path: Path) -> None:
    _expno(tmp_path / "1", n=64)
    assert identify(tmp_path / "1") == "bruker" and identify(tmp_path / "1" / "fid") == "bruker"
    (tmp_path / "1" / "fid").unlink()
    assert identify(tmp_path / "1") is None  # parameters but no data: no format
    d = tmp_path / "2"
    d.mkdir()
    (d / "acqus").write_text("not a parameter file\n")
    (d / "fid").write_bytes(b"\0" * 64)
    assert identify(d) is None


def _old_is_spin_standard(path, root=None, standards=()) -> bool:  # the pathlib version it replaced
    p = Path(path).resolve()
    for s in standards:
        if s is None:
            continue
        s = Path(s).resolve()
        if p == s or s in p.parents or p.with_suffix("") == s.with_suffix(""):
            return True
    if root is None:
        return False
    try:
        rel = p.relative_to(Path(root).resolve())
    except ValueError:
        return False
    return any(part.lower() in STANDARD_FOLDERS for part in rel.parts[:-1] or rel.parts)


def test_spin_standard_rule_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w" / "Standard" / "x").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "w" / "Standard")
    w = tmp_path / "w"
    paths = [w, w / "a.DTA", w / "Standard", w / "Standard" / "x", w / "Standard" / "x" / "y.dsc",
             tmp_path / "link" / "x", w / "standards", w / "std.DSC", w / "std", w / "foo.", "w/Standard/q",
             tmp_path / "other" / "a", w / "sub" / "standard" / "q.DTA", "w/../w/std.DTA"]
    roots = [None, w, str(w) + "/", tmp_path, tmp_path / "link", "/", "w"]
    stds = [(), (w / "std.DSC",), (w / "Standard" / "x",), (None, w / "foo"), ("w/std.par",)]
    n_true = 0
    for p, r, s in itertools.product(paths, roots, stds):
        want = _old_is_spin_standard(p, r, s)
        assert is_spin_standard(p, r, s) == want, (p, r, s)
        n_true += want
    assert 100 < n_true < len(paths) * len(roots) * len(stds)


def test_acquisition_for_walks_up_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _expno(tmp_path / "data" / "7", n=64)
    (tmp_path / "data" / "7" / "pdata" / "1").mkdir(parents=True)
    (tmp_path / "data" / "7" / "pdata" / "1" / "1r").write_bytes(b"\0" * 8)
    for p, root in [("data/7/pdata/1/1r", "data"), ("data/7/fid", None), ("data/7", "data"), ("data/7/audita.txt", "data")]:
        a = acquisition_for(p, root)
        assert a is not None and a.key == Path("data/7") and a.files == (Path("data/7/acqus"), Path("data/7/fid")), p
    a = acquisition_for("data/7/pdata/1/1r", "data/7/pdata")  # the walk stops at the root
    assert a is not None and a.format == "file" and a.key == Path("data/7/pdata/1/1r")
