"""EPR readers on the real instrument files of the ``shared_data`` folder, ``epr/`` (cwepr test data).

Every expected number below is copied from the file's own parameter file
(.DSC / .par / XML) or the lab's notes (.info); the comment names the source.
"""

from __future__ import annotations

import glob
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from ingest.readers.epr import gain_db_to_linear, read_bes3t, read_epr_csv, read_esp, read_magnettech, split_rows
from ingest.types import EPRSpectrum, IngestError

UTC = timezone.utc


@pytest.fixture(scope="module")
def epr_dir(shared_data: Path) -> Path:
    d = shared_data / "epr"
    if not d.is_dir():
        pytest.skip(f"{d} absent")
    return d


# --------------------------------------------------------------------------- BES3T


def test_bes3t_bdpa_1d(epr_dir: Path) -> None:
    s = read_bes3t(epr_dir / "bes3t-BDPA-1DFieldSweep.DSC")
    m = s.meta
    assert isinstance(s, EPRSpectrum) and m.format == "bes3t"
    # DSC: XPTS 3000, XMIN 3501 G, XWID 30 G  -> 350.1 .. 353.1 mT (.info: Start 350.1 mT, Stop 353.1 mT)
    assert s.field_T.shape == (3000,) and s.intensity.shape == (3000,)
    assert s.field_T[0] == pytest.approx(0.3501, abs=1e-12)
    assert s.field_T[-1] == pytest.approx(0.3531, abs=1e-12)
    assert np.diff(s.field_T) == pytest.approx(np.full(2999, 3e-3 / 2999), rel=1e-9)
    assert m.mw_freq_hz == pytest.approx(9.852145e9, rel=1e-12)  # MWFQ
    assert m.mw_power_W == pytest.approx(0.0006325, rel=1e-12)  # MWPW; .info Power 0.6325 mW
    assert m.mod_amp_T == pytest.approx(1e-5, rel=1e-12)  # B0MA; .info 0.01 mT
    assert m.mod_freq_hz == pytest.approx(1e5)  # B0MF; .info 100 kHz
    assert m.receiver_gain_db == pytest.approx(40.0)  # RCAG; .info 40 dB
    assert m.receiver_gain == pytest.approx(100.0, rel=1e-12)  # 10**(40/20)
    assert m.conversion_time_s == pytest.approx(0.01)  # SPTP; .info 10.00 ms
    assert m.time_constant_s == pytest.approx(0.00256)  # RCTC; .info 2.56 ms
    assert m.n_scans == 1  # NbScansDone
    assert m.scans_normalised is True  # SctNorm True
    assert m.temperature_K is None  # no STMP / Temperature in this DSC
    # DATE 12/07/20 TIME 14:23:26 is the save time (end); 3000 x 10 ms sweep -> start 30 s earlier.
    assert m.end == datetime(2020, 12, 7, 14, 23, 26, tzinfo=UTC)
    assert m.start == datetime(2020, 12, 7, 14, 22, 56, tzinfo=UTC)
    # .info: 14:23-14:24 (minute resolution, hand-written): the estimate lies within 1 min of it
    assert abs((m.start - datetime(2020, 12, 7, 14, 23, tzinfo=UTC)).total_seconds()) < 60
    assert m.extra["start_estimated"] is True
    assert s.y_axis is None and m.row is None
    # data: the raw .DTA words (BSEQ BIG, IRFMT D), 3000 float64
    np.testing.assert_array_equal(s.intensity, np.fromfile(epr_dir / "bes3t-BDPA-1DFieldSweep.DTA", ">f8"))


def test_bes3t_test_fieldsweep_20_scans(epr_dir: Path) -> None:
    s = read_bes3t(epr_dir / "bes3t-test-bes3t-1D-fieldsweep.DTA")  # the .DTA path works too
    m = s.meta
    # XPTS 1000, XMIN 3461 G, XWID 100 G -> 346.1 .. 356.1 mT (.info)
    assert s.field_T.size == 1000
    assert s.field_T[[0, -1]] == pytest.approx([0.3461, 0.3561], abs=1e-12)
    assert m.mw_freq_hz == pytest.approx(9.847957e9)
    assert m.mod_amp_T == pytest.approx(1e-4)  # B0MA 0.0001 T; .info 0.1 mT
    assert m.receiver_gain_db == 65.0 and m.receiver_gain == pytest.approx(gain_db_to_linear(65.0))
    assert m.n_scans == 20  # AVGS / NbScansDone; .info Accumulations 20
    assert m.conversion_time_s == pytest.approx(0.04096)
    # end 09:12:16 (TIME); 20 scans x 1000 x 40.96 ms = 819.2 s earlier; .info start 08:57, end 09:12
    assert m.end == datetime(2020, 2, 4, 9, 12, 16, tzinfo=UTC)
    assert (m.end - m.start).total_seconds() == pytest.approx(819.2)
    assert abs((m.start - datetime(2020, 2, 4, 8, 57, tzinfo=UTC)).total_seconds()) < 120


