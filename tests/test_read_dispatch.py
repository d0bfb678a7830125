"""identify / read / read_rows: recognition by content, dispatch, and errors."""

from __future__ import annotations

import shutil
import sys
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ingest.readers.nmr_writers import write_bruker_1d, write_bruker_ser, write_spinsolve
from ingest.readers.dispatch import identify, read, read_rows
from ingest.types import EPRMeta, EPRSpectrum, IngestError, NMRSpectrum

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
KW = dict(sfo1_hz=400.13e6, sw_hz=5000.0, carrier_ppm=4.7)

REAL = {
    "nmr/bruker-1h-d2o/1": "bruker",
    "nmr/bruker-1h-d2o/1/fid": "bruker",
    "nmr/bruker-1h-d2o/1/acqus": "bruker",
    "nmr/bruker-array/3": "bruker",
    "nmr/bruker-array/24/fid": "bruker",
    "nmr/spinsolve-series/00000": "spinsolve",
    "nmr/spinsolve-series/00004/data.1d": "spinsolve",
    "nmr/spinsolve-jcamp/1D_exp_1_20240725-103717": "spinsolve",
    "nmr/spinsolve-jcamp/1D_exp_1_20240725-103717/nmr_fid.dx": "jcampdx",
    "epr/bes3t-BDPA-1DFieldSweep.DSC": "bes3t",
    "epr/bes3t-BDPA-1DFieldSweep.DTA": "bes3t",
    "epr/bes3t-BDPA-2DTimeField.DSC": "bes3t",
    "epr/esp/ESP.par": "esp",
    "epr/esp/ESP.spc": "esp",
    "epr/esp/winepr.spc": "esp",
    "epr/esp/EMX-winEPR.par": "esp",
    "epr/magnettech/test-magnettech.xml": "magnettech",
    # not spectra
    "README.md": None,
    "nmr": None,
    "nmr/bruker-array": None,
    "epr/bes3t-BDPA-2DTimeField.YGF": None,
    "epr/bes3t-BDPA-1DFieldSweep.info": None,
    "potentiostat/biologic-cp-rest.mpt": None,
    "nmr/bruker-array/3/pdata/1/procs": None,
}


@pytest.mark.parametrize("rel,fmt", list(REAL.items()))
def test_identify_real_files(shared_data: Path, rel: str, fmt: str | None) -> None:
    assert identify(shared_data / rel) == fmt


def test_identify_magnettech_sweep(shared_data: Path) -> None:
    files = sorted((shared_data / "epr/magnettech/magnettech-amplitude").glob("*.xml"))
    assert len(files) == 10 and all(identify(f) == "magnettech" for f in files)


def test_identify_writer_outputs(tmp_path: Path) -> None:
    fid = np.exp(2j * np.pi * 100 * np.arange(512) / 5000.0)
    assert identify(write_bruker_1d(tmp_path / "b", fid, start=T0, end=T0, **KW)) == "bruker"
    assert identify(write_bruker_ser(tmp_path / "s", np.stack([fid, fid]), start=T0, end=T0, **KW)) == "bruker-ser"
    assert identify(tmp_path / "s" / "ser") == "bruker-ser"
    assert identify(write_spinsolve(tmp_path / "p", fid, start=T0, end=T0, **KW)) == "spinsolve"


