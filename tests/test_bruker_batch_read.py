"""The batch read of a Bruker expno (``flowcell ingest`` -> ``read_rows``) at a fraction of its
former cost, with the same spectra and the same errors (issue 15).

What changed, and what is checked here:

* the byte-order shortcut (:func:`ingest.readers.bruker_words._declared_order_evident`) now
  also covers full-scale FIDs whose signal is still large in the sampled tail (the medians of
  :func:`ingest.readers.checks.byte_order_check` were ~0.35 ms of a 64k-point read): it may
  only say "evident" where the full check accepts;
* the words are read into a reused buffer and converted to a fresh array (same numbers);
* the finiteness proof of :func:`ingest.readers.checks._finite` is one dot product;
* array lines of parameter files are parsed as integers in one ``map`` when they all are;
* ``is_params`` hands the whole small parameter file to ``read_acqus`` (no second read).

Expnos are written by :func:`_write_expno`, a generator that imports nothing from the package
(acqus text, fid words in either byte order and type, optional block padding).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from ingest.readers import bruker_params, bruker_words
from ingest.readers.bruker import is_params, read_bruker
from ingest.readers.bruker_params import _jcamp_value, _jcamp_values, read_acqus
from ingest.readers.checks import _finite, byte_order_check
from ingest.readers.dispatch import read_rows
from ingest.types import IngestError

DATE = 1764000000  # 2025-11-24 UTC


def _write_expno(folder: Path, fid: np.ndarray, *, big: bool = False, dtypa: int = 0, nc: int = 0,
                 pad_to: int | None = None, bytorda: int | None = None) -> np.ndarray:
    """A TopSpin-layout expno holding ``fid`` (complex) as int32 (DTYPA 0, rounded) or float64
    words; returns the complex data a correct reader gives (``2**NC`` applied)."""
    n = fid.size
    kind = "i4" if dtypa == 0 else "f8"
    words = np.empty(2 * n, dtype=np.float64)
    words[0::2], words[1::2] = fid.real, fid.imag
    if dtypa == 0:
        words = np.rint(words)
    raw = words.astype((">" if big else "<") + kind).tobytes()
    if pad_to:
        raw += b"\0" * (pad_to - len(raw))
    folder.mkdir(parents=True, exist_ok=True)
    order = int(big) if bytorda is None else bytorda
    (folder / "acqus").write_text(
        "##TITLE= Parameter file, TopSpin\t\tVersion 4.1.4\n##JCAMPDX= 5.0\n$$ generator\n"
        f"##$BF1= 400.13\n##$BYTORDA= {order}\n##$D= (0..3)\n0 1 0 0\n##$DATE= {DATE}\n##$DECIM= 1\n"
        f"##$DSPFVS= 20\n##$DTYPA= {dtypa}\n##$GRPDLY= 67.98\n##$NC= {nc}\n##$NS= 4\n##$NUC1= <1H>\n"
        f"##$O1= 1880.611\n##$P= (0..3)\n10 12.5 0 1e3\n##$SFO1= 400.1318806\n##$SW_h= 8000\n##$TD= {2 * n}\n"
        "##END=\n", encoding="latin-1")
    (folder / "fid").write_bytes(raw)
    return (words[0::2] + 1j * words[1::2]) * 2.0 ** nc


def _decay(n: int, amp: float, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000.0
    return amp * np.exp(2j * np.pi * 500 * t - t / 0.3) + noise * (rng.normal(size=n) + 1j * rng.normal(size=n))


def _plain_read(folder: Path) -> np.ndarray:
    """A Bruker fid read with numpy alone (BYTORDA, DTYPA, TD, 2**NC from acqus by regex)."""
    text = (folder / "acqus").read_text(encoding="latin-1")
    par = dict(line[3:].split("= ", 1) for line in text.splitlines() if line.startswith("##$") and "= " in line)
    dt = (">" if int(par["BYTORDA"]) == 1 else "<") + ("f8" if int(par.get("DTYPA", 0)) == 2 else "i4")
    w = np.fromfile(folder / "fid", dtype=dt)[: int(par["TD"])].astype(np.float64)
    nc = int(par.get("NC", 0)) if dt[1] == "i" else 0
    return (w[0::2] + 1j * w[1::2]) * 2.0 ** nc


# --------------------------------------------------------------------------- byte order


def test_order_shortcut_never_skips_a_refusal() -> None:
    """Wherever the shortcut says "evident", the full check accepts (random int32 samples:
    noise, decaying full-scale lines, uniform words, multiples of 256; zeros; both orders)."""
    rng = np.random.default_rng(5)
    evident = refused = large = 0
    for trial in range(400):
        n = int(rng.choice([8, 9, 100, 4000, 16384, 20000]))
        scale, zeros, kind = 10 ** rng.uniform(0, 9.5), rng.choice([0, 0.3, 0.6, 0.95]), trial % 4
        if kind == 0:
            v = rng.normal(0, scale, n)
        elif kind == 1:
            v = scale * np.cos(np.arange(n) * 0.01) * np.exp(-np.arange(n) / (n * rng.uniform(0.05, 5)))
        elif kind == 2:
            v = rng.integers(-2**31, 2**31, n).astype(float)
        else:
            v = (rng.normal(0, scale, n) // 256) * 256
        v = np.clip(v, -2**31, 2**31 - 1).astype(np.int64)
        v[rng.random(n) < zeros] = 0
        for order in "<>":
            raw = v.astype(order + "i4").tobytes()
            for dt in (np.dtype(order + "i4"), np.dtype(order + "i4").newbyteorder()):
                try:
                    byte_order_check("acqus", "BYTORDA", raw, dt)
                    ok = True
                except IngestError:
                    ok, refused = False, refused + 1
                if bruker_words._declared_order_evident(raw, dt):
                    evident += 1
                    large += int(np.median(np.abs(v[n // 2:min(n, 16384)])) > 2**24)
                    assert ok, (trial, kind, scale, zeros, order, dt)
    assert evident >= 300 and refused >= 100 and large >= 20, (evident, refused, large)


def test_full_scale_fid_read_without_the_medians(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full-scale 64k-point int32 fid (signal still large in the sampled tail, as the
    package's writer and bench_ingest make them) is read without the median check."""
    truth = _write_expno(tmp_path / "1", _decay(32768, 1.5e9, 2e6), nc=-25)

    def refuse(*a, **k):
        raise AssertionError("full byte-order check run")

    monkeypatch.setattr(bruker_words, "byte_order_check", refuse)
    got = read_bruker(tmp_path / "1").fid
    assert got.dtype == np.complex128 and got.tobytes() == truth.tobytes()


