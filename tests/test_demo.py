"""``flowcell demo`` end to end (in-process, fixed seed, --quick settings, same code path).

Asserts the issue's two promises: the live SOC tracks the simulator's true SOC within
0.02 (absolute) after the first minutes, and the fit recovers the true K_c, k_dec, J_e
and the electron-exchange rates k1 (k_ex of O/R, from the oxidised-form line widths,
docs/physics.md §1.4) and kc inside their 95 % profile-likelihood intervals (each interval
narrower than a factor 1.5).  Runs the real simulator thread,
the watchdog watcher, the store, LiveSOC and kinetics.fit (about a minute).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("kinetics.fit")
pytest.importorskip("ingest.live.watch")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from flowcell.demo import run_demo
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, quick=True, seed=0, live=False, plot=True)


@pytest.mark.slow
def test_every_spectrum_reaches_the_store(demo):
    assert demo.n_rows == len(demo.truth.spectra)
    assert not [m for m in demo.messages if "store" in m or "watcher" in m]


@pytest.mark.slow
def test_live_soc_tracks_truth_within_2_percent(demo):
    from flowcell.demo import LIVE_TOL
    late = demo.live[demo.live.t_s >= 900.0]
    assert len(late) > 30
    err = (late.soc - late.true_soc).abs()
    assert err.max() <= LIVE_TOL, f"max |live - true| = {err.max():.4f}"
    # and the filter's own uncertainty is honest: |error| < 4 sd for (almost) all rows
    assert np.mean(err <= 4 * late.soc_sd + 0.002) > 0.9


@pytest.mark.slow
def test_fit_recovers_K_and_rate_constants_within_intervals(demo):
    from flowcell.demo import DEMO_FREE, DEMO_TRUTH
    assert {"k1", "kc"} <= set(DEMO_TRUTH) and set(DEMO_TRUTH) <= set(DEMO_FREE)
    tab = demo.fit.table().set_index("parameter")
    for name, true in DEMO_TRUTH.items():
        lo, hi = tab.loc[name, "ci95_lo"], tab.loc[name, "ci95_hi"]
        assert np.isfinite(lo) and np.isfinite(hi), f"{name}: unbounded interval"
        assert lo <= true <= hi, f"{name}: true {true:g} outside [{lo:g}, {hi:g}]"
        # intervals not absurdly wide: within a factor 1.5 of the truth
        assert hi / lo < 1.5, f"{name}: interval [{lo:g}, {hi:g}] too wide"
    assert demo.fit.result.success


@pytest.mark.slow
def test_demo_ok_and_report_written(demo):
    assert demo.ok, demo.messages
    out = demo.out_dir
    for f in ("report.md", "fit.json", "soc.png", "observables.png", "live_soc.png", "live_soc.csv"):
        assert (out / f).exists(), f
    fit = json.loads((out / "fit.json").read_text())
    names = {r["parameter"] for r in fit["parameters"]}
    assert {"Kc", "k_dec", "J_e", "k1", "kc"} <= names
    assert "Kc" in (out / "report.md").read_text()


def test_parameter_table_resolves_narrow_intervals():
    """The demo's table prints enough digits to show an interval: 4.7900 +- 1e-4 ppm is not
    [4.79, 4.79]; ordinary intervals keep 4 digits."""
    from kinetics.fit_result import significant_digits as _digits

    sig = _digits(4.79001, 2e-4)
    assert f"{4.7899:.{sig}g}" != f"{4.7901:.{sig}g}"
    assert _digits(2000.0, 43.0) == 4 and _digits(float("nan"), 1.0) == 4 and _digits(1.0, 0.0) == 4