def test_bes3t_2d_time_field(epr_dir: Path) -> None:
    s = read_bes3t(epr_dir / "bes3t-BDPA-2DTimeField")  # stem without extension
    # DSC: X = Time (XPTS 2000, 0..10 s), Y = Field (YPTS 20, YTYP IGD -> .YGF, 3501..3531 G)
    # The reader puts the field last: intensity (2000 times, 20 fields).
    assert s.intensity.shape == (2000, 20)
    assert s.field_T.shape == (20,)
    assert s.meta.extra["transposed"] is True
    ygf = np.fromfile(epr_dir / "bes3t-BDPA-2DTimeField.YGF", dtype=">f8")
    assert s.field_T == pytest.approx(ygf * 1e-4, rel=1e-12)
    assert s.field_T[[0, -1]] == pytest.approx([0.3501, 0.3531], abs=1e-7)
    assert s.y_unit == "s"
    assert s.y_axis.shape == (2000,)
    assert s.y_axis[[0, -1]] == pytest.approx([0.0, 10.0])
    # raw check: element (time i, field j) is DTA[j*2000 + i]
    raw = np.fromfile(epr_dir / "bes3t-BDPA-2DTimeField.DTA", dtype=">f8")
    assert s.intensity[7, 3] == raw[3 * 2000 + 7]
    m = s.meta
    assert m.mw_freq_hz == pytest.approx(9.851604e9)
    assert m.conversion_time_s == pytest.approx(0.005)  # SPTP; DSL ConvTime 5.00 ms
    # 20 field points x 2000 x 5 ms = 200 s; TIME 14:58:21 (.info: 14:54-14:58)
    assert m.end == datetime(2020, 12, 7, 14, 58, 21, tzinfo=UTC)
    assert (m.end - m.start).total_seconds() == pytest.approx(200.0)

    rows = split_rows(s)
    assert len(rows) == 2000
    assert all(r.intensity.shape == (20,) for r in rows[:5])
    assert [r.meta.row for r in rows[:3]] == [0, 1, 2]
    assert rows[10].intensity == pytest.approx(s.intensity[10])
    # row i starts y_i seconds after the start (5 ms spacing)
    assert (rows[10].meta.start - m.start).total_seconds() == pytest.approx(10 * 10.0 / 1999, abs=1e-6)
    assert rows[0].meta.end > rows[0].meta.start


def test_split_rows_1d_is_identity(epr_dir: Path) -> None:
    s = read_bes3t(epr_dir / "bes3t-BDPA-1DFieldSweep.DSC")
    assert split_rows(s) == [s]


# --------------------------------------------------------------------------- ESP / WinEPR


def test_winepr(epr_dir: Path) -> None:
    s = read_esp(epr_dir / "esp" / "winepr.par")
    m = s.meta
    assert m.format == "winepr"  # 'DOS Format' -> float32 little-endian
    assert s.field_T.size == 2048  # ANZ / RES 2048
    # GST 3450 G, GSI 120 G (HCF 3510, HSW 120)
    assert s.field_T[[0, -1]] == pytest.approx([0.3450, 0.3570], abs=1e-12)
    # MIN/MAX of the .par equal the data range exactly when decoded as float32 LE
    assert s.intensity.min() == pytest.approx(-3325565.0) and s.intensity.max() == pytest.approx(3455259.0)
    assert m.mw_freq_hz == pytest.approx(9.876026e9)  # MF GHz
    assert m.mw_power_W == pytest.approx(0.2144e-3)  # MP 2.144e-001 mW
    assert m.receiver_gain == pytest.approx(1.002374e4)  # RRG (linear)
    assert m.receiver_gain_db is None
    assert m.conversion_time_s == pytest.approx(0.030)  # RCT 30 ms
    assert m.time_constant_s == pytest.approx(0.01024)  # RTC 10.24 ms
    assert m.temperature_K == pytest.approx(300.268727)  # TE
    assert m.n_scans == 1  # JSD
    assert m.mod_amp_T is None  # no RMA in this .par
    assert m.end == datetime(2021, 10, 15, 10, 37, tzinfo=UTC)  # JDA 10/15/2021 JTM 10:37


