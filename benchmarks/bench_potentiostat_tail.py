"""Benchmark of flowcell.potentiostat.PotentiostatTail on a 24-hour EC-Lab log.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_potentiostat_tail.py [--hours 24] [--chunk 60]

A small generator (no package imports) writes an EC-Lab ``.mpt`` (Latin-1, decimal
commas, 1 row/s: 86,400 rows for 24 h) in chunks of ``--chunk`` rows, as EC-Lab would
while running; after each chunk the tail's ``update()`` reads what is new.  Printed:

* the cost per new row (µs) in the first and in the last hour of the log, and their
  ratio (1 = independent of the log's length; the requirement is < 1 ms per row);
* the floor: a bare ``open/seek/read`` of the same new bytes, and the ratio to it;
* a one-shot ``read_potentiostat`` of the whole file at the end, for comparison
  (what re-reading the log at every update would cost).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from flowcell.potentiostat import PotentiostatTail, read_potentiostat

HEADER = ("EC-Lab ASCII FILE\nNb header lines : 6\n\nGalvanostatic Cycling with Potential Limitation\n"
          "Acquisition started on : 03/04/2026 10:20:30.500\n"
          "mode\tox/red\ttime/s\tcontrol/mA\t<I>/mA\tEwe/V\t(Q-Qo)/mA.h\tcycle number\t\n")


def rows(t0: int, n: int, q0: float) -> tuple[bytes, float]:
    """``n`` rows from ``t0`` s: 3-hour charge/discharge square wave at +-50 mA (interval means)."""
    t = np.arange(t0, t0 + n, dtype=float)
    cur = np.where((t // 10800) % 2 == 0, 50.0, -50.0)
    q = q0 + np.cumsum(cur) / 3600.0
    text = "".join(f"1\t{int(c > 0)}\t{a:.15E}\t{c:.7E}\t{c:.7E}\t{1.2 + c / 500:.7E}\t{b:.15E}\t"
                   f"{int(a // 21600):.15E}\n" for a, c, b in zip(t, cur, q))
    return text.replace(".", ",").encode("latin-1"), float(q[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--chunk", type=int, default=60, help="rows appended between two updates")
    a = ap.parse_args()
    n_total = int(a.hours * 3600)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "run.mpt"
        path.write_bytes(HEADER.encode("latin-1"))
        tail = PotentiostatTail(path)
        tail.update()
        q = 0.0
        per_row, floor, t_at = [], [], []
        offset = len(HEADER)
        for t0 in range(0, n_total, a.chunk):
            n = min(a.chunk, n_total - t0)
            data, q = rows(t0, n, q)
            with open(path, "ab") as fh:
                fh.write(data)
            c0 = time.perf_counter()
            got = tail.update()
            c1 = time.perf_counter()
            with open(path, "rb") as fh:  # the floor: read the same new bytes, nothing else
                fh.seek(offset)
                fh.read(len(data))
            c2 = time.perf_counter()
            offset += len(data)
            assert got == n, (got, n)
            per_row.append((c1 - c0) / n)
            floor.append((c2 - c1) / n)
            t_at.append(t0)
        t_at, per_row, floor = map(np.asarray, (t_at, per_row, floor))
        first, last = t_at < 3600, t_at >= n_total - 3600
        expect_q = float(np.sum(np.where((np.arange(n_total) // 10800) % 2 == 0, 50.0, -50.0)[1:])) * 1e-3
        c0 = time.perf_counter()
        df = read_potentiostat(path)
        one_shot = time.perf_counter() - c0
        size_mb = path.stat().st_size / 1e6
    us = 1e6
    print(f"log: {n_total} rows ({a.hours:g} h at 1 row/s, {size_mb:.1f} MB), appended {a.chunk} rows at a time")
    print(f"update cost per new row: first hour {np.median(per_row[first]) * us:.2f} us, "
          f"last hour {np.median(per_row[last]) * us:.2f} us "
          f"(ratio last/first {np.median(per_row[last]) / np.median(per_row[first]):.2f}; requirement < 1000 us)")
    print(f"floor (bare read of the new bytes): {np.median(floor) * us:.3f} us/row; "
          f"tail / floor = {np.median(per_row) / np.median(floor):.0f}x")
    print(f"one-shot read_potentiostat of the whole {a.hours:g} h file: {one_shot * 1e3:.0f} ms "
          f"(= {one_shot / (a.chunk * np.median(per_row)):.0f}x one update)")
    last_us = np.median(per_row[last]) * us
    print(f"RESULT | potentiostat tail: cost per new row in the last hour of a {a.hours:g} h EC-Lab log "
          f"(first hour {np.median(per_row[first]) * us:.1f} us) | {last_us:.1f} us | <= 1000 us | {last_us / 1000:.3f}")
    print(f"RESULT | potentiostat tail vs a bare read of the same new bytes | "
          f"{np.median(per_row) * us:.1f} us/row | {np.median(floor) * us:.2f} us/row | "
          f"{np.median(per_row) / np.median(floor):.0f}")
    print(f"count at the end: tail {tail.charge_at(float(n_total - 1)):.6f} C, reader {df['Q_C'].iloc[-1]:.6f} C, "
          f"exact {expect_q:.6f} C")


if __name__ == "__main__":
    main()
