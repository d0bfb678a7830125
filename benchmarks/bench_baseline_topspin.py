"""Baselines against TopSpin's own processed spectrum (issue 11 item 5).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_baseline_topspin.py

For every Bruker set in shared/data/nmr/bruker-array next to the repository (they carry pdata/1/1r) it prints,
for the package's default processing and for pybaselines' fabc/arpls/snip/dietrich (default
parameters) applied to the same phased spectrum: the correlation with 1r over the whole
spectrum (target >= 0.995) and the worst windowed-integral error relative to the largest line
(windows: every region of 1r above 2 % of its maximum, widened by 60 points; local linear
baseline from each window's edges, the same on both spectra; target < 1 %).  Also the time
per spectrum of the default baseline.
"""

from __future__ import annotations

from flowcell.cli import one_blas_thread  # light: loads no numpy

one_blas_thread()  # before numpy loads, as the `flowcell` command does (docs/conventions.md)

import time
from pathlib import Path

import nmrglue as ng
import numpy as np
from scipy import ndimage

from ingest.processing.nmr import process_fid
from ingest.processing.nmr_baseline import baseline
from ingest.processing.observables import ObservablesConfig, process_for_config
from ingest.processing.peaks import integrate_window
from ingest.readers.dispatch import read

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nmr" / "bruker-array"


def _topspin(folder: Path):
    dic, real = ng.bruker.read_pdata(str(folder / "pdata" / "1"), scale_data=True)
    p = dic["procs"]
    ppm = p["OFFSET"] - np.arange(p["SI"]) * p["SW_p"] / p["SF"] / p["SI"]
    return ppm + (p["SF"] - dic["acqus"]["BF1"]) / p["SF"] * 1e6, np.asarray(real, float)


def _score(ppm, y, t_ppm, t_real, sfo1):
    ours = np.interp(-t_ppm, -ppm, y)
    corr = float(np.corrcoef(ours, t_real)[0, 1])
    m = ndimage.binary_dilation(np.abs(t_real) > 0.02 * np.abs(t_real).max(), iterations=60)
    lab, _ = ndimage.label(m)
    wins = [(t_ppm[s[0].stop - 1], t_ppm[s[0].start]) for s in ndimage.find_objects(lab)]
    a = np.array([integrate_window(ppm, y, w, sfo1_hz=sfo1, baseline="linear").area for w in wins])
    b = np.array([integrate_window(t_ppm, t_real, w, sfo1_hz=sfo1, baseline="linear").area for w in wins])
    big = int(np.argmax(np.abs(b)))
    return corr, float(np.max(np.abs(a * b[big] / a[big] - b)) / abs(b[big]))


def main() -> None:
    if not DATA.is_dir():
        print(f"no data at {DATA}")
        return
    try:
        from pybaselines import Baseline
    except ImportError:  # optional comparison
        Baseline = None
    cfg = ObservablesConfig.default()
    rows = []
    for folder in sorted(DATA.iterdir(), key=lambda p: int(p.name)):
        spec = read(folder)
        t_ppm, t_real = _topspin(folder)
        proc = process_for_config(spec, cfg)
        raw = process_fid(spec, baseline=False, phase=proc.phase)
        t0 = time.perf_counter()
        baseline(raw.ppm, raw.real, order=3)
        dt = time.perf_counter() - t0
        res = {"default": _score(proc.ppm, proc.real, t_ppm, t_real, proc.sfo1_hz)}
        if Baseline is not None:
            x = raw.ppm[::-1]
            for name in ("fabc", "arpls", "snip", "dietrich"):
                bl = getattr(Baseline(x), name)(raw.real[::-1])[0][::-1]
                res[name] = _score(raw.ppm, raw.real - bl, t_ppm, t_real, proc.sfo1_hz)
        rows.append(res)
        print(f"{folder.name:>3}: " + "  ".join(f"{k} r={c:.5f} int={e * 100:.2f}%" for k, (c, e) in res.items())
              + f"  (default baseline {dt * 1e3:.1f} ms, phase from {proc.params.get('phase_source')})")
    for k in rows[0]:
        c = min(r[k][0] for r in rows)
        e = max(r[k][1] for r in rows)
        print(f"{k:>9}: worst correlation {c:.5f} (target >= 0.995, ratio {c / 0.995:.4f}); "
              f"worst integral error {e * 100:.2f} % of the largest line (target < 1 %, ratio {e / 0.01:.2f})")


if __name__ == "__main__":
    main()