def test_emx_winepr(epr_dir: Path) -> None:
    s = read_esp(epr_dir / "esp" / "EMX-winEPR.spc")
    m = s.meta
    assert m.format == "winepr"
    assert s.field_T.size == 1024  # ANZ 1024
    assert s.field_T[[0, -1]] == pytest.approx([0.3505, 0.3515], abs=1e-12)  # GST 3505, GSI 10 G; .info 350.0-350.5?
    assert s.intensity.min() == pytest.approx(-6649.237305) and s.intensity.max() == pytest.approx(7257.762695)
    assert m.mw_freq_hz == pytest.approx(9.775e9)  # MF (the .info says 9.79594 GHz; the file wins)
    assert m.mw_power_W == pytest.approx(0.6315e-3)  # MP; .info 630 uW
    assert m.conversion_time_s == pytest.approx(0.04096)  # RCT; .info 40.96 ms
    assert m.time_constant_s == pytest.approx(0.02048)  # RTC; .info 20.48 ms
    assert m.temperature_K == pytest.approx(300.0)
    assert m.receiver_gain is None  # no RRG key (the .info's 6.32e2 is not in the file)
    assert m.end == datetime(2016, 6, 17, 11, 52, tzinfo=UTC)  # JDA 17.Jun.2016 JTM 11:52


def test_esp_int32_big_endian(epr_dir: Path) -> None:
    s = read_esp(epr_dir / "esp" / "ESP")
    m = s.meta
    assert m.format == "esp"  # no 'DOS Format' -> int32 big-endian
    assert s.field_T.size == 1024  # no ANZ: 4096 bytes / 4
    raw = np.fromfile(epr_dir / "esp" / "ESP.spc", dtype=">i4")
    assert s.intensity == pytest.approx(raw.astype(float))
    assert np.all(s.intensity == np.round(s.intensity))
    # a real spectrum is smooth: the point-to-point differences are small compared with the signal
    assert np.std(np.diff(s.intensity)) < 0.5 * np.std(s.intensity)
    # GST 3394.988 G, GSI 100 G; .info: 339.50-349.50 mT
    assert s.field_T[[0, -1]] == pytest.approx([0.3394988, 0.3494988], abs=1e-12)
    assert m.mod_amp_T == pytest.approx(1.976496e-4)  # RMA 1.976496 G; .info 0.2 mT
    assert m.receiver_gain == pytest.approx(5e5)  # RRG; .info 5.1e5
    assert m.conversion_time_s == pytest.approx(0.08192)  # RCT; .info 81.92 ms
    assert m.time_constant_s == pytest.approx(0.02048)
    assert m.n_scans == 25  # JSD/JNS; .info Accumulations 25
    assert m.mw_freq_hz is None and m.mw_power_W is None  # not in this .par
    assert m.end == datetime(1999, 4, 4, 9, 32, 26, tzinfo=UTC)  # JDA 4-APR-1999 JTM 9:32:26


# --------------------------------------------------------------------------- Magnettech


def test_magnettech_single(epr_dir: Path) -> None:
    s = read_magnettech(epr_dir / "magnettech" / "test-magnettech.xml")
    m = s.meta
    assert m.format == "magnettech"
    assert m.mw_freq_hz == pytest.approx(9.48958423609322e9)  # MwFreq (GHz)
    assert m.mw_power_W == pytest.approx(1e-3)  # MicrowavePower 1 mW
    assert m.mod_amp_T == pytest.approx(1e-6)  # Modulation 0.001 mT
    assert m.mod_freq_hz == pytest.approx(1e4)  # ModulationFreq 10 kHz
    assert m.n_scans == 1  # Accumulations
    assert m.temperature_K == pytest.approx(30.1159439086914 + 273.15)  # Temperature (°C)
    assert m.receiver_gain is None  # the ESR5000 records none
    assert m.start == datetime(2020, 11, 18, 15, 56, 4, 771146, tzinfo=UTC)  # 16:56:04.77+01:00
    assert m.end == datetime(2020, 11, 18, 15, 56, 51, 701143, tzinfo=UTC)  # file Timestamp ...Z
    assert m.extra["sweep_time_s"] == pytest.approx(30.0)
    # absorption: 16280 points every 2 ms from 45 ms (XOffset 0.045, XSlope 0.002); B(t): 1629 points
    # every 20 ms from 0 (XSlope 0.02), last at 32.56 s -> the absorption points after it are dropped:
    # 0.045 + 0.002 k <= 32.56 for k = 0 .. 16257
    assert s.field_T.size == 16258
    assert s.field_T.size == s.intensity.size
    assert np.all(np.diff(s.field_T) > 0)
    # Bfrom/Bto 336.096 / 340.422 mT (recipe); the recorded field runs 335.98-340.57 mT
    assert 0.3359 < s.field_T[0] < 0.3361 and 0.3404 < s.field_T[-1] < 0.3406


