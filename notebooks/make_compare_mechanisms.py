"""Generate ``compare_mechanisms.ipynb`` (no outputs stored) with nbformat.

Run ``python notebooks/make_compare_mechanisms.py``; the test suite executes every
notebook in this folder (tests/test_notebooks.py), so the comparison cannot rot.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from _nbwrite import python_notebook, write_notebook

CELLS = [
    new_markdown_cell("""# Which mechanism do the data support?

The in-line NMR papers compared decomposition mechanisms by hand: fit each, compare the
residuals.  `flowcell fit --compare A,B,...` does it for you: every candidate mechanism is fitted
to the same data with the extractors' own sigmas (no rescaling), ranked by AIC and BIC, nested
pairs get a likelihood-ratio test, and each candidate's residuals say whether it describes the
data at all (docs/physics.md §2.1, §2.3).

Here the data come from the package's in-line simulator run with a mechanism the default model
does **not** assume: the hydroquinone decomposes as `H -> A` with 2 e- from an untracked
reductant (`kinetics.library.VARIANTS["dec_H"]`), not `2 H -> A + O`.  Every number is an
ASSUMED simulator placeholder (docs/physics.md §2.6)."""),
    new_code_cell("""import tempfile, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Image, display

from kinetics import library
from kinetics.fit import FitWarning
from flowcell.demo import demo_protocol, load_demo_config
from flowcell.fit.compare import compare_mechanisms
from flowcell.report import write_comparison
from flowcell.simulate.simulator import ExperimentSimulator

warnings.simplefilter("ignore", FitWarning)
print(", ".join(library.VARIANTS))"""),
    new_markdown_cell("""## A simulated experiment with `H -> A`

1.5 h of rest / charge / rest / discharge of 0.1 M DHAQ in 10 mL (the demo's flow loop), one NMR
and one EPR spectrum every 2 minutes.  We take the simulator's true observables (water shift,
EPR radical concentration, anthrone) and add Gaussian noise with the sigma an extractor would
report."""),
    new_code_cell("""cfg = load_demo_config()
truth = {"Kc": 0.1, "k_dec": 2e-5}
data_model = library.mechanism("dec_H").compile()
sim = ExperimentSimulator(cfg, demo_protocol(1.5), data_model, Path(tempfile.mkdtemp()), params=truth,
                          interval_s=120.0, seed=0)
tr = sim.prepare()                      # the chemistry and every spectrum's true observables (no files)
t = np.asarray(tr.t_s, float)           # the potentiostat log: mean current over the interval ending at each row
pot = pd.DataFrame({"t_s": t, "I_A": np.r_[tr.current_A[:1], tr.schedule(0.5 * (t[1:] + t[:-1]))]})
pot.attrs["start"] = tr.start
sp, rng = tr.spectra, np.random.default_rng(1)
nmr = (sp["kind"] == "nmr").to_numpy()
noise = {"hdo_shift_ppm": 3e-4, "epr_spin_conc_M": 1.5e-4, "anthrone_area": 4e-5}
table = pd.DataFrame({"kind": sp["kind"], "time_mid": pd.to_datetime(sp["time_mid"], utc=True), "sfo1_MHz": 400.13})
table["hdo_shift_ppm"] = np.where(nmr, sp["hdo_shift_ppm"] + rng.normal(0, noise["hdo_shift_ppm"], len(sp)), np.nan)
table["hdo_shift_err_ppm"] = noise["hdo_shift_ppm"] / 2      # the fit takes twice the extractor's median error
table["dhaq_h1_area"] = np.where(nmr, 2 * cfg.electrolyte.concentration_M, np.nan)
table["anthrone_area"] = np.where(nmr, 2 * (sp["A_M"] + rng.normal(0, noise["anthrone_area"], len(sp))), np.nan)
table["anthrone_area_err"] = noise["anthrone_area"] / 2
table["epr_spin_conc_M"] = np.where(~nmr, sp["epr_spin_conc_M"] + rng.normal(0, noise["epr_spin_conc_M"], len(sp)), np.nan)
print(f"{nmr.sum()} NMR and {(~nmr).sum()} EPR spectra; true Kc = {truth['Kc']}, k_dec = {truth['k_dec']} 1/s (H -> A)")"""),
    new_markdown_cell("""## Fit three candidate mechanisms to the same data

* `dec_2H`: the package's default, `2 H -> A + O`;
* `dec_H`: `H -> A` (the truth);
* `dec_H+dimer`: `H -> A` plus the diamagnetic dimer O·H (KD free): it contains `dec_H` at KD = 0,
  so the likelihood-ratio test applies."""),
    new_code_cell("""t0 = time.perf_counter()
comp = compare_mechanisms(table, cfg, pot, ["dec_2H", "dec_H", "dec_H+dimer"], free=("Kc", "k_dec", "J_e"),
                          multistart=0, progress=print)
print(f"{time.perf_counter() - t0:.1f} s")
print(comp.report())
comp.table()[["mechanism", "k", "n", "chi2", "daic", "weight", "dbic", "residuals", "Kc", "k_dec"]]"""),
    new_markdown_cell("""The true mechanism wins by a wide margin, and the default's own residuals reject it: the
runs test and the lag-1 autocorrelation of its water-shift and anthrone residuals show the
structure a wrong mechanism leaves.  The dimer adds nothing (KD runs to its lower bound)."""),
    new_code_cell("""best = comp.table().iloc[0]
assert best["mechanism"] in ("dec_H", "dec_H+dimer"), best
byname = {c.spec: c for c in comp.candidates}
assert byname["dec_2H"].misfit and not byname["dec_H"].misfit
assert comp.table().set_index("mechanism").loc["dec_2H", "daic"] > 20
k = byname["dec_H"].outcome.result.values["k_dec"]
assert abs(k / truth["k_dec"] - 1) < 0.05, k
(lrt,) = comp.lrt
print(f"dec_H recovers k_dec = {k:.3g} 1/s (true {truth['k_dec']}); LRT for the dimer: p = {lrt['p']:.2f}")
for r in byname["dec_2H"].outcome.gof.misfit_reasons:
    print("dec_2H:", r)"""),
    new_markdown_cell("""## The written comparison

`write_comparison` (what `flowcell fit --compare` calls) writes `compare.md`, `compare.csv`,
`compare.json` and this figure: ΔAIC/ΔBIC per candidate and each candidate's model over the data."""),
    new_code_cell("""out = Path(tempfile.mkdtemp()) / "compare"
md = write_comparison(out, comp, title="H -> A data, three candidates")
print(sorted(p.name for p in out.iterdir()))
display(Image(str(out / "compare.png")))"""),
    new_markdown_cell("""In an experiment file the chosen mechanism is data, not code:

```toml
[model]
name = "dhaq"
mechanism = "dec_H"          # kinetics.library.VARIANTS, joined by "+"
# or edit the network in its own text syntax:
# network = '''
# Dec_ch: H -> A ; k_dec ; rate = k_dec*H ; solvent ; sink
# '''
```"""),
]


def build() -> nbformat.NotebookNode:
    """The comparison notebook (no outputs)."""
    return python_notebook(CELLS)


def main() -> Path:
    return write_notebook(build(), "compare_mechanisms.ipynb")


if __name__ == "__main__":
    print(main())
