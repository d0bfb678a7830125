"""Round trips through the NMR writers: ours and nmrglue's readers read back
the data and the metadata that were written (known truths: the inputs)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import nmrglue as ng
import numpy as np
import pytest

from ingest.readers.bruker import read_acqus, read_bruker, read_bruker_ser
from ingest.readers.nmr_writers import write_bruker_1d, write_bruker_ser, write_spinsolve
from ingest.readers.spinsolve import read_spinsolve
from ingest.types import IngestError

T0 = datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=timezone.utc)
T1 = T0 + timedelta(seconds=41, milliseconds=250)
KW = dict(sfo1_hz=400.1318806e6, sw_hz=8012.820512820513, carrier_ppm=4.7)


def synthetic_fid(n: int = 4096, sw: float = 8012.820512820513, seed: int = 0) -> np.ndarray:
    """Two Lorentzian lines plus noise (arbitrary units)."""
    t = np.arange(n) / sw
    rng = np.random.default_rng(seed)
    f = (1000.0 * np.exp(2j * np.pi * 300.0 * t - t / 0.3) + 250.0 * np.exp(-2j * np.pi * 1200.0 * t - t / 0.1))
    return f + rng.normal(0, 1.0, n) + 1j * rng.normal(0, 1.0, n)


# --------------------------------------------------------------------------- #
# Bruker 1D
# --------------------------------------------------------------------------- #
def test_bruker_1d_int32_round_trip(tmp_path: Path) -> None:
    fid = synthetic_fid()
    folder = write_bruker_1d(tmp_path / "10", fid, start=T0, end=T1, ns=16, ds=4, rg=101.0,
                             temperature_K=300.5, solvent="D2O", pulse_program="zg30", group_delay=67.98,
                             d1_s=2.0, **KW)
    s = read_bruker(folder)
    nc = s.meta.extra["NC"]
    # int32 quantisation: error <= half a step 2**NC per component
    assert np.max(np.abs(s.fid.real - fid.real)) <= 0.5 * 2.0**nc
    assert np.max(np.abs(s.fid.imag - fid.imag)) <= 0.5 * 2.0**nc
    assert 2.0**nc < 1e-8 * np.max(np.abs(fid))  # the scale uses the int32 range
    m = s.meta
    assert m.sfo1_hz == pytest.approx(KW["sfo1_hz"], rel=1e-15)
    assert m.sw_hz == pytest.approx(KW["sw_hz"], rel=1e-15)
    assert m.carrier_ppm == pytest.approx(4.7, abs=1e-12)
    assert m.bf1_hz == pytest.approx(KW["sfo1_hz"] / (1 + 4.7e-6), rel=1e-15)
    assert (m.td, m.ns, m.rg, m.temperature_K) == (4096, 16, 101.0, 300.5)
    assert (m.nucleus, m.solvent, m.pulse_program) == ("1H", "D2O", "zg30")
    assert m.group_delay == pytest.approx(67.98)
    assert (m.start, m.end) == (T0, T1)  # audita.txt, millisecond stamps
    assert m.extra["time_source"] == "audita.txt"
    assert s.processed is None


@pytest.mark.filterwarnings("ignore:The chemical shift referencing")
def test_bruker_1d_nmrglue_reads_it(tmp_path: Path) -> None:
    fid = synthetic_fid(2000)
    folder = write_bruker_1d(tmp_path / "1", fid, start=T0, end=T1, **KW)
    dic, data = ng.bruker.read(str(folder))
    ours = read_bruker(folder)
    assert dic["acqus"]["TD"] == 4000 and dic["acqus"]["BYTORDA"] == 0 and dic["acqus"]["DTYPA"] == 0
    # nmrglue gives the stored integers; ours scales them by 2**NC (exact, a power of two)
    assert data.size == 2048  # padded block read as is by nmrglue
    np.testing.assert_array_equal(data[:2000] * 2.0 ** dic["acqus"]["NC"], ours.fid)
    assert not np.any(data[2000:])
    udic = ng.bruker.guess_udic(dic, data)
    assert udic[0]["sw"] == pytest.approx(KW["sw_hz"], rel=1e-15)
    assert udic[0]["obs"] == pytest.approx(KW["sfo1_hz"] / 1e6, rel=1e-15)
    assert udic[0]["car"] / (KW["sfo1_hz"] / 1e6 / (1 + 4.7e-6)) == pytest.approx(4.7, abs=1e-9)  # O1/BF1 ppm
    # nmrglue's own digital-filter code finds the group delay we wrote
    gd = write_bruker_1d(tmp_path / "2", fid, start=T0, end=T1, group_delay=76.0, **KW)
    dic2, d2 = ng.bruker.read(str(gd))
    assert ng.bruker.remove_digital_filter(dic2, d2).size == d2.size - 78  # floor(76 + 2) points cut


def test_bruker_1d_float64_is_exact(tmp_path: Path) -> None:
    fid = synthetic_fid(1500)
    s = read_bruker(write_bruker_1d(tmp_path / "1", fid, start=T0, end=T1, dtype="float64", **KW))
    np.testing.assert_array_equal(s.fid, fid)
    assert s.meta.extra["DTYPA"] == 2


def test_bruker_1d_without_audita_uses_date_as_end(tmp_path: Path) -> None:
    folder = write_bruker_1d(tmp_path / "1", synthetic_fid(4096), start=T0, end=T1, ns=8, ds=2, d1_s=1.5, **KW)
    (folder / "audita.txt").unlink()
    m = read_bruker(folder).meta
    assert m.end == datetime.fromtimestamp(round(T1.timestamp()), tz=timezone.utc)
    aq = 4096 / KW["sw_hz"]  # TD/(2 SW_h) with TD = 8192 words
    assert (m.end - m.start).total_seconds() == pytest.approx(10 * (aq + 1.5), abs=1e-6)
    assert m.extra["time_source"].startswith("DATE")


def test_bruker_1d_layout_and_write_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # record the order in which files are opened for writing (mtimes alone can tie on coarse clocks)
    opened: list[str] = []
    real_open = io.open

    def spy(file, mode="r", *a, **k):
        if any(c in mode for c in "wax"):
            opened.append(Path(file).name)
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(io, "open", spy)
    folder = write_bruker_1d(tmp_path / "1", synthetic_fid(1000), start=T0, end=T1, **KW)
    monkeypatch.undo()
    assert {p.name for p in folder.iterdir()} == {"pulseprogram", "acqu", "acqus", "fid", "audita.txt"}
    # acqus first, then fid, then audita.txt (TopSpin's order; the watcher relies on it)
    assert opened.index("acqus") < opened.index("fid") < opened.index("audita.txt"), opened
    assert opened[-1] == "audita.txt", opened
    t = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert t["acqus"] <= t["fid"] <= t["audita.txt"]
    assert (folder / "fid").stat().st_size == 8192  # 2000 int32 words padded to 1024-byte blocks
    text = (folder / "acqus").read_text()
    assert text.startswith("##TITLE= Parameter file") and text.rstrip().endswith("##END=")
    assert read_acqus(folder / "acqu")["DATE"] == 0  # acqu holds no status values
    audit = (folder / "audita.txt").read_text()
    assert "started at 2026-03-14 09:26:53.589 +0000" in audit and "<2026-03-14 09:27:34.839 +0000>" in audit


def test_bruker_writer_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="before start"):
        write_bruker_1d(tmp_path / "1", synthetic_fid(100), start=T1, end=T0, **KW)
    with pytest.raises(ValueError, match="1D"):
        write_bruker_1d(tmp_path / "1", np.zeros((2, 3), complex), start=T0, end=T1, **KW)
    with pytest.raises(ValueError, match="dtype"):
        write_bruker_1d(tmp_path / "1", synthetic_fid(100), start=T0, end=T1, dtype="int16", **KW)


# --------------------------------------------------------------------------- #
# Bruker serial
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", ["int32", "float64"])
def test_bruker_ser_round_trip(tmp_path: Path, dtype: str) -> None:
    rows, n = 5, 1000  # 2000 words per row: not a multiple of 256, so rows are padded
    fids = np.stack([synthetic_fid(n, seed=i) * (1 + 0.1 * i) for i in range(rows)])
    end = T0 + timedelta(seconds=500)
    folder = write_bruker_ser(tmp_path / "ser", fids, start=T0, end=end, ns=4, dtype=dtype, **KW)
    item = 4 if dtype == "int32" else 8
    row_bytes = -(-2 * n * item // 1024) * 1024
    assert (folder / "ser").stat().st_size == rows * row_bytes
    specs = read_bruker_ser(folder)
    assert [s.meta.row for s in specs] == list(range(rows))
    nc = specs[0].meta.extra["NC"]
    for i, s in enumerate(specs):
        if dtype == "float64":
            np.testing.assert_array_equal(s.fid, fids[i])
        else:
            assert np.max(np.abs(s.fid - fids[i])) <= 0.5 * 2.0**nc * np.sqrt(2)
        assert s.meta.start == T0 + timedelta(seconds=100 * i)
        assert s.meta.end == T0 + timedelta(seconds=100 * (i + 1))
        assert s.meta.td == n and s.meta.ns == 4
    # nmrglue reads the same ser (shape (rows, padded row))
    dic, data = ng.bruker.read(str(folder))
    assert data.shape[0] == rows
    np.testing.assert_array_equal(data[:, :n] * (2.0**nc if dtype == "int32" else 1.0),
                                  np.stack([s.fid for s in specs]))


def test_bruker_ser_without_audita(tmp_path: Path) -> None:
    fids = np.stack([synthetic_fid(512, seed=i) for i in range(3)])
    end = T0 + timedelta(seconds=60)
    folder = write_bruker_ser(tmp_path / "ser", fids, start=T0, end=end, ns=2, ds=1, d1_s=3.0, **KW)
    (folder / "audita.txt").unlink()
    specs = read_bruker_ser(folder)
    row = 3 * (512 / KW["sw_hz"] + 3.0)  # (NS+DS)(AQ+D1)
    t_end = datetime.fromtimestamp(round(end.timestamp()), tz=timezone.utc)
    assert specs[-1].meta.end == t_end
    for i, s in enumerate(specs):
        assert (s.meta.end - s.meta.start).total_seconds() == pytest.approx(row, abs=1e-6)
        assert (t_end - s.meta.start).total_seconds() == pytest.approx((3 - i) * row, abs=1e-5)


def test_bruker_ser_truncated(tmp_path: Path) -> None:
    fids = np.stack([synthetic_fid(512, seed=i) for i in range(4)])
    folder = write_bruker_ser(tmp_path / "ser", fids, start=T0, end=T1, **KW)
    raw = (folder / "ser").read_bytes()
    (folder / "ser").write_bytes(raw[: 3 * len(raw) // 4 - 100])
    with pytest.raises(IngestError, match="but 4 rows of TD 1024") as err:
        read_bruker_ser(folder)
    assert err.value.path == folder / "ser"
    with pytest.raises(IngestError, match="read_bruker_ser"):
        read_bruker(folder)


# --------------------------------------------------------------------------- #
# Spinsolve
# --------------------------------------------------------------------------- #
def test_spinsolve_round_trip(tmp_path: Path) -> None:
    fid = synthetic_fid(8192, sw=5000.0)
    kw = dict(sfo1_hz=61.4931292366236e6, sw_hz=5000.0, carrier_ppm=4.74)
    folder = write_spinsolve(tmp_path / "00000", fid, start=T0, end=T1, ns=4, rx_gain=28.0,
                             temperature_K=299.65, solvent="D2O", **kw)
    s = read_spinsolve(folder)
    # float32 storage: relative precision 2**-24 of each value
    np.testing.assert_allclose(s.fid, fid, rtol=0, atol=1e-6 * np.max(np.abs(fid)))
    m = s.meta
    assert m.sfo1_hz == pytest.approx(kw["sfo1_hz"], rel=1e-15)
    assert m.sw_hz == pytest.approx(5000.0, rel=1e-15)
    assert m.carrier_ppm == pytest.approx(4.74, abs=1e-9)
    assert (m.td, m.ns, m.rg, m.solvent) == (8192, 4, 28.0, "D2O")
    assert m.temperature_K == pytest.approx(299.65, abs=1e-9)
    assert (m.start, m.end) == (T0, T1)
    # nmrglue reads the same data.1d (stored in Spinsolve's conjugate sense) and axis
    dic, data = ng.spinsolve.read(str(folder), specfile="data.1d")
    np.testing.assert_array_equal(np.conj(data), s.fid)
    assert dic["spectrum"]["xDim"] == 8192
    udic = ng.spinsolve.guess_udic(dic, data)
    assert udic[0]["car"] / udic[0]["obs"] == pytest.approx(4.74, abs=1e-4)  # nmrglue's car/obs (ppm)
    assert udic[0]["sw"] == pytest.approx(5000.0)
    assert (folder / "data.1d").stat().st_size == 32 + 12 * 8192


def test_spinsolve_time_zone_round_trip(tmp_path: Path) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    folder = write_spinsolve(tmp_path / "s", synthetic_fid(256, sw=5000.0), start=T0, end=T1, tz=berlin,
                             sfo1_hz=61.49e6, sw_hz=5000.0, carrier_ppm=4.74)
    assert 'startTime                           = "2026-03-14T10:26:53.589"' in (folder / "acqu.par").read_text()
    assert read_spinsolve(folder, tz=berlin).meta.start == T0
    assert read_spinsolve(folder).meta.start == T0 + timedelta(hours=1)  # read as UTC: 1 h off (CET)


def test_spinsolve_real_layout_matches_shared_file(shared_data: Path, tmp_path: Path) -> None:
    real = shared_data / "nmr/spinsolve-series/00000"
    r = read_spinsolve(real)
    folder = write_spinsolve(tmp_path / "copy", r.fid, sfo1_hz=r.meta.sfo1_hz, sw_hz=r.meta.sw_hz,
                             carrier_ppm=r.meta.carrier_ppm, start=r.meta.start, end=r.meta.end, ns=r.meta.ns)
    # same header and layout as the instrument's file; data identical (float32 in, float32 out),
    # time axis equal to float32 rounding
    a, b = (real / "data.1d").read_bytes(), (folder / "data.1d").read_bytes()
    assert a[:32] == b[:32] and len(a) == len(b)
    fa, fb = np.frombuffer(a[32:], "<f4"), np.frombuffer(b[32:], "<f4")
    n = r.meta.td
    np.testing.assert_allclose(fa[:n], fb[:n], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(fa[n:], fb[n:])
    c = read_spinsolve(folder)
    np.testing.assert_array_equal(c.fid, r.fid)
    assert c.meta.carrier_ppm == pytest.approx(r.meta.carrier_ppm, abs=1e-9)
    assert (c.meta.start, c.meta.end) == (r.meta.start, r.meta.end)
