"""The batch read of a Bruker expno at about half its former CPU: the same spectra, the same errors.

What changed (issue 15), and what is checked here:

* ``read_rows`` of an expno folder stats its files once: :func:`ingest.readers.bruker.identify_seen`
  hands the acqus stamp and the fid's stat to :func:`ingest.readers.bruker.read_identified`;
* the meta fields and the size check are reused from the last expno when every acqus value
  they read is the very same object (:func:`ingest.readers.bruker_fields._checked_fields`), which is
  the case of an acqus patched from the last one parsed;
* integer FIDs skip the finiteness proof (int32 times ``2**NC`` is finite by making); float
  FIDs keep it;
* the byte-order counts (:func:`ingest.readers.bruker_words._declared_order_evident`) run on
  native uint32 words: the same decisions as the former signed, byte-swapped counts;
* with the batch engine's compiled kernels loaded, one compiled pass converts and scales the
  words, and one gives the byte-order counts (:mod:`ingest.readers.bruker_words_nb`): the same
  bits, the same decisions.

Each fast read is compared with the plain one (every cache emptied before each file) on a
generated series and on the real Bruker files.  Expnos come from :func:`_write`, a generator
that imports nothing from the package.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ingest.readers import bruker, bruker_fields, bruker_params, bruker_words
from ingest.readers.dispatch import read_rows
from ingest.types import IngestError

DATE = 1764000000  # 2025-11-24 UTC


def _write(folder: Path, fid: np.ndarray, *, date: int = DATE, ns: str = "1", nc: int = -3, dtypa: int = 0,
           bytorda: int = 0, words: np.ndarray | None = None) -> None:
    """An expno: acqus (TopSpin layout, ``$$`` date and path lines), fid words, audita.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    td = 2 * fid.size
    stamp = f"2025-11-24 {date % 86400 // 3600:02d}:{date % 3600 // 60:02d}:{date % 60:02d}.000 +0000"
    lines = ["##TITLE= Parameter file, TopSpin\t\tVersion 4.1.4", "##JCAMPDX= 5.0", "##DATATYPE= Parameter Values",
             "##ORIGIN= Bruker BioSpin GmbH", "##OWNER= test", f"$$ {stamp}  test@test", f"$$ {folder}/acqus",
             "##$BF1= 400.13", f"##$BYTORDA= {bytorda}", "##$D= (0..7)", "0 1 0 0 0 0 0 0", f"##$DATE= {date}",
             "##$DECIM= 16", "##$DS= 0", "##$DSPFVS= 20", f"##$DTYPA= {dtypa}", "##$GRPDLY= 67.98", f"##$NC= {nc}",
             f"##$NS= {ns}", "##$NUC1= <1H>", "##$O1= 1880.6", "##$PULPROG= <zg30>", "##$RG= 1", "##$SFO1= 400.1318806",
             "##$SOLVENT= <D2O>", "##$SW_h= 8012.8", f"##$TD= {td}", "##$TE= 298.15", "##END=", ""]
    (folder / "acqus").write_text("\n".join(lines), encoding="latin-1")
    if words is None:
        w = np.empty(td)
        w[0::2], w[1::2] = fid.real, fid.imag
        words = np.rint(w).astype((">" if bytorda else "<") + "i4") if dtypa == 0 else w.astype("<f8")
    (folder / "fid").write_bytes(words.tobytes())
    (folder / "audita.txt").write_text(
        "##TITLE= Audit trail, TopSpin\n##AUDIT TRAIL=  $$ (NUMBER, WHEN, WHO, WHERE, PROCESS, VERSION, WHAT)\n"
        f"(   1,<{stamp}>,<test>,<test>,<go>,<TOPSPIN 4.1.4>,\n      <created by zg\n"
        f"\tstarted at 2025-11-24 00:00:00.000 +0000,\n       data hash MD5: 1K>)\n##END=\n", encoding="latin-1")


def _fid(rng: np.random.Generator, n: int = 2048, amp: float = 2e6) -> np.ndarray:
    t = np.arange(n)
    return amp * np.exp(-t / 300.0) * np.exp(0.3j * t) + rng.normal(0, 30, n) + 1j * rng.normal(0, 30, n)


def _forget() -> None:
    """Every cache of the read emptied: the next read parses and checks everything afresh."""
    bruker_params._ACQUS_CACHE.clear()
    bruker_params._LAST_PARSED.clear()
    bruker_params._LAST_READ[0] = None
    bruker_fields._LAST_FIELDS.__dict__.clear()


def _plain(path: Path) -> object:
    _forget()
    return bruker.read_bruker(path)


