"""Generate ``tutorial.ipynb`` (no outputs stored) with nbformat.

Run ``python notebooks/make_tutorial.py``; the test suite executes every notebook in this
folder (tests/test_notebooks.py), so the tutorial cannot rot.  It reads the real instrument
files (the ``shared/data`` folder next to the repository) when they are there and falls back to a synthetic spectrum when
they are not.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from _nbwrite import python_notebook, write_notebook

CELLS = [
    new_markdown_cell("""# From a real spectrum to observables: a tutorial

1. read a real ¹H spectrum (Bruker TopSpin) and process it,
2. plot it in ppm,
3. calibrate the peak windows on it (`flowcell calibrate` does the same from the shell),
4. extract the observables (shift, width, area of every window),
5. look at a series (an arrayed experiment, 8 spectra over several hours),
6. export the table and the calibrated windows.

The files are the NMRPy test data in the `shared/data` folder next to the repository (a D₂O sample and a presaturated H₂O
series; not flow-battery electrolytes, so there is no quinone in them: the calibration must
*report* their lines, not call them DHAQ). Without those files the notebook uses a synthetic
DHAQ spectrum instead."""),
    new_code_cell("""import os, tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

import ingest
from ingest.processing.calibrate import calibrate
from ingest.processing.calibrate_plot import plot_calibration
from ingest.processing.observables import Extractor, ObservablesConfig, process_for_config
from ingest.processing.observables_toml import write_observables

DATA = Path(os.environ.get("FLOWCELL_SHARED_DATA", Path.cwd().resolve().parents[1] / "shared" / "data"))
REAL = (DATA / "nmr" / "bruker-1h-d2o" / "1").is_dir()
print("real files:", DATA if REAL else "absent: using a synthetic spectrum")"""),
    new_markdown_cell("""## 1–2. Read, process, plot in ppm

`ingest.read` takes an expno folder (or a Spinsolve folder, a JCAMP-DX file, ...). Processing:
digital-filter removal, 0.5 Hz line broadening, zero filling, Fourier transform, phase (the
operator's phase when TopSpin's processed `1r` is there, else automatic), a robust baseline that
is never extrapolated over signal. The axis is **not** referenced to the water line: the water
shift is itself an observable (bulk susceptibility, docs/physics.md §1.3)."""),
    new_code_cell("""def synthetic(shift=0.0, seed=0):
    \"\"\"A DHAQ-like spectrum at 400 MHz (water, three ring protons, methanol) moved by `shift` ppm.\"\"\"
    from ingest.processing.nmr import simulate_fid
    from ingest.types import NMRMeta, NMRSpectrum
    lines = [(4.79 + shift, 500.0, 2.0), (7.45 + shift, 5.0, 1.5), (7.05 + shift, 5.0, 1.5),
             (7.72 + shift, 5.0, 1.5), (3.34 + shift, 1.5, 1.5)]
    kw = dict(td=16384, sw_hz=4800.0, sfo1_hz=400.13e6, carrier_ppm=5.5)
    fid = simulate_fid(lines, noise_sd=0.01, seed=seed, **kw)
    meta = NMRMeta(path=Path(f"synthetic/{seed}"), vendor="jcampdx", nucleus="1H", sfo1_hz=400.13e6,
                   bf1_hz=400.13e6, sw_hz=4800.0, carrier_ppm=5.5, td=16384, ns=1)
    return NMRSpectrum(fid=fid, meta=meta)

spec = ingest.read(DATA / "nmr" / "bruker-1h-d2o" / "1") if REAL else synthetic()
proc = process_for_config(spec, ObservablesConfig.default())
print(f"{spec.meta.path}: {spec.meta.sfo1_hz / 1e6:.2f} MHz, {spec.meta.td} points, "
      f"phase {proc.p0_deg:.1f}/{proc.p1_deg:.1f} deg ({proc.params['phase_source']}), baseline {proc.params['baseline']}")
fig, ax = plt.subplots(figsize=(10, 3.5))
ax.plot(proc.ppm, proc.real, lw=0.7, color="k")
ax.set_xlim(10, -0.5)          # ppm axes run right to left
ax.set_xlabel("δ / ppm"); ax.set_ylabel("intensity / a.u.")
plt.show()"""),
    new_markdown_cell("""## 3. Calibrate the windows

`calibrate` picks the lines above the noise (multiplets grouped), assigns them to the expected
lines of a species (defined once in `ingest/processing/lines.py`: positions, multiplicities,
couplings, protons), and builds windows centred on the measured lines, sized from their widths
and SNR. The windows then *follow* the water line from spectrum to spectrum.

This sample holds no quinone, so with `quinone="DHAQ"` nothing may be assigned to DHAQ: the report
says what is missing and which lines are unexplained, and why."""),
    new_code_cell("""as_dhaq = calibrate(spec, quinone="DHAQ")