def test_magnettech_amplitude_series_metadata(epr_dir: Path) -> None:
    files = sorted(glob.glob(str(epr_dir / "magnettech" / "magnettech-amplitude" / "*.xml")))
    assert len(files) == 10
    mods = []
    for f in files:
        s = read_magnettech(f)
        mods.append(s.meta.mod_amp_T)
        # the file name ends in the modulation amplitude, e.g. ..._mod_0_44500mT.xml
        tag = Path(f).stem.split("_mod_")[1].replace("mT", "").replace("_", ".")
        assert s.meta.mod_amp_T == pytest.approx(float(tag) * 1e-3, rel=1e-9)
        assert s.meta.mw_power_W == pytest.approx(10e-3)  # MicrowavePower 10 mW
        assert s.meta.mod_freq_hz == pytest.approx(1e5)
        assert s.field_T[0] == pytest.approx(0.300, abs=2e-4)  # Bfrom 300 mT
        assert s.field_T[-1] == pytest.approx(0.3616, abs=5e-4)  # recorded B(t) overshoots Bto 360
        assert s.meta.start < s.meta.end
    assert sorted(mods) == mods


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    "header, scale, unit",
    [("Field [G], Intensity", 1e4, None), ("B (mT);Signal", 1e3, None), ("", 1e4, None), ("", 1e3, None),
     ("", 1e3, "mT")],
)
def test_csv_units(tmp_path: Path, header: str, scale: float, unit: str | None) -> None:
    field_T = np.linspace(0.345, 0.355, 101)
    y = np.sin(np.arange(101) / 7.0)
    sep = ";" if ";" in header else ","
    lines = ([header] if header else []) + [f"{b * scale:.6f}{sep}{v:.8f}" for b, v in zip(field_T, y)]
    p = tmp_path / "export.csv"
    p.write_text("\n".join(lines) + "\n")
    s = read_epr_csv(p, field_unit=unit)
    assert s.field_T == pytest.approx(field_T, abs=1e-9)
    assert s.intensity == pytest.approx(y, abs=1e-8)
    assert s.meta.format == "csv" and s.meta.mw_freq_hz is None and s.meta.receiver_gain is None