def _same(fast: object, plain: object) -> None:
    assert fast.fid.dtype == plain.fid.dtype and fast.fid.tobytes() == plain.fid.tobytes()
    assert fast.meta == plain.meta and fast.meta.extra == plain.meta.extra
    for a, b in ((fast.processed, plain.processed), (fast.processed_ppm, plain.processed_ppm)):
        assert (a is None and b is None) or a.tobytes() == b.tobytes()


@pytest.fixture
def series(tmp_path: Path) -> list[Path]:
    """Six expnos of a series: the date, DATE and the path differ (acqus patched), one has a
    different NS and one a different NC (fields checked afresh), one big-endian."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(6):
        kw = {"date": DATE + 60 * i}
        if i == 2:
            kw["ns"] = "4"
        if i == 3:
            kw["nc"] = -1
        if i == 5:
            kw["bytorda"] = 1
        _write(tmp_path / str(10 + i), _fid(rng), **kw)
        out.append(tmp_path / str(10 + i))
    return out


def test_fast_read_of_a_series_is_the_plain_read(series: list[Path]) -> None:
    _forget()
    fast = [read_rows(p)[0] for p in series]  # caches warm from the previous expno
    assert bruker_fields._LAST_FIELDS.v is not None
    for p, f in zip(series, fast):
        _same(f, _plain(p))
    assert [f.meta.ns for f in fast] == [1, 1, 4, 1, 1, 1]
    assert fast[0].meta.start.isoformat() == "2025-11-24T00:00:00+00:00"
    # NC -3 (exact scaling): the words / 8
    words = np.frombuffer((series[0] / "fid").read_bytes(), "<i4").astype(float) / 8
    assert fast[0].fid.view(float).tobytes() == words.tobytes()


def test_fields_reused_only_for_the_same_objects(series: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Consecutive patched acqus reuse the checked fields; a changed value is checked afresh."""
    calls = []
    real = bruker_fields._meta_fields
    monkeypatch.setattr(bruker_fields, "_meta_fields", lambda *a: calls.append(a[0].name) or real(*a))
    _forget()
    for p in series:
        read_rows(p)
    # 10 parsed in full; 11 patched (reused); 12 NS differs; 13 NC differs and its base is 12's
    # neighbour; 14 back to NC -3; 15 BYTORDA differs
    assert calls[0] == "10" and "11" not in calls and {"12", "13", "14", "15"} <= set(calls)


def test_real_bruker_files_fast_equals_plain(shared_data: Path) -> None:
    expnos = sorted(p.parent for p in (shared_data / "nmr").glob("bruker*/*/acqus"))
    assert len(expnos) >= 9
    _forget()
    fast = [read_rows(p)[0] for p in expnos]
    for p, f in zip(expnos, fast):
        _same(f, _plain(p))
    text = (expnos[0] / "acqus").read_text(encoding="latin-1")  # the vendor's own numbers
    sfo1 = float(re.search(r"##\$SFO1= (\S+)", text).group(1))
    td = int(re.search(r"##\$TD= (\S+)", text).group(1))
    assert fast[0].meta.td == td // 2 and fast[0].meta.sfo1_hz == sfo1 * 1e6


@pytest.mark.parametrize("ns", ["yes", "<one>", "2.5e400"])
def test_a_bad_value_after_a_good_expno_keeps_its_error(tmp_path: Path, ns: str) -> None:
    """NS ``yes`` parses to True (== 1, hash of 1): reused by equality it would pass; by identity
    it is checked, and refused as the plain read refuses it."""
    rng = np.random.default_rng(4)
    _write(tmp_path / "1", _fid(rng))
    _write(tmp_path / "2", _fid(rng), ns=ns, date=DATE + 60)
    _forget()
    read_rows(tmp_path / "1")
    with pytest.raises(IngestError) as fast:
        read_rows(tmp_path / "2")
    with pytest.raises(IngestError) as plain:
        _plain(tmp_path / "2")
    assert str(fast.value) == str(plain.value)
    assert "acqus" in str(fast.value) and "NS" in str(fast.value)


def test_truncated_fid_after_a_good_expno_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    _write(tmp_path / "1", _fid(rng))
    _write(tmp_path / "2", _fid(rng), date=DATE + 60)
    raw = (tmp_path / "2" / "fid").read_bytes()
    (tmp_path / "2" / "fid").write_bytes(raw[:-4096])
    _forget()
    read_rows(tmp_path / "1")
    with pytest.raises(IngestError, match=r"fid.*holds 3072 points but acqus TD says 4096"):
        read_rows(tmp_path / "2")