def test_identify_does_not_trust_names(shared_data: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    junk = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    # vendor file names holding random bytes
    for name in ("fid", "x.DSC", "x.DTA", "x.spc", "x.dx", "data.1d", "acqus", "x.xml", "x.csv"):
        (tmp_path / name).write_bytes(junk)
        assert identify(tmp_path / name) is None, name
    assert identify(tmp_path) is None  # 'acqus' of random bytes is not a Bruker folder
    # and real contents under meaningless names are still recognised
    odd = tmp_path / "renamed_experiment"
    shutil.copytree(shared_data / "nmr/bruker-1h-d2o/1", odd)
    assert identify(odd) == "bruker"
    dx = tmp_path / "spectrum_export.txt"
    shutil.copy(shared_data / "nmr/spinsolve-jcamp/1D_exp_1_20240725-103717/nmr_fid.dx", dx)
    assert identify(dx) == "jcampdx"
    xml = tmp_path / "measurement.dat"
    shutil.copy(shared_data / "epr/magnettech/test-magnettech.xml", xml)
    assert identify(xml) == "magnettech"


def test_identify_epr_csv(tmp_path: Path) -> None:
    b = np.linspace(3400.0, 3500.0, 200)  # G
    y = -np.gradient(1 / (1 + ((b - 3450) / 3) ** 2))
    p = tmp_path / "export.txt"
    p.write_text("Field [G],Intensity\n" + "\n".join(f"{u:.3f},{v:.6e}" for u, v in zip(b, y)))
    assert identify(p) == "epr-csv"
    mt = tmp_path / "mt.csv"
    mt.write_text("\n".join(f"{u / 10:.4f}\t{v:.6e}" for u, v in zip(b, y)))  # mT, tab, no header
    assert identify(mt) == "epr-csv"
    # a multi-column table (a potentiostat log) is not an EPR export
    log = tmp_path / "log.csv"
    log.write_text("t_s,I_A,E_V,Q_C\n" + "\n".join(f"{i},{1e-3},{0.5},{i * 1e-3}" for i in range(50)))
    assert identify(log) is None
    # two columns, but the first is not a monotonic field
    nf = tmp_path / "nf.csv"
    nf.write_text("\n".join(f"{v:.3f},{u:.3f}" for u, v in zip(b, y)))
    assert identify(nf) is None


# --------------------------------------------------------------------------- #
# read / read_rows
# --------------------------------------------------------------------------- #
def test_read_dispatches_nmr(shared_data: Path) -> None:
    b = read(shared_data / "nmr/bruker-1h-d2o/1")
    assert isinstance(b, NMRSpectrum) and b.meta.vendor == "bruker" and b.meta.td == 16384
    s = read(shared_data / "nmr/spinsolve-series/00002")
    assert s.meta.vendor == "spinsolve" and s.meta.td == 32768
    j = read(shared_data / "nmr/spinsolve-jcamp/1D_exp_1_20240725-103717/nmr_fid.dx")
    assert j.meta.vendor == "jcampdx" and j.meta.td == 16384
    assert [r.meta.path for r in read_rows(shared_data / "nmr/bruker-array/9")] == [shared_data / "nmr/bruker-array/9"]


def test_read_rows_splits_ser(tmp_path: Path) -> None:
    fids = np.stack([np.full(256, i + 1, complex) for i in range(4)])
    folder = write_bruker_ser(tmp_path / "s", fids, start=T0, end=T0 + timedelta(seconds=40), dtype="float64", **KW)
    rows = read_rows(folder)
    assert [r.meta.row for r in rows] == [0, 1, 2, 3]
    assert [r.fid[0].real for r in rows] == [1.0, 2.0, 3.0, 4.0]
    assert [r.meta.start for r in rows] == [T0 + timedelta(seconds=10 * i) for i in range(4)]
    whole = read(folder)  # read() keeps a serial set 2D
    assert whole.fid.shape == (4, 256) and whole.meta.row is None and whole.meta.extra["rows"] == 4
    np.testing.assert_array_equal(whole.fid[:, 0].real, [1, 2, 3, 4])
    assert (whole.meta.start, whole.meta.end) == (T0, T0 + timedelta(seconds=40))


def _recording_epr_module(calls: list) -> types.ModuleType:
    """A module in place of ingest.readers.epr whose readers record which one was called."""
    mod = types.ModuleType("ingest.readers.epr")

    def make(name):
        def reader(path, *a, **k):
            calls.append((name, Path(path).name))
            inten = np.arange(12.0).reshape(3, 4) if name == "read_bes3t" else np.arange(4.0)
            return EPRSpectrum(field_T=np.linspace(0.33, 0.34, 4), intensity=inten,
                               meta=EPRMeta(path=Path(path), format="bes3t"),
                               y_axis=np.array([0.0, 60.0, 120.0]) if inten.ndim == 2 else None, y_unit="s")
        return reader

    for n in ("read_bes3t", "read_esp", "read_magnettech", "read_epr_csv"):
        setattr(mod, n, make(n))

    def split_rows(spec):
        calls.append(("split_rows", spec.intensity.shape))
        return [EPRSpectrum(spec.field_T, spec.intensity[i], spec.meta.with_(row=i)) for i in range(spec.intensity.shape[0])]

    mod.split_rows = split_rows
    return mod


def test_read_dispatches_each_epr_format_to_its_reader(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    monkeypatch.setitem(sys.modules, "ingest.readers.epr", _recording_epr_module(calls))
    read(shared_data / "epr/esp/winepr.spc")
    read(shared_data / "epr/magnettech/test-magnettech.xml")
    rows = read_rows(shared_data / "epr/bes3t-BDPA-2DTimeField.DSC")
    assert calls == [("read_esp", "winepr.spc"), ("read_magnettech", "test-magnettech.xml"),
                     ("read_bes3t", "bes3t-BDPA-2DTimeField.DSC"), ("split_rows", (3, 4))]
    assert [r.meta.row for r in rows] == [0, 1, 2]


def test_read_real_epr_files(shared_data: Path) -> None:
    # data compared with the raw .DTA words (BSEQ BIG, IRFMT D in both .DSC files)
    s = read(shared_data / "epr/bes3t-BDPA-1DFieldSweep.DTA")
    assert isinstance(s, EPRSpectrum) and s.intensity.shape == (3000,)  # XPTS 3000 in the .DSC
    np.testing.assert_array_equal(s.intensity, np.fromfile(shared_data / "epr/bes3t-BDPA-1DFieldSweep.DTA", ">f8"))
    rows = read_rows(shared_data / "epr/bes3t-BDPA-2DTimeField.DSC")
    # X = time (XPTS 2000), Y = field (YPTS 20): one 20-point field sweep per time point
    assert len(rows) == 2000 and all(r.intensity.shape == (20,) for r in rows)
    assert [r.meta.row for r in rows] == list(range(2000))
    raw = np.fromfile(shared_data / "epr/bes3t-BDPA-2DTimeField.DTA", ">f8").reshape(20, 2000)
    np.testing.assert_array_equal(np.stack([r.intensity for r in rows]), raw.T)


# --------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------- #
def test_read_unknown_inputs_name_the_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(rng.integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(IngestError, match=r"not a recognised NMR or EPR format: found a 1000-byte file") as e:
        read(junk)
    assert e.value.path == junk and str(e.value).startswith(str(junk))

    empty = tmp_path / "empty.DSC"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match=r"an empty file \(0 bytes\)"):
        read(empty)

    folder = tmp_path / "stuff"
    folder.mkdir()
    with pytest.raises(IngestError, match="an empty folder"):
        read_rows(folder)
    (folder / "notes.txt").write_text("nothing to see")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(IngestError, match=r"a folder holding \['image.png', 'notes.txt'\]"):
        read(folder)

    with pytest.raises(IngestError, match="no such file or folder"):
        read(tmp_path / "missing")


def test_read_bruker_errors_pass_through(shared_data: Path, tmp_path: Path) -> None:
    dst = tmp_path / "1"
    shutil.copytree(shared_data / "nmr/bruker-1h-d2o/1", dst)
    (dst / "fid").write_bytes((dst / "fid").read_bytes()[:4000])
    assert identify(dst) == "bruker"  # still recognisable ...
    with pytest.raises(IngestError, match="fid holds 1000 points but acqus TD says 32768"):
        read(dst)  # ... but refused with the reason
