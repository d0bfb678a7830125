"""Partial writes: exactly one correct row per acquisition, through completion + store.

Each test replays how an instrument writes an acquisition, step by step, with
pauses longer than the settle and short quiet periods (5 s, the case that
fooled the old 3 s quiet-period rule): after every step the watcher's
decision is replayed — :func:`ingest.live.completion.check_complete` with the
time the files have been unchanged, then (when complete and new) read,
extract and :meth:`Store.append`.  The file times are set on a fake clock, so
no test sleeps.  At the end the store must hold exactly one row, equal to the
row of the finished file read on its own, with its time.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ingest.batch import ingest_folder, process_acquisition
from ingest.live.completion import acquisition_for, check_complete, discover, fingerprint
from ingest.live.store import Store
from ingest.readers.bes3t import write_bes3t
from ingest.readers.bruker import write_bruker_1d
from ingest.readers.spinsolve import write_spinsolve
from ingest.types import EPRSpectrum, IngestError

T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=timezone.utc)
PAUSE_S = 5.0  # between writes: > settle_s (1 s) and > the old quiet_s (3 s), < UNSIZED_QUIET_S


def _row(spec) -> dict:
    """A small extractor: kind, times, number of points and the sum of the data."""
    data = spec.intensity if isinstance(spec, EPRSpectrum) else spec.fid
    return {"kind": spec.kind, "time_mid": spec.meta.mid, "n": int(np.size(data)),
            "sum": float(np.abs(np.asarray(data)).sum())}


class Replay:
    """The watcher's decisions over a scripted sequence of writes, on a fake clock."""

    def __init__(self, tmp: Path) -> None:
        self.store = Store(tmp / "store")
        self.clock = 1.7e9
        self.verdicts: list[str] = []

    def step(self, path: Path, write, pause: float = PAUSE_S) -> None:
        """Do one write (a callable), stamp the touched files at the fake clock,
        let ``pause`` seconds pass, then decide as the watcher would."""
        touched = write() or []
        for f in touched:
            os.utime(f, (self.clock, self.clock))
        self.clock += pause
        acq = acquisition_for(path)
        if acq is None:
            return
        chk = check_complete(acq, pause, now=self.clock)
        self.verdicts.append(chk.reason)
        if not chk.complete:
            return
        fp, files = fingerprint(acq)
        if self.store.seen(fp):
            return
        try:
            rows = process_acquisition(acq, _row)
        except IngestError as e:  # the watcher retries on new bytes, then sets it aside
            self.verdicts.append(f"read failed: {e}")
            return
        self.store.append(rows, str(acq.key), fp, files)

    def finish(self, path: Path) -> None:
        """A long silence after the last write (the watcher's final look)."""
        self.step(path, lambda: [], pause=120.0)


def _check_one(rep: Replay, truth: dict, time_mid: datetime | None = None) -> None:
    df = rep.store.table()
    assert len(df) == 1, f"{len(df)} rows stored: {df[['n', 'sum']].to_dict('records')}; verdicts {rep.verdicts}"
    r = df.iloc[0]
    assert r["n"] == truth["n"]
    assert r["sum"] == pytest.approx(truth["sum"], rel=1e-12)
    if time_mid is not None:
        assert r["time_mid"] == time_mid
    assert not r["time_mid"] is None and str(r["time_mid"]) != "NaT"


