"""Screening workers set a series up once per process (BatchExtractor.primed_copy, flowcell.screen.tasks._primed).

* A primed copy gives the rows of a fresh extractor primed on the same spectrum, whatever the
  copies before it processed (a second series met in one chunk does not leak into the next).
* The per-process cache keys on the files' stamps: a rewritten first acquisition is primed again.

Data: Bruker expnos written by tests/generators/bruker_expno.py (imports nothing from the package).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from generators.bruker_expno import GD, fid, write_expno
from ingest.batch import find_acquisitions
from ingest.processing.batch_nmr import BatchExtractor
from ingest.readers.dispatch import read_rows


def _write(root, n=10, seed=6):
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    lines = ((4.79, 10.0, 1.0), (7.45, 1.0, 3.0), (7.05, 1.0, 3.0), (7.72, 1.0, 3.0))
    for k in range(n):
        td = 4096 if k in (6, 7) else 8192  # a second series inside the first chunk
        write_expno(root / str(10 + k), fid(lines, td, phase_deg=-30.0, noise=2e-3, rng=rng, group_delay=GD),
                    t0 + timedelta(minutes=k))
    return find_acquisitions(root)


def test_primed_copy_rows_equal_a_fresh_primed_extractor(tmp_path):
    paths = _write(tmp_path)
    first = read_rows(paths[0])[0]
    chunks = [[s for p in paths[1:8] for s in read_rows(p)], [s for p in paths[5:] for s in read_rows(p)]]
    base = BatchExtractor()
    base.prime(first)
    assert len(base._series) == 1
    got = []
    for chunk in chunks:
        got.append(pd.DataFrame(base.primed_copy().rows(chunk)))
        assert len(base._series) == 1  # the copies' own series stay theirs
    for chunk, g in zip(chunks, got):
        fresh = BatchExtractor(phase=base.phase)
        fresh.prime(first)
        pd.testing.assert_frame_equal(g, pd.DataFrame(fresh.rows(chunk)))
    assert np.abs(got[1]["hdo_shift_ppm"] - 4.79).max() < 1e-3


def test_worker_cache_primes_again_after_a_rewrite(tmp_path):
    from flowcell.screen import tasks

    paths = _write(tmp_path, n=2)
    cfg = tmp_path / "experiment.toml"
    cfg.write_text("# placeholder: only its stamp is used here\n")
    s1 = tasks._stamp(str(cfg), str(paths[0]))
    assert s1 == tasks._stamp(str(cfg), str(paths[0]))
    fid_file = paths[0] / "fid"
    st = fid_file.stat()
    os.utime(fid_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # rewritten: a newer file
    assert tasks._stamp(str(cfg), str(paths[0])) != s1
