"""NMR readers against the real instrument files in shared/data (README there).

Expected values are copied from the vendors' own parameter files (acqus,
procs, acqu.par, nmr_fid.dx), not from our readers.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nmrglue as ng
import numpy as np
import pytest

from ingest.readers.bruker import read_audita, read_bruker
from ingest.readers.jcampdx import read_jcampdx
from ingest.readers.spinsolve import read_spinsolve
from ingest.types import IngestError

ARRAY_EXPNOS = [3, 6, 9, 12, 15, 18, 21, 24]
# DATE (epoch s) in each bruker-array acqus, from the files
ARRAY_DATES = {3: 1004607142, 6: 1004609566, 9: 1004611987, 12: 1004614411,
               15: 1004616835, 18: 1004619259, 21: 1004621684, 24: 1004624108}
SERIES = ["00000", "00001", "00002", "00003", "00004"]
# startTime / CurrentTime of each spinsolve-series acqu.par
SERIES_TIMES = {
    "00000": ("2025-08-05T10:39:36.371", "2025-08-05T10:39:44.693"),
    "00001": ("2025-08-05T10:40:06.379", "2025-08-05T10:40:14.544"),
    "00002": ("2025-08-05T10:40:36.397", "2025-08-05T10:40:44.609"),
    "00003": ("2025-08-05T10:41:06.503", "2025-08-05T10:41:14.781"),
    "00004": ("2025-08-05T10:41:36.471", "2025-08-05T10:41:44.728"),
}
JCAMP = ["1D_exp_1_20240725-103717", "1D_exp_1_20240725-104133", "1D_exp_1_20240725-104548"]


# the layout of a TopSpin 2.1 audit trail (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)
TOPSPIN_AUDITA = (
    "##TITLE= Audit trail, TOPSPIN\t\tVersion 2.1\n##JCAMPDX= 5.01\n##ORIGIN= Bruker BioSpin GmbH\n"
    "##AUDIT TRAIL=  $$ (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)\n"
    "(   1,<2010-04-11 16:24:42.183 +0200>,<nmr>,<av600>,<go>,<TOPSPIN 2.1>,\n"
    "      <created by zg\n\tstarted at 2010-04-11 14:38:22.760 +0200,\n"
    "\tPOWCHK disabled, PULCHK disabled,\n       data hash MD5: 256K\n"
    "       7E F3 7B CE 3F A2 B5 8D AD F6 6E 3E B0 CE BB 79>)\n"
    "(   2,<2010-04-12 10:00:00.000 -500>,<nmr>,<av600>,<proc1d>,<TOPSPIN 2.1>,\n      <efp>)\n##END=\n"
)


def _tallest_ppm(s) -> float:
    """ppm of the tallest |line| with the package convention shared by all readers:
    S = fftshift(fft(fid))[::-1] and ppm[j] = carrier + (n/2 - 1 - j) sw/n / sfo1
    (ingest.processing.nmr.fft / ppm_axis)."""
    n = s.fid.size
    spec = np.abs(np.fft.fftshift(np.fft.fft(s.fid))[::-1])
    ppm = s.meta.carrier_ppm + (n / 2 - 1 - np.arange(n)) * s.meta.sw_hz / n / (s.meta.sfo1_hz * 1e-6)
    return float(ppm[np.argmax(spec)])


def _utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- #
# Bruker
# --------------------------------------------------------------------------- #
def test_bruker_1h_d2o_metadata(shared_data: Path) -> None:
    folder = shared_data / "nmr/bruker-1h-d2o/1"
    s = read_bruker(folder)
    m = s.meta
    assert m.vendor == "bruker" and m.nucleus == "1H"
    assert m.sfo1_hz == pytest.approx(400.131880611e6, rel=1e-15)
    assert m.bf1_hz == pytest.approx(400.13e6, rel=1e-15)
    assert round(m.sfo1_hz / 1e4) / 100 == 400.13  # 400.13 MHz
    assert m.sw_hz == pytest.approx(4807.69230769231, rel=1e-14)
    assert m.carrier_ppm == pytest.approx(1880.611 / 400.13, rel=1e-14)  # O1/BF1 = 4.700 ppm
    assert m.td == 16384  # TD 32768 words = 16384 complex points
    assert m.extra["TD"] == 32768
    assert (m.ns, m.rg, m.temperature_K) == (1, 8.0, 306.0)
    assert (m.pulse_program, m.solvent) == ("zg", "D2O")
    # DSPFVS 12, DECIM 32 -> nmrglue's table, 72.125 points
    assert m.group_delay == pytest.approx(72.125)
    # DATE = 1115224102 taken as the end; start = end - (NS+DS)(AQ+D1), AQ = TD/(2 SW_h), D1 = 5 s
    assert m.end == datetime(2005, 5, 4, 16, 28, 22, tzinfo=timezone.utc)
    dur = 1 * (32768 / (2 * 4807.69230769231) + 5.0)
    assert (m.end - m.start).total_seconds() == pytest.approx(dur, abs=1e-6)
    assert m.start.tzinfo is not None and m.extra["time_source"].startswith("DATE")
    # no pdata/1/1r in this folder -> no processed spectrum
    assert s.processed is None and s.processed_ppm is None
    # data: nmrglue's raw words (big endian int32) times 2**NC (NC = -2)
    _, raw = ng.bruker.read(str(folder))
    assert s.fid.shape == (16384,) and s.fid.dtype == np.complex128
    np.testing.assert_array_equal(s.fid, raw[:16384] * 0.25)


def test_bruker_fid_file_path_is_accepted(shared_data: Path) -> None:
    a = read_bruker(shared_data / "nmr/bruker-1h-d2o/1")
    b = read_bruker(shared_data / "nmr/bruker-1h-d2o/1/fid")
    np.testing.assert_array_equal(a.fid, b.fid)
    assert a.meta == b.meta


@pytest.mark.parametrize("expno", ARRAY_EXPNOS)
def test_bruker_array_each_expno(shared_data: Path, expno: int) -> None:
    folder = shared_data / f"nmr/bruker-array/{expno}"
    s = read_bruker(folder)
    m = s.meta
    assert m.sfo1_hz == pytest.approx(600.132824e6, rel=1e-15)
    assert m.bf1_hz == pytest.approx(600.13e6, rel=1e-15)
    assert m.sw_hz == pytest.approx(6009.61538461538, rel=1e-14)
    assert m.td == 6009  # TD 12018; the fid file is block-padded to 12032 words
    assert s.fid.shape == (6009,)
    assert (m.ns, m.rg, m.temperature_K) == (160, 8192.0, 300.0)
    assert (m.pulse_program, m.solvent) == ("zgprse.bb", "H2O")
    assert m.end == datetime.fromtimestamp(ARRAY_DATES[expno], tz=timezone.utc)
    # (NS + DS)(AQ + D1) = 162 (12018/(2*6009.615...) + 2 s) = 162 * 2.99991... s
    dur = 162 * (12018 / (2 * 6009.61538461538) + 2.0)
    assert (m.end - m.start).total_seconds() == pytest.approx(dur, abs=1e-6)
    # processed 1r: SI 16384, axis from procs OFFSET 9.685016, SW_p 6009.6153846154 Hz, SF 600.130016539271 MHz
    assert s.processed.shape == (16384,) and s.processed_ppm.shape == (16384,)
    assert s.processed_ppm[0] == pytest.approx(9.685016, abs=1e-12)
    step = 6009.6153846154 / 600.130016539271 / 16384
    assert np.diff(s.processed_ppm) == pytest.approx(-step, rel=1e-9)
    # the vendor's processed spectrum and our metadata agree on where the tallest
    # line is (0.03 ppm = TopSpin's SR: SF - BF1 = 16.5 Hz)
    tall = _tallest_ppm(s)
    assert tall == pytest.approx(s.processed_ppm[np.argmax(s.processed)], abs=0.03 + 0.005)
    assert tall == pytest.approx(1.32, abs=0.01)


def test_bruker_array_time_ordering(shared_data: Path) -> None:
    specs = [read_bruker(shared_data / f"nmr/bruker-array/{e}") for e in ARRAY_EXPNOS]
    starts = [s.meta.start for s in specs]
    assert starts == sorted(starts)
    gaps = np.diff([t.timestamp() for t in starts])
    # same duration for each, so start gaps = DATE gaps (2421-2425 s, ~40 min)
    np.testing.assert_allclose(gaps, np.diff([ARRAY_DATES[e] for e in ARRAY_EXPNOS]), atol=1e-6)
    assert np.all((gaps > 2420) & (gaps < 2426))
    assert (specs[-1].meta.end - specs[0].meta.start) > timedelta(hours=4.5)


def test_read_audita_parses_topspin_stamps(tmp_path: Path) -> None:
    (tmp_path / "audita.txt").write_text(TOPSPIN_AUDITA)
    start, end = read_audita(tmp_path / "audita.txt")
    assert start == datetime(2010, 4, 11, 12, 38, 22, 760000, tzinfo=timezone.utc)
    assert end == datetime(2010, 4, 11, 14, 24, 42, 183000, tzinfo=timezone.utc)


def test_audita_wins_over_date(d2o_copy: Path) -> None:
    # the real folder's DATE says 2005-05-04 16:28:22 (end); an audita.txt beside it rules
    (d2o_copy / "audita.txt").write_text(TOPSPIN_AUDITA)
    m = read_bruker(d2o_copy).meta
    assert m.start == datetime(2010, 4, 11, 12, 38, 22, 760000, tzinfo=timezone.utc)
    assert m.end == datetime(2010, 4, 11, 14, 24, 42, 183000, tzinfo=timezone.utc)
    assert m.extra["time_source"] == "audita.txt"


# --------------------------------------------------------------------------- #
# Bruker errors
# --------------------------------------------------------------------------- #
@pytest.fixture
def d2o_copy(shared_data: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "1"
    shutil.copytree(shared_data / "nmr/bruker-1h-d2o/1", dst)
    return dst


def test_truncated_fid_is_named(d2o_copy: Path) -> None:
    fid = d2o_copy / "fid"
    fid.write_bytes(fid.read_bytes()[: 12000 * 4])
    with pytest.raises(IngestError) as err:
        read_bruker(d2o_copy)
    assert err.value.path == fid
    assert "fid holds 12000 points but acqus TD says 32768" in str(err.value)
    assert "truncated or still being written" in str(err.value)


def test_empty_fid(d2o_copy: Path) -> None:
    (d2o_copy / "fid").write_bytes(b"")
    with pytest.raises(IngestError, match=r"fid: fid is empty \(0 bytes\)"):
        read_bruker(d2o_copy)


def test_fid_longer_than_td_allows(d2o_copy: Path) -> None:
    fid = d2o_copy / "fid"
    fid.write_bytes(fid.read_bytes() + bytes(2048))
    with pytest.raises(IngestError, match="more than acqus TD 32768"):
        read_bruker(d2o_copy)


def test_acqus_missing_td(d2o_copy: Path) -> None:
    acqus = d2o_copy / "acqus"
    acqus.write_text("".join(ln for ln in acqus.read_text(encoding="latin-1").splitlines(True)
                             if not ln.startswith("##$TD=")))
    with pytest.raises(IngestError) as err:
        read_bruker(d2o_copy)
    assert err.value.path == acqus and "acqus has no TD" in str(err.value)


def test_acqus_random_bytes(d2o_copy: Path) -> None:
    rng = np.random.default_rng(1)
    (d2o_copy / "acqus").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(IngestError, match="acqus"):
        read_bruker(d2o_copy)


def test_bad_dtypa(d2o_copy: Path) -> None:
    acqus = d2o_copy / "acqus"
    acqus.write_text(acqus.read_text(encoding="latin-1").replace("##$DTYPA= 0", "##$DTYPA= 7"))
    with pytest.raises(IngestError, match="DTYPA = 7"):
        read_bruker(d2o_copy)


def test_folder_without_fid(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(IngestError, match=r"no Bruker 'fid' file here \(found: \['notes.txt'\]\)"):
        read_bruker(tmp_path)


# --------------------------------------------------------------------------- #
# Spinsolve
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", SERIES)
def test_spinsolve_series(shared_data: Path, name: str) -> None:
    s = read_spinsolve(shared_data / "nmr/spinsolve-series" / name)
    m = s.meta
    assert m.vendor == "spinsolve" and m.nucleus == "1H"
    assert m.sfo1_hz == pytest.approx(61.4931292366236e6, rel=1e-15)  # b1Freq, 61.49 MHz
    assert m.sw_hz == 5000.0  # bandwidth 5 kHz (dwellTime 200 us)
    # carrier offset lowestFrequency + sw/2 = 291.2565... Hz above bf1
    car = -2208.74345305485 + 2500.0
    assert m.sfo1_hz - m.bf1_hz == pytest.approx(car, abs=1e-6)
    assert m.carrier_ppm == pytest.approx(car / m.bf1_hz * 1e6, rel=1e-12)
    assert (m.td, m.ns, m.rg) == (32768, 1, 25.0)
    assert s.fid.shape == (32768,)
    assert m.solvent == "Dichloromethane"
    t0, t1 = SERIES_TIMES[name]
    assert (m.start, m.end) == (_utc(t0), _utc(t1))
    assert m.temperature_K == pytest.approx(26.5 + 273.15, abs=0.01)  # magnet temperature
    assert s.processed is None
    # the FID is nmrglue's data.1d, conjugated to the Bruker frequency sense
    _, data = ng.spinsolve.read(str(shared_data / "nmr/spinsolve-series" / name), specfile="data.1d")
    np.testing.assert_array_equal(s.fid, np.conj(data))
    # ... which puts the tallest line, the CH2Cl2 solvent, at its known 5.32 ppm
    assert _tallest_ppm(s) == pytest.approx(5.32, abs=0.03)


def test_spinsolve_series_is_ordered_30_s_apart(shared_data: Path) -> None:
    starts = [read_spinsolve(shared_data / "nmr/spinsolve-series" / n).meta.start for n in SERIES]
    gaps = np.diff([t.timestamp() for t in starts])
    np.testing.assert_allclose(gaps, 30.0, atol=0.2)  # Options: IntervalTime(30)


def test_spinsolve_time_zone_override(shared_data: Path) -> None:
    folder = shared_data / "nmr/spinsolve-series/00000"
    m = read_spinsolve(folder, tz="Europe/Berlin").meta  # CEST = UTC+2 in August
    assert m.start == datetime(2025, 8, 5, 8, 39, 36, 371000, tzinfo=timezone.utc)
    m2 = read_spinsolve(folder, tz=timezone(timedelta(hours=-5))).meta
    assert m2.end == datetime(2025, 8, 5, 15, 39, 44, 693000, tzinfo=timezone.utc)


@pytest.mark.parametrize("name", JCAMP)
def test_spinsolve_jcamp_folders(shared_data: Path, name: str) -> None:
    s = read_spinsolve(shared_data / "nmr/spinsolve-jcamp" / name)
    m = s.meta
    assert round(m.sfo1_hz / 1e4) / 100 == 80.49  # 80 MHz Spinsolve ULTRA
    assert m.sw_hz == 2500.0 and m.td == 16384 and m.ns == 8
    assert m.carrier_ppm == pytest.approx(4.74, abs=0.002)
    # start/end: 8 scans + 2 dummies at repTime 15 s = 150 s (file: 150.3 s)
    assert (m.end - m.start).total_seconds() == pytest.approx(150.3, abs=0.1)
    # processed spectrum.1d: 32768 points (zero-filled x2), ppm axis centred on the carrier
    assert s.processed.shape == (32768,) and s.processed_ppm.shape == (32768,)
    assert (s.processed_ppm[0] + s.processed_ppm[-1]) / 2 == pytest.approx(m.carrier_ppm, abs=0.01)
    span = (s.processed_ppm[-1] - s.processed_ppm[0]) * 32768 / 32767
    assert span == pytest.approx(m.sw_hz / m.bf1_hz * 1e6, rel=1e-4)
    # our FID, transformed with the package convention, puts the tallest line
    # (DMSO, ~2.7 ppm) where the vendor's own spectrum.1d has it
    proc_peak = s.processed_ppm[np.argmax(np.abs(s.processed))]
    assert _tallest_ppm(s) == pytest.approx(proc_peak, abs=0.01)
    assert proc_peak == pytest.approx(2.71, abs=0.05)


def test_spinsolve_jcamp_start_times(shared_data: Path) -> None:
    got = [read_spinsolve(shared_data / "nmr/spinsolve-jcamp" / n).meta.start for n in JCAMP]
    assert got == [_utc("2024-07-25T10:37:33.711"), _utc("2024-07-25T10:41:49.472"), _utc("2024-07-25T10:46:05.152")]


def test_spinsolve_truncated_data(shared_data: Path, tmp_path: Path) -> None:
    dst = tmp_path / "s"
    shutil.copytree(shared_data / "nmr/spinsolve-series/00000", dst)
    raw = (dst / "data.1d").read_bytes()
    (dst / "data.1d").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IngestError, match="truncated or still being written") as err:
        read_spinsolve(dst)
    assert err.value.path == dst / "data.1d"


def test_spinsolve_wrong_magic(shared_data: Path, tmp_path: Path) -> None:
    dst = tmp_path / "s"
    shutil.copytree(shared_data / "nmr/spinsolve-series/00000", dst)
    raw = bytearray((dst / "data.1d").read_bytes())
    raw[:4] = b"XXXX"
    (dst / "data.1d").write_bytes(bytes(raw))
    with pytest.raises(IngestError, match="Spinsolve header"):
        read_spinsolve(dst)


# --------------------------------------------------------------------------- #
# JCAMP-DX
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", JCAMP)
def test_jcampdx_fid_equals_data_1d(shared_data: Path, name: str) -> None:
    folder = shared_data / "nmr/spinsolve-jcamp" / name
    j = read_jcampdx(folder / "nmr_fid.dx")
    s = read_spinsolve(folder)
    assert j.meta.vendor == "jcampdx" and j.meta.nucleus == "1H"
    assert j.fid.shape == s.fid.shape == (16384,)
    # .dx prints 6 decimals; data.1d is float32: agree to 1e-6 of the largest point
    scale = np.max(np.abs(s.fid))
    np.testing.assert_allclose(j.fid, s.fid, rtol=0, atol=1e-6 * scale)
    # same spectrometer parameters by two routes ($BF1/$SF/$SW vs b1Freq/lowestFrequency/bandwidth)
    assert j.meta.sfo1_hz == s.meta.sfo1_hz
    assert j.meta.bf1_hz == pytest.approx(s.meta.bf1_hz, abs=1e-3)  # $SF has 13 digits
    assert j.meta.carrier_ppm == pytest.approx(s.meta.carrier_ppm, abs=1e-7)
    assert j.meta.sw_hz == pytest.approx(2500.0, rel=1e-6)  # $SW in ppm, 8 digits
    assert j.meta.ns == 8 and j.meta.td == 16384
    # LONGDATE = startTime; end from the folder's acqu.par CurrentTime
    assert (j.meta.start, j.meta.end) == (s.meta.start, s.meta.end)


def test_jcampdx_alone_estimates_end(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "nmr/spinsolve-jcamp" / JCAMP[0] / "nmr_fid.dx"
    dst = tmp_path / "x.dx"
    shutil.copy(src, dst)
    m = read_jcampdx(dst).meta
    assert m.start == _utc("2024-07-25T10:37:33.711")
    assert (m.end - m.start).total_seconds() == pytest.approx(8 * 15.0)  # .AVERAGES x .DELAY[1] ms
    assert m.extra["end_estimated"] is True


def test_jcampdx_rejects_non_jcamp(tmp_path: Path) -> None:
    p = tmp_path / "fake.dx"
    p.write_text("just some text\n1 2 3\n")
    with pytest.raises(IngestError, match="not a JCAMP-DX file"):
        read_jcampdx(p)
    e = tmp_path / "empty.dx"
    e.write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        read_jcampdx(e)
