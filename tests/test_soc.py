"""SOC estimator (science.md §1.9): branch choice, honest uncertainty near SOC 0.5."""

from __future__ import annotations

import numpy as np
import pytest

from kinetics.observe import water_shift_ppm
from kinetics.soc import SOCEstimate, estimate_soc, soc_from_area_fraction, soc_from_averaged_shift
from kinetics.speciation import speciate

C, K = 0.1, 0.1


def _obs(x, rng=None, sw=1e-3, sa=0.02):
    O, R, H, _ = speciate(x, C, K)
    w = water_shift_ppm(R) + (rng.normal(0, sw) if rng is not None else 0.0)
    y = H / (O + H) + (rng.normal(0, sa) if rng is not None else 0.0)
    return w, y, R


def test_exact_inversion_both_branches():
    for x in (0.1, 0.3, 0.8):
        w, y, R = _obs(x)
        est = estimate_soc(C_tot=C, K=K, water_shift_ppm=w, area_fraction=y, area_fraction_err=1e-3)
        assert est.soc == pytest.approx(x, abs=2e-3)
        assert est.branch == ("low" if x < 0.5 else "high")
        assert est.candidates[0] == pytest.approx(min(x, 1 - x), abs=1e-9)
        assert est.candidates[1] == pytest.approx(max(x, 1 - x), abs=1e-9)
        assert est.R_M == pytest.approx(R, rel=1e-9)


def test_area_fraction_and_averaged_shift_inverses():
    for x in (0.2, 0.5, 0.9):
        O, R, H, _ = speciate(x, C, K)
        fR = R / C
        assert soc_from_area_fraction(H / (O + H), fR) == pytest.approx(x, abs=1e-12)
        fO, fH = O / C, H / C
        dO, dH, dcon = 7.45, 6.55, -1.3
        shift = fO * dO + fH * dH + fR * (0.5 * (dO + dH) + dcon)
        assert soc_from_averaged_shift(shift, dO, dH, f_R=fR, delta_con_ppm=dcon) == pytest.approx(x, abs=1e-12)


def test_uncertainty_shows_no_information_at_half():
    # water shift only, continuity picks the branch; the error must blow up near 0.5
    errs = {}
    for x in (0.2, 0.5):
        w, _, _ = _obs(x)
        est = estimate_soc(C_tot=C, K=K, water_shift_ppm=w, water_err_ppm=1e-3, prev=x, prev_err=0.01)
        errs[x] = est.soc_err
    assert errs[0.5] > 5 * errs[0.2]
    # exact: at x = 1/2 σ_x = sqrt(σ_u); σ_u = |du/df| σ_f
    fR = speciate(0.5, C, K)[1] / C
    sigma_f = 1e-3 / 5.2948e-3 * 1e-3 / C  # ppm -> M -> fraction
    du_df = 2 * fR * (1 - K / 4) / K + 0.5
    assert errs[0.5] == pytest.approx(np.sqrt(du_df * sigma_f), rel=0.01)
    # with an aromatic observable the combination is precise again at 0.5
    w, y, _ = _obs(0.5)
    est = estimate_soc(C_tot=C, K=K, water_shift_ppm=w, water_err_ppm=1e-3, area_fraction=y, area_fraction_err=0.02)
    assert est.soc_err < 0.025 and est.soc == pytest.approx(0.5, abs=1e-3)


def test_ambiguous_without_disambiguation():
    w, _, _ = _obs(0.25)
    est = estimate_soc(C_tot=C, K=K, water_shift_ppm=w)
    assert est.branch == "ambiguous"
    assert est.soc == pytest.approx(0.5, abs=1e-9)
    # the error spans both candidates (0.25, 0.75): half their distance plus each one's own error
    assert est.candidates == pytest.approx((0.25, 0.75), abs=1e-9)
    assert est.soc_err == pytest.approx(0.25 + est.candidate_err, abs=1e-9)
    assert 0 < est.candidate_err < 0.05


@pytest.mark.parametrize("with_aromatic", [True, False])
@pytest.mark.parametrize("seed", [0, 7])
def test_charging_through_half_picks_right_branch(with_aromatic, seed):
    # charge from SOC 0.25 to 0.75 in steps of 0.01; water shift σ = 1 mppm (≈0.2 mM),
    # area fraction σ = 0.02
    rng = np.random.default_rng(seed)
    xs = np.linspace(0.25, 0.75, 51)
    prev: SOCEstimate | float = xs[0]
    wrong, inside, decided, max_err = 0, 0, 0, 0.0
    for x in xs:
        w, y, _ = _obs(x, rng)
        est = estimate_soc(
            C_tot=C, K=K, water_shift_ppm=w, water_err_ppm=1e-3,
            area_fraction=y if with_aromatic else None, area_fraction_err=0.02,
            prev=prev, current_sign=+1,
        )
        # never the wrong branch away from 0.5; 'merged'/'ambiguous' are honest where
        # the water shift is flat (near 0.5) and the evidence is weak
        assert est.branch in ("low", "high", "merged", "ambiguous")
        if abs(x - 0.5) > 0.04 and est.branch in ("low", "high"):
            wrong += est.branch != ("low" if x < 0.5 else "high")
        decided += est.branch in ("low", "high")
        inside += abs(est.soc - x) < 3 * est.soc_err
        max_err = max(max_err, est.soc_err)
        prev = est
    assert wrong == 0
    assert decided >= (0.6 if with_aromatic else 0.4) * len(xs)
    assert inside >= 0.9 * len(xs)
    if with_aromatic:  # the aromatic channel keeps the estimate precise through 0.5
        assert max_err < 0.03


def test_epr_only_and_combination():
    x = 0.7
    O, R, H, _ = speciate(x, C, K)
    est = estimate_soc(C_tot=C, K=K, epr_R_M=R, epr_err_M=1e-4, prev=0.65, current_sign=1)
    assert est.branch == "high" and est.soc == pytest.approx(x, abs=1e-6)
    both = estimate_soc(C_tot=C, K=K, epr_R_M=R, epr_err_M=1e-4, water_shift_ppm=water_shift_ppm(R),
                        water_err_ppm=1e-3, prev=0.65, current_sign=1)
    # inverse-variance combination: σ_w = 1e-3 ppm / (χ_M/3 · 1e3 L/m^3 · 1e6 ppm) with the Curie χ_M (§1.3)
    chi = 4e-7 * np.pi * 6.02214076e23 * 2.0046**2 * 0.75 * 9.2740100783e-24**2 / (3 * 1.380649e-23 * 298.15)
    s_w = 1e-3 / (chi / 3 * 1e3 * 1e6)
    assert est.R_err_M == pytest.approx(1e-4, rel=1e-12)
    assert both.R_err_M == pytest.approx((1e-4**-2 + s_w**-2) ** -0.5, rel=1e-6)
    assert both.R_M == pytest.approx(R, rel=1e-9)
    with pytest.raises(ValueError):
        estimate_soc(C_tot=C, K=K)


def test_precomputed_aromatic_estimate_decides():
    x = 0.3
    O, R, H, _ = speciate(x, C, K)
    est = estimate_soc(C_tot=C, K=K, water_shift_ppm=water_shift_ppm(R), arom=(0.32, 0.03))
    assert est.branch == "low"
    # inverse-variance combination of the candidate (σ_c) and the aromatic value
    w1, w2 = 1 / est.candidate_err**2, 1 / 0.03**2
    assert est.soc == pytest.approx((w1 * x + w2 * 0.32) / (w1 + w2), abs=1e-9)
    assert est.soc_err == pytest.approx((w1 + w2) ** -0.5, rel=1e-9)
