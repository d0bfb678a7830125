"""The digital-filter convention against TopSpin's processed spectra, on every expno that has them.

For each expno of ``shared/data/nmr/bruker-array`` with ``pdata/1/1r`` and ``1i``, prints the
relative rms residual (after the best real scale) of the magnitude |1r + i·1i| against:

* ``process_fid`` (the package: raw FID, EM from GD, zero fill, FFT, the delay as a linear phase
  of the zero-filled transform; docs/physics.md §5.1), TopSpin's point i matched with the
  package's vendor point i − 1 (TopSpin's first point is the +Nyquist bin);
* the former convention: ``remove_digital_filter`` (circular shift over the acquired length,
  ceil(GD) points dropped), EM, zero fill, FFT with the first point halved.

A residual near the int32 storage of 1r/1i (~2e-8) means the same spectrum.  Tests:
tests/test_topspin_filter.py (two expnos, with the phase).

Usage::

    PYTHONPATH=. python benchmarks/bench_topspin_filter.py [--data DIR]   (default: shared/data next to the repository)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nmrglue as ng
import numpy as np

from ingest.processing import nmr as npc
from ingest.readers.bruker import read_bruker

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rel_rms(theirs: np.ndarray, ours: np.ndarray) -> float:
    c = float(ours @ theirs) / float(ours @ ours)
    return float(np.linalg.norm(theirs - c * ours) / np.linalg.norm(theirs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    root = args.data / "nmr" / "bruker-array"
    folders = sorted((f for f in root.glob("*") if (f / "pdata" / "1" / "1i").exists()), key=lambda f: int(f.name))
    if not folders:
        print(f"no TopSpin-processed expnos under {root}")
        return 0
    new, old = [], []
    for folder in folders:
        spec = read_bruker(folder)
        dic, (re, im) = ng.bruker.read_pdata(str(folder / "pdata" / "1"), all_components=True)
        procs = dic["procs"]
        theirs = np.abs(np.asarray(re, float) + 1j * np.asarray(im, float))
        si, lb, sw = int(procs["SI"]), float(procs["LB"]), spec.meta.sw_hz
        gd = npc.group_delay_points(spec.meta)
        zf = si // (1 << int(np.ceil(np.log2(spec.fid.size))))
        proc = npc.process_fid(spec, lb_hz=lb, zero_fill=zf, phase=(0.0, 0.0), baseline=False)
        assert proc.real.size == si
        ours = np.roll(np.abs(proc.real + 1j * proc.imag), 1)
        x = npc.apodize(npc.remove_digital_filter(np.asarray(spec.fid), gd), sw, lb)
        former = np.roll(np.abs(npc.fft(npc.zero_fill(x, zf), sw, first_point=0.5)), 1)
        new.append(_rel_rms(theirs, ours))
        old.append(_rel_rms(theirs, former))
        print(f"expno {folder.name:>3}: GD {gd:g}, SI {si}: package {new[-1]:.2e}, former convention {old[-1]:.2e}")
    print(f"RESULT | magnitude of TopSpin's 1r + i 1i vs process_fid, {len(new)} expnos (worst) | {max(new):.1e} | "
          f"int32 storage ~2e-8 | {max(new) / 2e-8:.2f}")
    print(f"RESULT | the same vs the former convention (circular shift over TD), best to worst | "
          f"{min(old):.1e} to {max(old):.1e} | - | -")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