# --------------------------------------------------------------------------- same spectra


@pytest.mark.parametrize(("big", "dtypa", "pad"), [(False, 0, False), (True, 0, True), (False, 2, False),
                                                   (True, 2, True)])
def test_generated_expnos_read_bit_identical(tmp_path: Path, big: bool, dtypa: int, pad: bool) -> None:
    n = 1000  # 8000 or 16000 bytes: padded to the next 1024-byte block when asked
    fid = _decay(n, 3e5, 40.0, seed=int(big) + 2 * dtypa)
    nbytes = 2 * n * (4 if dtypa == 0 else 8)
    truth = _write_expno(tmp_path / "e", fid, big=big, dtypa=dtypa, nc=-2 if dtypa == 0 else 0,
                         pad_to=-(-nbytes // 1024) * 1024 if pad else None)
    (spec,) = read_rows(tmp_path / "e")
    assert spec.fid.dtype == np.complex128 and spec.fid.shape == (n,)
    assert spec.fid.tobytes() == truth.tobytes() == _plain_read(tmp_path / "e").tobytes()
    assert spec.meta.td == n and spec.meta.extra["P"] == [10, 12.5, 0, 1e3]
    assert spec.meta.start is not None and spec.meta.end.timestamp() == DATE


def test_real_fids_read_as_numpy_reads_them(shared_data: Path) -> None:
    """Every real 1D Bruker fid: the batch read equals a plain numpy read, bit for bit, and the
    metadata are the same whether acqus came through is_params' read or a cold parse."""
    fids = sorted((shared_data / "nmr").rglob("fid"))
    assert fids
    for f in fids:
        (spec,) = read_rows(f.parent)
        assert spec.fid.tobytes() == _plain_read(f.parent)[: spec.meta.td].tobytes(), f
        bruker_params._ACQUS_CACHE.clear()
        bruker_params._LAST_READ[0] = None
        cold = read_bruker(f.parent)
        assert cold.meta == spec.meta, f
        assert cold.fid.tobytes() == spec.fid.tobytes(), f
        with bruker_words.recycled_arrays():  # as ingest_paths reads them: into reused arrays
            for _ in range(2):
                (again,) = read_rows(f.parent)
                assert again.fid.tobytes() == spec.fid.tobytes() and again.meta == spec.meta, f
                del again


def test_is_params_read_is_reused_only_for_the_same_file_state(tmp_path: Path) -> None:
    truth = _write_expno(tmp_path / "1", _decay(256, 1e5, 30.0))
    acqus = tmp_path / "1" / "acqus"
    bruker_params._ACQUS_CACHE.clear()
    assert is_params(acqus)
    assert bruker_params._LAST_READ[0][1] == acqus.read_bytes()
    acqus.write_text(acqus.read_text(encoding="latin-1").replace("##$NS= 4", "##$NS= 16"), encoding="latin-1")
    assert read_acqus(acqus)["NS"] == 16  # rewritten after is_params: read again, not the stale bytes
    assert read_bruker(tmp_path / "1").fid.tobytes() == truth.tobytes()


# --------------------------------------------------------------------------- same errors


def test_bad_files_keep_their_errors(tmp_path: Path) -> None:
    fid = _decay(4096, 2e5, 30.0)
    _write_expno(tmp_path / "flip", fid, bytorda=1)  # little-endian words, acqus says big
    with pytest.raises(IngestError, match=r"acqus: BYTORDA 1 declares .*byte order flipped"):
        read_rows(tmp_path / "flip")
    _write_expno(tmp_path / "short", fid)
    f = tmp_path / "short" / "fid"
    f.write_bytes(f.read_bytes()[:-4096])
    with pytest.raises(IngestError, match=r"fid holds 7168 points but acqus TD says 8192"):
        read_rows(tmp_path / "short")
    _write_expno(tmp_path / "nan", np.full(64, np.nan + 0j), dtypa=2)
    with pytest.raises(IngestError, match=r"FID holds 64 non-finite value\(s\) \(NaN/inf\), the first at point 0"):
        read_rows(tmp_path / "nan")


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_finite_dot_proof_finds_every_non_finite_value(dtype: type) -> None:
    for bad in (np.nan, np.inf, -np.inf):
        a = np.ones(1000, dtype)
        a[537] = bad if dtype is np.float64 else complex(1.0, bad)
        with pytest.raises(IngestError, match="holds 1 non-finite value.*the first at point 537"):
            _finite(Path("x"), "FID", a)
    _finite(Path("x"), "FID", np.full(100, 1e300, dtype))  # squares overflow: the exact test passes


def test_integer_array_lines_parse_as_before() -> None:
    for tokens in (["0", "1", "-3", "+7", "1_0"], ["1", "2.5", "1e3", "inf", "-inf", "nan", "x", "<a>"], ["9" * 5000]):
        got, want = _jcamp_values(tokens), [_jcamp_value(t) for t in tokens]
        assert [type(g) for g in got] == [type(w) for w in want]
        assert all(g == w or (np.isnan(g) and np.isnan(w)) for g, w in itertools.zip_longest(got, want))
