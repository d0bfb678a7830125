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
* ``is_params`` hands the whole small parameter file to ``read_acqus`` (no second read);
* a parameter file differing from the last one parsed in a few one-line values or ``$$``
  comments (consecutive expnos: date, path, ``DATE``) is parsed by patching the last one's
  entries (:func:`ingest.readers.bruker_params._parse_like`): the same entries, in the same
  order, as a full parse, on real files, on altered ones and along a generated series.

Expnos are written by :func:`_write_expno`, a generator that imports nothing from the package
(acqus text, fid words in either byte order and type, optional block padding).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from ingest.readers import bruker_params, bruker_words
from ingest.readers.bruker import _join, is_params, read_bruker
from ingest.readers.bruker_params import (
    _jcamp_value,
    _jcamp_values,
    _parse_like,
    parse_jcamp,
    read_acqus,
)
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
        bruker_params._LAST_PARSED.clear()
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


# --------------------------------------------------------------------------- acqus patched from the last one

_ACQUS = (
    "##TITLE= Parameter file, TopSpin\t\tVersion 4.1.4\n##JCAMPDX= 5.0\n##ORIGIN= Bruker BioSpin GmbH\n"
    "$$ 2025-11-24 10:00:00.000 +0100  nmr@spect\n$$ /opt/data/run/1/acqus\n##$AQ_mod= 3\n##$BF1= 400.13\n"
    "##$BYTORDA= 0\n##$CPDPRG= (0..3)\n<> <waltz16> <> <>\n##$D= (0..7)\n0 1 0 0 0 0 0\n0.003\n"
    "##$DATE= 1764000000\n##$DE= 6.5\n##$EXP= <a comment\nover ##$TWO= lines>\n##$FQ1LIST= <freqlist>\n"
    "##$LOCKED= yes\n##$NS= 4\n##$NUC1= <1H>\n##$O1= 1880.611\n##$RG= 101\n##$NS= 8\n##$SW_h= 8000\n"
    "##$TD= 65536\n##$TE= 298.1\n##$EMPTY=\n##$WORD= abc\n##END=\n$$ after the end\n##$AFTER= 1\n"
)


def _same_parse(text: str, last: tuple | None) -> tuple:
    got, new = _parse_like(text.encode("latin-1"), last)
    want = parse_jcamp(text)
    assert got == want and list(got) == list(want), text
    assert [type(got[k]) for k in got] == [type(want[k]) for k in want]
    if last is not None:  # no list shared with the last file's entries (arrays, comments)
        assert not any(type(v) is list and v is last[1].get(k) for k, v in got.items())
    return new


def test_patched_parse_equals_full_parse_on_altered_files() -> None:
    """Every single-line alteration of a parameter file (values, types, comments, a stop, an
    array or string opened, a key renamed, a duplicated key, continuation lines, text after
    the end, CR-LF line ends) and random multi-line ones: patched or parsed in full, the
    entries are a full parse's; the patch is taken where it should be."""
    _, base = _parse_like(_ACQUS.encode("latin-1"), None)
    lines = _ACQUS.split("\n")
    subs = ["##$DATE= 1764000060", "##$DATE= 1764000060.5", "##$DATE= yes", "##$DATE=", "##$DATE= x y",
            "##$DATE= (0..1)", "##$DATE= <1>", "##$DATX= 1", "", "##END=", "$$ another comment", "##NEW= 1",
            "0 1 2", "<x>", "##$NS= 16", "$$", "##$D= 5", "   ", "##$TD= 1e5", "##$RG= inf", "##$O1= -3"]
    patched = 0
    for i in range(len(lines)):
        for sub in subs:
            alt = "\n".join(lines[:i] + [sub] + lines[i + 1:])
            new = _same_parse(alt, base)
            patched += new[2] is base[2]
    assert patched >= 12  # the DATE line 5 ways, two comments 2 ways, NS (its last), TD, RG, O1
    rng = np.random.default_rng(3)
    pool = lines + subs
    for _ in range(300):
        alt = list(lines)
        for i in rng.choice(len(lines), int(rng.integers(1, 4)), replace=False):
            alt[i] = pool[int(rng.integers(len(pool)))]
        _same_parse("\n".join(alt), base)
        _same_parse("\r\n".join(alt), base)
    # the patched cases: a date, a comment, the last of a duplicated key; not its first one
    date = _ACQUS.replace("##$DATE= 1764000000", "##$DATE= 1764000060").replace("10:00:00", "10:01:00")
    assert _same_parse(date, base)[2] is base[2]
    assert _same_parse(_ACQUS.replace("##$NS= 8", "##$NS= 16"), base)[2] is base[2]
    assert _same_parse(_ACQUS.replace("##$NS= 4", "##$NS= 16"), base)[2] is not base[2]
    assert _same_parse(_ACQUS.replace("over ##$TWO= lines", "over ##$TWO= line"), base)[2] is not base[2]


