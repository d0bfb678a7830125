"""Generate ``screening_walkthrough.ipynb`` (no outputs stored) with nbformat.

Run ``python notebooks/make_screening_walkthrough.py``; the test suite executes every
notebook in this folder, so the walkthrough cannot rot.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from _nbwrite import python_notebook, write_notebook

CELLS = [
    new_markdown_cell("""# Electrolyte screening, end to end

A *screen* compares many flow-battery experiments: each one is a folder with an
`experiment.toml`, raw NMR (Bruker) and EPR (BES3T) folders and a potentiostat log.
`flowcell.screen.run.screen` reprocesses the raw files (ingest batch path, one task per chunk of
acquisitions), fits each experiment's kinetic model with the same function as `flowcell fit`
(one task per experiment), derives the capacity fade per day, and writes one comparison table,
plots and `screen_report.md`. The same call runs serially, on all local cores (`'local'`, the
default) or on Dask (`'dask'`, a local cluster or `scheduler_address=`). Results are cached per
experiment, so a rerun only redoes what changed.

Here: three **simulated** DHAQ experiments at 288, 298 and 308 K whose decomposition rate
follows an Arrhenius law (Ea = 60 kJ/mol, ASSUMED, like every simulator number; docs/physics.md §2.6).
The command-line equivalent is `flowcell screen EXPERIMENTS -o OUT`."""),
    new_code_cell("""import math, tempfile, time
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from flowcell.screen.run import screen, simulate_screen
from flowcell.screen.report import R_GAS, arrhenius

work = Path(tempfile.mkdtemp(prefix="flowcell-screen-"))
Ea_true, k298 = 60e3, 6e-6                      # J/mol, 1/s (ASSUMED)
temps = {"dhaq-288K": 288.15, "dhaq-298K": 298.15, "dhaq-308K": 308.15}
truth = {n: k298 * math.exp(-Ea_true / R_GAS * (1 / T - 1 / 298.15)) for n, T in temps.items()}
variants = [{"name": n, "temperature_K": T, "params": {"k_dec": truth[n], "Kc": 0.1}} for n, T in temps.items()]
t0 = time.perf_counter()
sims = simulate_screen(work / "experiments", variants, hours=1.0, interval_s=300)  # small: 12 NMR + 12 EPR each
print(f"simulated {len(sims)} experiments in {time.perf_counter() - t0:.1f} s:")
for n, k in truth.items():
    print(f"  {n}: true k_dec = {k:.3g} 1/s")"""),
    new_markdown_cell("""## Run the screen