def test_float_fid_with_nan_is_refused_integer_fid_needs_no_proof(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    w = np.zeros(4096)
    w[0::2] = rng.normal(0, 1e3, 2048)
    w[777] = np.nan
    _write(tmp_path / "nan", _fid(rng), dtypa=2, words=w.astype("<f8"))
    with pytest.raises(IngestError, match=r"FID holds 1 non-finite value\(s\) \(NaN/inf\), the first at point 388"):
        read_rows(tmp_path / "nan")
    # extreme integers at the largest scaling TopSpin allows: finite, read
    big = np.rint(rng.normal(0, 1e3, 4096)).astype("<i4")
    big[:2] = 2**31 - 1, -2**31
    _write(tmp_path / "big", _fid(rng), nc=64, words=big)
    spec = read_rows(tmp_path / "big")[0]
    assert spec.fid[0] == complex((2**31 - 1) * 2.0**64, -2**31 * 2.0**64)
    assert spec.fid.view(float).tobytes() == (big.astype(float) * 2.0**64).tobytes()


def test_wrong_byte_order_after_a_good_expno_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    _write(tmp_path / "1", _fid(rng, amp=200.0))
    _write(tmp_path / "2", _fid(rng, amp=200.0), date=DATE + 60)
    acqus = tmp_path / "2" / "acqus"
    acqus.write_text(acqus.read_text(encoding="latin-1").replace("##$BYTORDA= 0", "##$BYTORDA= 1"), encoding="latin-1")
    _forget()
    read_rows(tmp_path / "1")
    with pytest.raises(IngestError, match=r"acqus.*BYTORDA 1 declares big-endian data"):
        read_rows(tmp_path / "2")


def _evident_signed(raw: bytes, dt: np.dtype) -> bool:
    """The former counts (signed words, the other order as a byte-swapped view), for comparison."""
    if dt.kind != "i" or dt.itemsize != 4:
        return False
    n = min(len(raw) // 4, 1 << 14)
    if n < 8:
        return False
    h, lim = n // 2, 1 << 24
    t = n - h

    def ext(v: np.ndarray) -> int:
        return int(np.count_nonzero((v >= -lim) & (v < lim)))

    declared = np.frombuffer(raw, dtype=dt, count=n)
    other = np.frombuffer(raw, dtype=dt.newbyteorder(), count=t, offset=4 * h)
    tail_d, tail_o = ext(declared[h:]), ext(other)
    if tail_d > 0.9 * t and tail_o < 0.5 * t:
        return True
    s_d = (ext(declared[:h]) + tail_d) / n
    if s_d < 0.1 and ext(np.frombuffer(raw, dtype=dt.newbyteorder(), count=n)) / n - s_d > 0.3:
        return False
    k = int(np.count_nonzero(other))
    return k == 0 or tail_o - (t - k) <= (k - 1) // 2


def test_byte_order_counts_on_native_words_decide_as_the_signed_ones() -> None:
    _check_order_counts(400)


def _check_order_counts(trials: int) -> None:
    rng = np.random.default_rng(8)
    seen = set()
    for trial in range(trials):
        n = int(rng.choice([7, 8, 9, 1001, 16384, 20000]))
        x = rng.normal(0, 10.0 ** rng.uniform(0, 9.3), n)
        kind = trial % 5
        if kind == 1:
            x[n // 2:] = 0
        elif kind == 2:
            x[rng.random(n) < rng.random()] = 0
        elif kind == 3:
            x = rng.integers(-2**31, 2**31, n).astype(float)
        w = np.clip(np.rint(x), -2**31, 2**31 - 1).astype(np.int32)
        for order in "<>":
            raw = w.astype(order + "i4").tobytes()
            for d in ("<i4", ">i4", "=i4", "<f8"):
                got = bruker_words._declared_order_evident(raw, np.dtype(d))
                assert got == _evident_signed(raw, np.dtype(d)), (trial, order, d)
                seen.add(got)
    assert seen == {True, False}


def test_compiled_conversion_gives_the_same_bits(series: list[Path]) -> None:
    pytest.importorskip("numba")
    from ingest.processing import zf_fft_nb
    from ingest.readers import bruker_words_nb

    if zf_fft_nb.load() is None:
        pytest.skip("compiled kernels switched off (FLOWCELL_NUMBA=0)")
    conv = bruker_words_nb.converter()
    assert conv is not None and bruker_words_nb.counter() is not None
    _check_order_counts(150)  # the compiled counts now: the same decisions
    rng = np.random.default_rng(9)
    w = rng.integers(-2**31, 2**31, 10001).astype(np.int32)
    w[:4] = [-2**31, 2**31 - 1, 0, -1]
    for nc in (-64, -25, 0, 64):
        out = np.empty(w.size)
        conv(w, out, 2.0 ** nc)
        ref = w.astype(np.float64)
        ref *= 2.0 ** nc
        assert out.tobytes() == ref.tobytes(), nc
    with bruker_words.recycled_arrays():
        fast = [read_rows(p)[0] for p in series]
    for p, f in zip(series, fast):
        _same(f, _plain(p))