def _chunks(data: bytes, n: int) -> list[bytes]:
    k = -(-len(data) // n)
    return [data[i:i + k] for i in range(0, len(data), k)]


def _append(path: Path, chunk: bytes):
    def w():
        with open(path, "ab") as fh:
            fh.write(chunk)
        return [path]
    return w


# --------------------------------------------------------------------------- EPR


def _sweep(n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    b = np.linspace(0.335, 0.345, n)
    x = (b - 0.34) / 5e-4
    return b, -2 * x / (1 + x**2) ** 2


def test_csv_written_line_by_line_gives_one_row(tmp_path: Path) -> None:
    b, y = _sweep()
    text = "field_mT,intensity\n" + "".join(f"{1e3 * bi:.6f},{yi:.8e}\n" for bi, yi in zip(b, y))
    final = tmp_path / "stage.csv"
    final.write_text(text)
    truth = _row(__import__("ingest").read(final))
    target = tmp_path / "epr" / "sweep.csv"
    target.parent.mkdir()
    rep = Replay(tmp_path)
    for chunk in _chunks(text.encode(), 4):  # 4 pieces, cut mid-line
        rep.step(target, _append(target, chunk))
    assert len(rep.store.table()) == 0, "a half-written CSV was stored"
    rep.finish(target)
    assert truth["n"] == 512
    r = rep.store.table().iloc[0]
    assert r["n"] == 512 and r["sum"] == pytest.approx(truth["sum"], rel=1e-12)
    assert len(rep.store.table()) == 1


def test_esp_without_point_count_gives_one_row(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "epr" / "esp"
    par = (src / "ESP.par").read_bytes()
    assert b"ANZ" not in par and b"RES" not in par  # the case: nothing declares the length
    spc = (src / "ESP.spc").read_bytes()
    truth = _row(__import__("ingest").read(src / "ESP.par"))
    d = tmp_path / "epr"
    d.mkdir()
    rep = Replay(tmp_path)
    rep.step(d / "ESP.par", lambda: [shutil.copyfile(src / "ESP.par", d / "ESP.par")])
    for chunk in _chunks(spc, 4):
        rep.step(d / "ESP.spc", _append(d / "ESP.spc", chunk))
    assert len(rep.store.table()) == 0, "a half-written ESP .spc was stored"
    rep.finish(d / "ESP.spc")
    _check_one(rep, truth, time_mid=None)
    assert rep.store.table().iloc[0]["n"] == 1024


def _bes3t(tmp: Path) -> tuple[Path, Path, dict, datetime]:
    b, y = _sweep()
    s = T0
    dsc, dta = write_bes3t(tmp / "stage" / "x", b, y, mw_freq_hz=9.4e9, mw_power_W=2e-3, mod_amp_T=1e-4,
                           receiver_gain_db=40.0, conversion_time_s=0.01, n_scans=1, temperature_K=298.0,
                           start=s, end=s + timedelta(seconds=20))
    return dsc, dta, _row(__import__("ingest").read(dta)), s + timedelta(seconds=10)


def _dsc_layers(text: str) -> list[str]:
    """The descriptor cut before each ``#`` layer header (how Xepr writes it)."""
    cuts = [i for i in range(len(text)) if text.startswith("#", i) and (i == 0 or text[i - 1] == "\n")]
    cuts = cuts[1:] + [len(text)]
    out, prev = [], 0
    for c in cuts:
        out.append(text[prev:c])
        prev = c
    return out


@pytest.mark.parametrize("order", ["DTA-then-DSC", "DSC-then-DTA"])
def test_bes3t_either_order_gives_one_row_with_time(tmp_path: Path, order: str) -> None:
    dsc, dta, truth, mid = _bes3t(tmp_path)
    d = tmp_path / "epr"
    d.mkdir()
    t_dsc, t_dta = d / "x.DSC", d / "x.DTA"
    dsc_steps = [_append(t_dsc, part.encode("latin-1")) for part in _dsc_layers(dsc.read_bytes().decode("latin-1"))]
    dta_steps = [_append(t_dta, c) for c in _chunks(dta.read_bytes(), 3)]
    assert len(dsc_steps) >= 3
    steps = dta_steps + dsc_steps if order == "DTA-then-DSC" else dsc_steps + dta_steps
    rep = Replay(tmp_path)
    for s in steps:
        rep.step(t_dta, s)
    rep.finish(t_dta)
    _check_one(rep, truth, time_mid=mid)
    assert len(rep.store.manifest()) == 1  # never stored half, never superseded


# --------------------------------------------------------------------------- NMR


def _fid(n: int = 4096) -> np.ndarray:
    t = np.arange(n) / 8000.0
    return 1e4 * np.exp(2j * np.pi * 700.0 * t - t / 0.05)


def test_bruker_fid_in_chunks_then_audita_gives_one_row(tmp_path: Path) -> None:
    src = write_bruker_1d(tmp_path / "stage" / "1", _fid(), sfo1_hz=400.13e6, sw_hz=8000.0, carrier_ppm=4.7,
                          start=T0, end=T0 + timedelta(seconds=30), ns=4, d1_s=20.0)
    truth = _row(__import__("ingest").read(src))
    dst = tmp_path / "nmr" / "1"
    dst.mkdir(parents=True)
    rep = Replay(tmp_path)
    rep.step(dst, lambda: [shutil.copyfile(src / n, dst / n) for n in ("acqu", "acqus")])
    # TopSpin rewrites a full-size fid after each scan: the size is there long before the end
    fid = (src / "fid").read_bytes()
    for scan in range(3):
        partial = bytes(len(fid)) if scan == 0 else fid[: len(fid) // 2] + bytes(len(fid) - len(fid) // 2)
        rep.step(dst, lambda p=partial: [(dst / "fid").write_bytes(p), dst / "fid"][1:], pause=PAUSE_S)
    rep.step(dst, lambda: [(dst / "fid").write_bytes(fid), dst / "fid"][1:])
    assert len(rep.store.table()) == 0, "a fid still being acquired was stored"
    rep.step(dst, lambda: [shutil.copyfile(src / "audita.txt", dst / "audita.txt")])
    rep.finish(dst)
    _check_one(rep, truth, time_mid=T0 + timedelta(seconds=15))


def test_spinsolve_in_chunks_gives_one_row(tmp_path: Path) -> None:
    src = write_spinsolve(tmp_path / "stage" / "s", _fid(2048), sfo1_hz=61.49e6, sw_hz=5000.0, carrier_ppm=4.7,
                          start=T0, end=T0 + timedelta(seconds=40))
    truth = _row(__import__("ingest").read(src))
    dst = tmp_path / "nmr" / "s"
    dst.mkdir(parents=True)
    rep = Replay(tmp_path)
    rep.step(dst, lambda: [shutil.copyfile(src / "acqu.par", dst / "acqu.par")])
    for c in _chunks((src / "data.1d").read_bytes(), 4):
        rep.step(dst, _append(dst / "data.1d", c))
    rep.finish(dst)
    _check_one(rep, truth, time_mid=T0 + timedelta(seconds=20))


def test_spinsolve_folder_without_acqu_par_is_listed_as_skipped(tmp_path: Path) -> None:
    src = write_spinsolve(tmp_path / "stage" / "s", _fid(512), sfo1_hz=61.49e6, sw_hz=5000.0, carrier_ppm=4.7,
                          start=T0, end=T0 + timedelta(seconds=40))
    d = tmp_path / "nmr" / "orphan"
    d.mkdir(parents=True)
    shutil.copyfile(src / "data.1d", d / "data.1d")
    assert [a.key for a in discover(tmp_path / "nmr")] == [d]
    res = ingest_folder(tmp_path / "nmr", progress=False, extractor=_row)
    assert len(res.table) == 0
    assert [(p, "acqu.par" in why) for p, why in res.skipped] == [(d, True)]


# --------------------------------------------------------------------------- a stored file that changes


def test_changed_file_supersedes_explicitly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    b, y = _sweep(64)
    f = tmp_path / "epr" / "a.csv"
    f.parent.mkdir()
    f.write_text("".join(f"{1e3 * bi:.6f},{yi:.8e}\n" for bi, yi in zip(b, y)))
    st = Store(tmp_path / "store")
    acq = acquisition_for(f)
    fp1, files1 = fingerprint(acq)
    st.append(process_acquisition(acq, _row), str(acq.key), fp1, files1)
    f.write_text("".join(f"{1e3 * bi:.6f},{2 * yi:.8e}\n" for bi, yi in zip(b, y)))  # rewritten: new version
    fp2, files2 = fingerprint(acq)
    with caplog.at_level("WARNING", logger="ingest.live.store"):
        st.append(process_acquisition(acq, _row), str(acq.key), fp2, files2)
    assert "supersedes" in caplog.text and str(f) in caplog.text
    df, man = st.table(), st.manifest()
    assert len(df) == 1 and df.iloc[0]["sum"] == pytest.approx(2 * np.abs(y).sum(), rel=1e-6)
    assert list(man["fingerprint"]) == [fp1, fp2]
    assert man["superseded_by"].iloc[0] == man["acq_id"].iloc[1] and np.isnan(man["superseded_by"].iloc[1])
    assert len(st) == 1