print(as_dhaq.report())
if REAL:
    assert not any(name.startswith("dhaq") for name in as_dhaq.assigned)   # nothing invented"""),
    new_markdown_cell("""With `quinone=None` every line found gets its own window (`line_<ppm>`), and the water line
is the reference the windows follow:"""),
    new_code_cell("""cal = calibrate(spec, quinone=None if REAL else "DHAQ")
print(cal.report())
fig = plot_calibration(cal)
display(fig)
assert "hdo" in cal.assigned and abs(cal.assigned["hdo"].ppm - (4.704 if REAL else 4.79)) < 0.002"""),
    new_markdown_cell("""## 4. Extract the observables

An `Extractor` turns each spectrum into one table row: for every window the fitted shift (ppm),
width (Hz), area and their errors, plus `window_offset_ppm` (how far the windows moved) and
`nmr_warnings` (assignment checks: a line off its expected position, two windows on one line,
areas per proton that disagree within a species, a line at a window edge)."""),
    new_code_cell("""ex = Extractor(cal.config)
row = ex(spec)
cols = [c for c in row if c.endswith(("_shift_ppm", "_fwhm_Hz", "_area"))]
display(pd.Series({c: row[c] for c in cols}).to_frame("value").head(12))
print("warnings:", row["nmr_warnings"] or "none")"""),
    new_markdown_cell("""## 5. A series

The arrayed H₂O experiment: 8 spectra over several hours. Its water line is presaturated
(suppressed and distorted), so the calibration does not use it as the reference (it says so);
the windows stay where the first spectrum put them. `ingest.ingest_paths` is the batch path that
`flowcell ingest` uses."""),
    new_code_cell("""if REAL:
    folders = sorted((DATA / "nmr" / "bruker-array").iterdir(), key=lambda p: int(p.name))
    cal_s = calibrate(ingest.read(folders[0]), quinone=None)
    print(cal_s.report().splitlines()[0]); print(cal_s.missing.get("hdo", ""))
    table = ingest.ingest_paths(folders, cal_s.config).table
else:
    cal_s = cal
    table = pd.DataFrame([Extractor(cal.config)(synthetic(shift=d, seed=k))
                          for k, d in enumerate(np.linspace(0, 0.3, 6))])
    table["t_s"] = np.arange(len(table)) * 600.0
big = max((n for n in cal_s.assigned) if not REAL else
          (p.name for p in cal_s.config.nmr.peaks if p.name.startswith("line_")),
          key=lambda n: np.nanmedian(table[f"{n}_area"]))
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
a1.plot(table["t_s"] / 3600, table[f"{big}_area"] / table[f"{big}_area"].iloc[0], "o-")
a1.set_xlabel("t / h"); a1.set_ylabel(f"{big} area / first")
a2.plot(table["t_s"] / 3600, (table[f"{big}_shift_ppm"] - table[f"{big}_shift_ppm"].iloc[0]) * 1e3, "o-")
a2.set_xlabel("t / h"); a2.set_ylabel(f"{big} shift change / (10⁻³ ppm)")
plt.tight_layout(); plt.show()
assert len(table) == (8 if REAL else 6)"""),
    new_markdown_cell("""## 6. Export

The table goes to CSV (or Parquet); the calibrated windows to an observables TOML that
`flowcell ingest DATA --observables observables.toml` (and `flowcell watch` / `fit`) read back."""),
    new_code_cell("""out = Path(tempfile.mkdtemp(prefix="flowcell-tutorial-"))
table.to_csv(out / "series.csv", index=False)
path = write_observables(cal.config, out / "observables.toml", header=cal.report())
assert ObservablesConfig.from_toml(path).nmr == cal.config.nmr   # reads back identically
print(path.read_text()[:900])"""),
    new_markdown_cell("""## Adjusting a window by hand (Jupyter only)

With `ipywidgets` installed, move and resize one window and see what it catches; the result is an
ordinary `ObservablesConfig` you can write as above. Without it (or outside Jupyter) this cell
only says so."""),
    new_code_cell("""from dataclasses import replace
try:
    import ipywidgets as widgets
except ImportError:
    widgets = None
if widgets is None:
    print("ipywidgets is not installed: pip install ipywidgets for the interactive window editor")
else:
    names = [p.name for p in cal.config.nmr.peaks]

    def show(name=names[0], centre=None, half_width=0.05):
        p = cal.config.nmr.peak(name)
        c = p.expected_ppm if centre is None else centre
        new = replace(p, window_ppm=(c - half_width, c + half_width), ppm=c)
        peaks = tuple(new if q.name == name else q for q in cal.config.nmr.peaks)
        cfg = replace(cal.config, nmr=replace(cal.config.nmr, peaks=peaks))
        r = Extractor(cfg)(spec)
        f, ax = plt.subplots(figsize=(8, 3))
        m = (proc.ppm > c - 4 * half_width) & (proc.ppm < c + 4 * half_width)
        ax.plot(proc.ppm[m], proc.real[m], "k", lw=0.8); ax.axvspan(*new.window_ppm, alpha=0.2, color="tab:green")
        ax.invert_xaxis(); ax.set_xlabel("δ / ppm"); plt.show()
        print(f"{name}: {r[name + '_shift_ppm']:.4f} ppm, area {r[name + '_area']:.4g}; {r['nmr_warnings'] or 'no warnings'}")

    first = cal.config.nmr.peak(names[0]).expected_ppm
    widgets.interact(show, name=names, centre=widgets.FloatSlider(value=first, min=first - 1, max=first + 1, step=0.001),
                     half_width=widgets.FloatSlider(value=0.05, min=0.005, max=0.5, step=0.005))"""),
]


def build() -> nbformat.NotebookNode:
    """The tutorial notebook (no outputs)."""
    return python_notebook(CELLS)


def main() -> Path:
    return write_notebook(build(), "tutorial.ipynb")


if __name__ == "__main__":
    print(main())