def test_patched_parse_pathological_keys_and_changed_entries() -> None:
    """A ``##$_comments=`` entry (it replaces the comment list) and entries changed by their
    user after the read: later files' entries are still a full parse's."""
    odd = _ACQUS.replace("##$BF1= 400.13", "##$_comments= 5\n##$BF1= 400.13")
    _, base = _parse_like(odd.encode("latin-1"), None)
    _same_parse(odd.replace("10:00:00", "10:01:00"), base)
    got, base = _parse_like(_ACQUS.encode("latin-1"), None)
    got["D"][1], got["_comments"][0] = 99, "$$ changed"  # the user's copy, changed
    nxt = _same_parse(_ACQUS.replace("##$DATE= 1764000000", "##$DATE= 1764000060"), base)
    assert nxt is base
    again, _ = _parse_like(_ACQUS.replace("##$NS= 8", "##$NS= 2").encode("latin-1"), nxt)
    again["D"].append(1)
    _same_parse(_ACQUS.replace("##$RG= 101", "##$RG= 64"), nxt)


def test_patched_parse_equals_full_parse_on_real_files(shared_data: Path) -> None:
    """Every real parameter file parsed after every other: a full parse's entries; the
    consecutive acqus of the bruker-array series (date, path, DATE differ) are patched."""
    files = sorted(p for p in (shared_data / "nmr").rglob("*") if p.name in ("acqus", "acqu2s", "procs", "acqu"))
    texts = [p.read_bytes().decode("latin-1") for p in files]
    assert len(texts) >= 10
    for i, a in enumerate(texts):  # each after itself and after its neighbours, both ways
        _, base = _parse_like(a.encode("latin-1"), None)
        for b in texts[max(i - 1, 0):i + 2]:
            _same_parse(b, base)
    series = sorted((shared_data / "nmr" / "bruker-array").glob("*/acqus"), key=lambda p: int(p.parent.name))
    _, last = _parse_like(series[0].read_bytes(), None)
    for p in series[1:]:
        new = _same_parse(p.read_bytes().decode("latin-1"), last)
        assert new[2] is last[2], p  # patched, not parsed again
        last = new


def test_real_series_reads_as_cold_reads(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bruker-array expnos (acqus and pdata/1/procs each) read in order, as ``flowcell
    ingest`` reads them: the acqus and procs after the first are patched, not parsed again,
    and every spectrum (metadata, FID, TopSpin's processed spectrum) equals a cold read's."""
    expnos = sorted((shared_data / "nmr" / "bruker-array").glob("*/acqus"), key=lambda p: int(p.parent.name))
    full = []
    parse = bruker_params._parse_lines
    monkeypatch.setattr(bruker_params, "_parse_lines", lambda lines, where: full.append(1) or parse(lines, where))
    bruker_params._ACQUS_CACHE.clear()
    bruker_params._LAST_PARSED.clear()
    warm = [read_rows(a.parent)[0] for a in expnos]
    assert len(warm) == 8 and len(full) == 2  # the first acqus and the first procs
    for a, spec in zip(expnos, warm):
        bruker_params._ACQUS_CACHE.clear()
        bruker_params._LAST_READ[0] = None
        bruker_params._LAST_PARSED.clear()
        cold = read_bruker(a.parent)
        assert cold.meta == spec.meta and cold.fid.tobytes() == spec.fid.tobytes(), a
        assert cold.processed.tobytes() == spec.processed.tobytes(), a
        assert cold.processed_ppm.tobytes() == spec.processed_ppm.tobytes(), a


def test_generated_series_reads_as_cold_reads(tmp_path: Path) -> None:
    """A series of expnos whose acqus differ in DATE, a comment and once in NS, read in order as
    ``flowcell ingest`` does: each spectrum's metadata equal a cold read's (no cache, no last
    parse); a corrupt TD after a good file keeps its error."""
    fid = _decay(512, 1e5, 30.0)
    for k in range(6):
        _write_expno(tmp_path / str(k), fid)
        a = tmp_path / str(k) / "acqus"
        text = a.read_text(encoding="latin-1").replace(f"##$DATE= {DATE}", f"##$DATE= {DATE + 60 * k}")
        text = text.replace("$$ generator", f"$$ generator, expno {k}")
        a.write_text(text.replace("##$NS= 4", "##$NS= 8") if k == 3 else text, encoding="latin-1")
    bruker_params._LAST_PARSED.clear()
    warm = [read_rows(tmp_path / str(k))[0] for k in range(6)]
    for k, spec in enumerate(warm):
        bruker_params._ACQUS_CACHE.clear()
        bruker_params._LAST_READ[0] = None
        bruker_params._LAST_PARSED.clear()
        cold = read_bruker(tmp_path / str(k))
        assert cold.meta == spec.meta and cold.fid.tobytes() == spec.fid.tobytes()
        assert spec.meta.end.timestamp() == DATE + 60 * k and spec.meta.ns == (8 if k == 3 else 4)
    a = tmp_path / "5" / "acqus"
    a.write_text(a.read_text(encoding="latin-1").replace("##$TD= 1024", "##$TD= 1O24"), encoding="latin-1")
    read_rows(tmp_path / "4")
    with pytest.raises(IngestError, match=r"acqus: TD = '1O24' is not a number"):
        read_rows(tmp_path / "5")


def test_paths_joined_as_os_path_join() -> None:
    """The reader's string paths (concatenated on POSIX) are those of ``os.path.join``."""
    for folder in (Path("/"), Path("/tmp/x"), Path("a/b"), Path("a"), Path("//net/x"), Path("/tmp/x/")):
        for name in ("acqus", "fid", "audita.txt", "pdata" + os.sep + "1" + os.sep):
            assert _join(folder, name) == os.path.join(str(folder), name)
    assert _join(Path("."), "acqus") == "acqus"