def test_csv_tab_separated_with_gauss_header(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_text("Magnetic Field (Gauss)\tIntensity\n3400.0\t1.0\n3400.5\t2.0\n3401.0\t-1.5\n")
    s = read_epr_csv(p)
    assert s.field_T == pytest.approx([0.34, 0.34005, 0.3401])
    assert s.meta.extra["field_unit_from"] == "header"


# --------------------------------------------------------------------------- errors


def _copy_bes3t(epr_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    src = epr_dir / "bes3t-BDPA-1DFieldSweep"
    dsc, dta = tmp_path / "s.DSC", tmp_path / "s.DTA"
    dsc.write_bytes(src.with_suffix(".DSC").read_bytes())
    dta.write_bytes(src.with_suffix(".DTA").read_bytes())
    return dsc, dta


def test_error_empty_dta(epr_dir: Path, tmp_path: Path) -> None:
    dsc, dta = _copy_bes3t(epr_dir, tmp_path)
    dta.write_bytes(b"")
    with pytest.raises(IngestError, match="empty") as ei:
        read_bes3t(dsc)
    assert ei.value.path == dta


def test_error_missing_xpts(epr_dir: Path, tmp_path: Path) -> None:
    dsc, _ = _copy_bes3t(epr_dir, tmp_path)
    dsc.write_text(dsc.read_text(encoding="latin-1").replace("XPTS\t3000\n", ""), encoding="latin-1")
    with pytest.raises(IngestError, match="XPTS") as ei:
        read_bes3t(dsc)
    assert ei.value.path == dsc and str(dsc) in str(ei.value)


def test_error_short_dta(epr_dir: Path, tmp_path: Path) -> None:
    dsc, dta = _copy_bes3t(epr_dir, tmp_path)
    dta.write_bytes(dta.read_bytes()[:-800])
    with pytest.raises(IngestError, match=r"\.DTA holds 23200 bytes, the \.DSC says 24000") as ei:
        read_bes3t(dsc)
    assert ei.value.path == dta


def test_error_missing_dta(tmp_path: Path, epr_dir: Path) -> None:
    dsc, dta = _copy_bes3t(epr_dir, tmp_path)
    dta.unlink()
    with pytest.raises(IngestError, match="not found"):
        read_bes3t(dsc)


@pytest.mark.parametrize("reader", [read_bes3t, read_magnettech, read_epr_csv, read_esp])
def test_error_wrong_format(tmp_path: Path, reader) -> None:
    p = tmp_path / "junk.DSC" if reader is read_bes3t else tmp_path / "junk.xml"
    if reader is read_esp:
        p = tmp_path / "junk.par"
        p.write_text("DOS  Format\rANZ 100\rGST 3400\rGSI 100\r")
        (tmp_path / "junk.spc").write_bytes(b"\x00" * 12)  # 3 points, .par says 100
    else:
        p.write_text("this is not an EPR file\nat all\n")
        (tmp_path / "junk.DTA").write_bytes(b"\x00" * 16)
    with pytest.raises(IngestError) as ei:
        reader(p)
    assert "junk" in str(ei.value)


def test_error_xml_wrong_root(tmp_path: Path) -> None:
    p = tmp_path / "other.xml"
    p.write_text('<?xml version="1.0"?><Other/>')
    with pytest.raises(IngestError, match="ESRXmlFile"):
        read_magnettech(p)


# --------------------------------------------------------------------------- BES3T format variants


def _hand_dsc(path: Path, **keys: str) -> Path:
    desc = {"DSRC": "EXP", "BSEQ": "BIG", "IKKF": "REAL", "XTYP": "IDX", "YTYP": "NODATA", "ZTYP": "NODATA",
            "IRFMT": "D", "XPTS": "5", "XMIN": "3400.0", "XWID": "4.0", "XUNI": "'G'", "XNAM": "'Field'"}
    desc.update(keys)
    lines = ["#DESC\t1.2 * DESCRIPTOR INFORMATION"] + [f"{k}\t{v}" for k, v in desc.items()]
    lines += ["*", "#SPL\t1.2 * STANDARD PARAMETER LAYER", "MWFQ    9.5e+09", "RCAG    500",
              "DATE    01/02/21", "TIME    03:04:05", "SPTP    0.01"]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="latin-1")  # CRLF line endings too
    return path


@pytest.mark.parametrize(
    "bseq, irfmt, dtype",
    [("BIG", "D", ">f8"), ("LIT", "D", "<f8"), ("BIG", "F", ">f4"), ("LIT", "I", "<i4"), ("BIG", "S", ">i2"),
     ("LIT", "C", "i1")],
)
def test_bes3t_item_formats(tmp_path: Path, bseq: str, irfmt: str, dtype: str) -> None:
    values = np.array([1, -2, 3, -4, 5], dtype=dtype)
    dsc = _hand_dsc(tmp_path / "f.DSC", BSEQ=bseq, IRFMT=irfmt)
    (tmp_path / "f.DTA").write_bytes(values.tobytes())
    s = read_bes3t(dsc)
    assert s.intensity == pytest.approx([1, -2, 3, -4, 5], abs=0)
    assert s.field_T == pytest.approx([0.34, 0.3401, 0.3402, 0.3403, 0.3404], abs=1e-12)
    # RCAG 500 with no DSL 'Gain .. dB' line: > 120, so a linear gain (BES3T spec reading)
    assert s.meta.receiver_gain == 500.0 and s.meta.receiver_gain_db is None
    assert s.meta.end == datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_bes3t_complex_real_part_kept_imag_in_extra(tmp_path: Path) -> None:
    re_, im_ = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([-1.0, -2.0, -3.0, -4.0, -5.0])
    inter = np.empty(10, ">f8")
    inter[0::2], inter[1::2] = re_, im_
    dsc = _hand_dsc(tmp_path / "c.DSC", IKKF="CPLX")
    (tmp_path / "c.DTA").write_bytes(inter.tobytes())
    s = read_bes3t(dsc)
    assert s.intensity == pytest.approx(re_, abs=0)
    assert s.meta.extra["imag"] == pytest.approx(im_, abs=0)
    # a complex file of real size is caught
    (tmp_path / "c.DTA").write_bytes(re_.astype(">f8").tobytes())
    with pytest.raises(IngestError, match="holds 40 bytes, the .DSC says 80"):
        read_bes3t(dsc)


@pytest.mark.parametrize("unit, factor", [("'mT'", 1e-3), ("'T'", 1.0), ("'G'", 1e-4)])
def test_bes3t_field_units_and_xgf(tmp_path: Path, unit: str, factor: float) -> None:
    x = np.array([340.0, 340.5, 341.5, 343.0, 345.0])  # uneven -> only expressible as XTYP IGD
    dsc = _hand_dsc(tmp_path / "g.DSC", XTYP="IGD", XUNI=unit, XFMT="D", BSEQ="LIT")
    (tmp_path / "g.XGF").write_bytes(x.astype("<f8").tobytes())
    (tmp_path / "g.DTA").write_bytes(np.arange(5, dtype="<f8").tobytes())
    s = read_bes3t(dsc)
    assert s.field_T == pytest.approx(x * factor, rel=1e-15)
    (tmp_path / "g.XGF").unlink()
    with pytest.raises(IngestError, match="XGF"):
        read_bes3t(dsc)


def test_bes3t_not_a_field_axis(tmp_path: Path) -> None:
    dsc = _hand_dsc(tmp_path / "t.DSC", XUNI="'s'", XNAM="'Time'")
    (tmp_path / "t.DTA").write_bytes(np.zeros(5, ">f8").tobytes())
    with pytest.raises(IngestError, match="not a magnetic field"):
        read_bes3t(dsc)


# --------------------------------------------------------------------------- Xepr time stamps (issue 11 item 6)


@pytest.mark.parametrize("where", ["#SPL", "#DESC", "#DSL"])
def test_xepr_time_found_wherever_xepr_writes_it(shared_data: Path, tmp_path: Path, where: str) -> None:
    """DATE/TIME in the #SPL layer (Xepr), the #DESC layer or a #DSL device block:
    the same end time (12/07/20 14:23:26, the lab notes' 14:23-14:24) and no warning."""
    import shutil
    import warnings

    from ingest.types import IngestWarning

    src = shared_data / "epr" / "bes3t-BDPA-1DFieldSweep"
    for suf in (".DSC", ".DTA"):
        shutil.copyfile(src.with_suffix(suf), tmp_path / f"x{suf}")
    dsc = tmp_path / "x.DSC"
    text = dsc.read_text(encoding="latin-1")
    stamp = "DATE    12/07/20\nTIME    14:23:26\n"
    assert stamp in text
    if where != "#SPL":
        text = text.replace(stamp, "")
        anchor = "XPTS" if where == "#DESC" else "TuneCaps"
        text = text.replace(anchor, stamp + anchor, 1)
    dsc.write_text(text, encoding="latin-1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)
        spec = read_bes3t(tmp_path / "x.DTA")
    assert spec.meta.end == datetime(2020, 12, 7, 14, 23, 26, tzinfo=timezone.utc)
    assert spec.meta.extra["time_source"].startswith(where)


def test_xepr_without_any_time_warns(shared_data: Path, tmp_path: Path) -> None:
    import re
    import shutil

    from ingest.types import IngestWarning

    src = shared_data / "epr" / "bes3t-BDPA-1DFieldSweep"
    for suf in (".DSC", ".DTA"):
        shutil.copyfile(src.with_suffix(suf), tmp_path / f"x{suf}")
    dsc = tmp_path / "x.DSC"
    dsc.write_text(re.sub(r"^(DATE|TIME)\s.*\n", "", dsc.read_text(encoding="latin-1"), flags=re.M),
                   encoding="latin-1")
    with pytest.warns(IngestWarning, match="no DATE/TIME"):
        spec = read_bes3t(tmp_path / "x.DTA")
    assert spec.meta.start is None and spec.meta.end is None
