"""FIDs kept as their stored words in batch reprocessing (ingest/readers/stored_fid.py).

* inside ``deferred_fids()`` a Bruker 1D expno reads as a ``WordsSpectrum`` whose ``fid``, on first
  access, is the plain read's FID bit for bit (int32 words generated here with numpy only, NC != 0);
  outside it, or for float64 data, the plain spectrum;
* the batch engine's compiled pass reads the words themselves and gives the plain FID's rows bit
  for bit (``prep_split`` of the words = of the converted FID), and ``ingest_paths`` the
  same table with and without the deferral.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from ingest.readers.bruker_words import recycled_arrays
from ingest.readers.dispatch import read_rows
from ingest.readers.stored_fid import WordsSpectrum, deferred_fids
from ingest.types import NMRSpectrum


def _expno(root, k: int, rng: np.random.Generator, nc: int = -3, td: int = 4096):
    """A Bruker expno (acqus + int32 fid), written with numpy only: a decaying line + noise."""
    d = root / str(10 + k)
    d.mkdir(parents=True)
    t = np.arange(td) / 5000.0
    z = 2e6 * np.exp(2j * np.pi * 600.0 * t - t / 0.3) + rng.normal(0, 3e3, td) + 1j * rng.normal(0, 3e3, td)
    w = np.empty(2 * td, dtype="<i4")
    w[0::2], w[1::2] = np.round(z.real), np.round(z.imag)
    (d / "fid").write_bytes(w.tobytes())
    stamp = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()) + 60 * k
    (d / "acqus").write_text(
        "##TITLE= Parameter file\n##JCAMPDX= 5.0\n##$BF1= 400.13\n##$BYTORDA= 0\n##$DATE= %d\n##$DECIM= 1\n"
        "##$DSPFVS= 20\n##$DTYPA= 0\n##$GRPDLY= 0\n##$NC= %d\n##$NS= 1\n##$DS= 0\n##$NUC1= <1H>\n##$O1= 1880.611\n"
        "##$SFO1= 400.131880611\n##$SW_h= 5000\n##$TD= %d\n##$TE= 298\n##END=\n" % (stamp, nc, 2 * td))
    return d


def test_words_spectrum_is_the_plain_read(tmp_path):
    d = _expno(tmp_path, 0, np.random.default_rng(1))
    plain = read_rows(d)[0]
    with recycled_arrays(), deferred_fids():
        lazy = read_rows(d)[0]
        assert type(lazy) is WordsSpectrum and lazy.words is not None and lazy.words.dtype == np.int32
        assert lazy.scale == 2.0 ** -3 and lazy.meta == plain.meta
        assert np.array_equal(lazy.fid.view(np.uint64), plain.fid.view(np.uint64))  # converted on access
        assert lazy.words is None and lazy.fid is lazy.fid  # once
    again = dataclasses.replace(lazy, processed=None)
    assert np.array_equal(again.fid, plain.fid)
    assert type(read_rows(d)[0]) is NMRSpectrum  # outside the context: the plain spectrum


def test_batch_rows_from_words_equal_rows_from_the_fid(tmp_path):
    from ingest.batch import ingest_paths
    from ingest.processing import zf_fft_nb
    from ingest.processing.batch_nmr import BatchExtractor
    from ingest.processing.lorentz_batch import load_compiled

    if not load_compiled() or zf_fft_nb.load() is None:
        pytest.skip("compiled kernels not available (no numba, or FLOWCELL_NUMBA=0)")
    rng = np.random.default_rng(2)
    paths = [_expno(tmp_path, k, rng) for k in range(9)]
    plain = [s for p in paths for s in read_rows(p)]
    with recycled_arrays(), deferred_fids():
        lazy = [s for p in paths for s in read_rows(p)]
    ex_a, ex_b = BatchExtractor(chunk=4), BatchExtractor(chunk=4)
    a, b = pd.DataFrame(ex_a.rows(plain)), pd.DataFrame(ex_b.rows(lazy))
    assert ex_b.stats.get("complex64", 0) == 8  # the words went through the compiled pass
    assert sum(1 for s in lazy if type(s) is WordsSpectrum and s.words is not None) == 8  # never converted
    pd.testing.assert_frame_equal(a, b)  # bit for bit
    import ingest.batch as batch
    t1 = ingest_paths(paths).table
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch, "deferred_fids", contextlib.nullcontext)  # the FIDs converted as they are read
        t2 = ingest_paths(paths).table
    pd.testing.assert_frame_equal(t1, t2)