Two local worker processes, free parameters `Kc` and `k_dec` (J_e stays at its default, which is
also the simulator's), 95 % profile-likelihood intervals. Failed tasks are retried once and
reported in `res.failures` without stopping the others."""),
    new_code_cell("""res = screen(work / "experiments", work / "screen", executor="local", workers=2,
             free=("Kc", "k_dec"), conf_interval=True, log=print)
print(res.summary())
cols = ["experiment", "temperature_K", "n_spectra", "Kc", "Kc_lo", "Kc_hi",
        "k_dec", "k_dec_lo", "k_dec_hi", "k_dec_true", "fade_pct_per_day", "rank_fade_pct_per_day"]
res.table[cols]"""),
    new_markdown_cell("""Every fitted parameter with its 95 % interval per experiment (true values as red crosses),
and the Arrhenius plot that the report draws because the temperatures differ:"""),
    new_code_cell("""display(Image(filename=str(res.out_dir / "parameters.png")))
display(Image(filename=str(res.out_dir / "arrhenius.png")))
fit = arrhenius(res.table, "k_dec")
print(f"Ea = {fit.Ea_J_mol / 1e3:.1f} ± {fit.Ea_err_J_mol / 1e3:.1f} kJ/mol (true {Ea_true / 1e3:.0f})")
inside = [bool(v) for c in ("Kc_inside", "k_dec_inside", "fade_pct_per_day_inside") for v in res.table[c]]
print(f"true values inside their 95 % intervals: {sum(inside)} of {len(inside)}")
assert list(res.table["rank_k_dec"]) == [1, 2, 3]
assert abs(fit.Ea_J_mol - Ea_true) < 3 * fit.Ea_err_J_mol + 2e3"""),
    new_markdown_cell("""## Rerun: the cache, and a global fit with a shared K_c

Each experiment's table and fit are cached under `screen/cache/<experiment>/`, keyed by the
raw-file fingerprints, the configs, the model, the free parameters, the options and the package
version. Rerunning with the same options recomputes nothing: the table is the same."""),
    new_code_cell("""t0 = time.perf_counter()
again = screen(work / "experiments", work / "screen", executor="serial", free=("Kc", "k_dec"),
               conf_interval=True)
print(f"rerun in {time.perf_counter() - t0:.1f} s; recomputed: {again.recomputed}")
pd.testing.assert_frame_equal(again.table, res.table)"""),
    new_markdown_cell("""Now group the experiments by quinone and fit each group globally: one `Kc` shared by the
three experiments (the simulator used 0.1 at every temperature; for real data, sharing a
temperature-dependent constant across temperatures is the user's call), one `k_dec` per
experiment. Only the group fit runs; the per-experiment reprocessing and fits come from the cache.
Here the group fit skips its profile intervals (`group_conf_interval=False`, the covariance
standard errors only) to keep the walkthrough quick; leave it out to get them."""),
    new_code_cell("""t0 = time.perf_counter()
grouped = screen(work / "experiments", work / "screen", executor="serial", free=("Kc", "k_dec"),
                 conf_interval=True, group_by="quinone", shared=("Kc",), group_conf_interval=False)
print(f"{time.perf_counter() - t0:.1f} s; recomputed: {grouped.recomputed}")
assert grouped.recomputed["reprocess"] == [] and grouped.recomputed["fit"] == []
g = grouped.groups
kc = g[g["parameter"] == "Kc"].iloc[0]
print(f"shared Kc = {kc['value']:.4f} ± {kc['stderr']:.4f} (true 0.1)")
# members at other temperatures get their own BMS factor (Curie 1/T), so the shared Kc is right
assert abs(kc["value"] - 0.1) <= max(3 * kc["stderr"], 0.005)
kd = g[g["parameter"] == "k_dec"]
assert all(abs(v - t) <= max(3 * e, 0.1 * t) for v, e, t in zip(kd["value"], kd["stderr"], kd["truth"]))
g[["group", "parameter", "experiment", "value", "stderr", "truth"]]"""),
    new_markdown_cell("""The report (`screen_report.md`) holds the table, the plots, the Arrhenius fit and the run log:"""),
    new_code_cell("""display(Markdown((res.out_dir / "screen_report.md").read_text().split("## Run")[0]))"""),
    new_markdown_cell("""**Electron exchange (k_ex).** The simulated experiments above use the library's
placeholder exchange rates (1e8 1/(M s)): the quinone lines are then MHz wide and carry no
information, so `k1` is not fitted.  When the oxidised-form lines are observable (widths of a
few to ~100 Hz, docs/physics.md §1.4: `w0 + (k1 [R] + kc [H]) / pi`), free the exchange
rates too, e.g. `flowcell screen EXPERIMENTS --free Kc,k_dec,J_e,k1,kc`: the table then has
`k1` (labelled *k_ex(O/R) = k_1*, 1/(M s)) with its 95 % interval and rank, and `kc`.
Lines broader than 15 % of their ingest window are measured by Lorentzians fitted past the
window with their neighbours (`ingest.processing.widths.refine_widths`); widths the extractor
flagged (e.g. too broad to measure), or without a fit error, are left out
(`flowcell.fit.pipeline.LINE_WIDTHS`)."""),
]


def build() -> nbformat.NotebookNode:
    """The walkthrough notebook (no outputs)."""
    return python_notebook(CELLS)


def main() -> Path:
    return write_notebook(build(), "screening_walkthrough.ipynb")


if __name__ == "__main__":
    print(main())
