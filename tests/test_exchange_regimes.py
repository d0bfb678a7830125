"""Exchange rates in every regime (issue 14 item 4; docs/physics.md §1.4, §1.8, §4b row 5).

* Bloch-McConnell with thermal electron-spin populations has the contact shift: at fast
  exchange its line sits where the fast-exchange model puts it; at slow exchange its width is
  the slow-exchange formula.
* The regime check and ``ObservationModel(regime='auto')`` do not apply the slow formula where
  full Bloch-McConnell gives much less.
* Recovery of k = 1e3 ... 1e9 1/(M s) from simulated spectra (written by a generator below that
  imports nothing from the package), widths from Lorentzians fitted past the window, w0 fitted;
  unidentifiable where no line is observable.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ingest.processing.lineshape_fit import fit_lorentzians
from ingest.processing.peaks import fit_peak
from kinetics.exchange import (
    bloch_mcconnell_spectrum,
    contact_shift_ppm,
    dhaq_exchange_sites,
    electron_polarisation,
    fwhm_from_spectrum,
    mT_to_MHz,
    slow_exchange_fwhm_hz,
)
from kinetics.exchange_regime import (
    bloch_mcconnell_lines,
    dhaq_line_regimes,
    dhaq_sites_batch,
    estimate_exchange_rate,
    exchange_regime,
)
from kinetics.observe import DHAQ_PEAKS, ObservationModel
from kinetics.speciation import speciate

SF = 400.0  # MHz


# --- an independent generator: numpy only ------------------------------------------
def _gen_spectrum(ppm, O, R, H, *, k, a_mT, d_O, d_H, w0, sf_MHz=400.0, T=298.15, g=2.0046):
    """Bloch-McConnell absorption of one proton, (O, R+, R-, H) sites, by a direct solve per point."""
    muB, kB, gH = 9.2740100783e-24, 1.380649e-23, 2.6752218744e8
    P = math.tanh(g * muB * (2 * math.pi * sf_MHz * 1e6 / gH) / (2 * kB * T))
    a_hz = a_mT * 1e-3 * g * muB / 6.62607015e-34
    up, dn = (1 + P) / 2, (1 - P) / 2
    tot = O + R + H
    p = np.array([O, R * up, R * dn, H]) / tot
    K = np.zeros((4, 4))
    K[1, 0], K[2, 0] = k * R * up, k * R * dn
    K[0, 1] = K[0, 2] = k * O
    K[3, 1] = K[3, 2] = k * H
    K[1, 3], K[2, 3] = k * R * up, k * R * dn
    K -= np.diag(K.sum(axis=0))
    nu_R = 0.5 * (d_O + d_H) * sf_MHz
    om = 2 * np.pi * np.array([d_O * sf_MHz, nu_R + a_hz / 2, nu_R - a_hz / 2, d_H * sf_MHz])
    A = np.diag(1j * om - math.pi * w0) + K
    f = np.asarray(ppm) * sf_MHz
    M = 1j * 2 * np.pi * f[:, None, None] * np.eye(4)[None] - A[None]
    S = np.linalg.solve(M, np.broadcast_to(p.astype(complex), (f.size, 4))[..., None])[..., 0].sum(axis=1)
    return 2 * S.real


# --- item 2: thermal populations, contact shift ---------------------------------------
def test_electron_polarisation_gives_the_contact_shift():
    # mean offset a P / 2 of the two radical sites = contact shift (26.5 ppm per MHz, §4b row 6)
    P = electron_polarisation(SF)
    assert P == pytest.approx(0.02121, rel=1e-3)
    assert 1e6 * P / 2 / SF == pytest.approx(float(contact_shift_ppm(1e6)), rel=1e-3)
    offs, p, K = dhaq_exchange_sites(0.04, 0.02, 0.04, a_hz=1e6, k1=1e8, k2=1e8, sfo1_MHz=SF)
    np.testing.assert_allclose(K @ p, 0, atol=1e-9 * np.abs(K).max())
    r_mean = (p[1] * offs[1] + p[2] * offs[2]) / (p[1] + p[2])
    assert r_mean / SF == pytest.approx(26.5, rel=2e-3)


def test_bloch_mcconnell_fast_position_equals_fast_model():
    # h4 at SOC 0.5, k = 1e10: the issue measured 7.085 ppm (equal populations) vs 5.054 (fast model)
    O, R, H, _ = speciate(0.5, 0.1, 0.1)
    pk = DHAQ_PEAKS["h4"]
    a = float(mT_to_MHz(pk.a_mT)) * 1e6
    conc = pd.DataFrame({"O": [O], "R": [R], "H": [H]}, index=[0.0])
    fast = ObservationModel(regime="fast", referenced_to_water=True).predict(conc, {"k1": 1e10, "k2": 1e10})
    expect = float(fast["dhaq_h4_shift_ppm"].iloc[0])
    assert expect == pytest.approx(5.054, abs=0.005)
    offs, p, K = dhaq_exchange_sites(O, R, H, a_hz=a, k1=1e10, k2=1e10, nu_O_hz=pk.delta_O_ppm * SF,
                                     nu_H_hz=pk.delta_H_ppm * SF)
    f = np.linspace(4.0 * SF, 6.0 * SF, 40001)
    S = bloch_mcconnell_spectrum(f, offs, p, K, r2=np.pi * 2.0)
    assert f[np.argmax(S)] / SF == pytest.approx(expect, abs=0.01)
    assert abs(f[np.argmax(S)] / SF - 7.085) > 1.5  # the equal-population bug
    auto = ObservationModel(referenced_to_water=True).predict(conc, {"k1": 1e10, "k2": 1e10})
    assert float(auto["dhaq_h4_shift_ppm"].iloc[0]) == pytest.approx(expect, abs=0.01)
    assert np.isnan(auto["dhaq4_h4_fwhm_Hz"].iloc[0])  # coalesced: no separate H line


def test_bloch_mcconnell_slow_width_equals_slow_formula():
    O, R, H = 0.05, 1e-3, 0.05
    a = float(mT_to_MHz(-0.1)) * 1e6
    offs, p, K = dhaq_exchange_sites(O, R, H, a_hz=a, k1=3e4, k2=3e4, nu_O_hz=7.45 * SF, nu_H_hz=6.55 * SF)
    f = np.linspace(7.2 * SF, 7.7 * SF, 20001)
    fw = fwhm_from_spectrum(f, bloch_mcconnell_spectrum(f, offs, p, K, r2=np.pi * 2.0), near_hz=7.45 * SF)
    assert fw == pytest.approx(float(slow_exchange_fwhm_hz(3e4, R, w0_Hz=2.0)), rel=0.01)
    reg, ok = dhaq_line_regimes(O, R, H, a_hz=a, k1=3e4, k2=3e4, dnu_OH_hz=0.9 * SF)
    assert reg[()] == "slow" and ok[()]


# --- item 1: regime check, and the default model --------------------------------------
def test_exchange_regime_generic():
    reg, ok = exchange_regime([1.0, 50.0, 1e4], 100.0)
    assert list(reg) == ["slow", "intermediate", "fast"]
    assert list(ok) == [True, False, True]


def test_default_model_does_not_apply_slow_formula_at_k_1e8():
    # SOC series at k = 1e8: the slow formula overestimates the width where Bloch-McConnell
    # (the reference) gives 1.1-28x less; the default model follows Bloch-McConnell
    x = np.array([0.002, 0.005, 0.01])
    O, R, H, _ = speciate(x, 0.1, 0.1)
    conc = pd.DataFrame({"O": O, "R": R, "H": H}, index=np.arange(x.size) * 60.0)
    assert ObservationModel().regime == "auto"
    pars = {"k1": 1e8, "k2": 1e8, "w0_Hz": 2.0}
    df = ObservationModel(referenced_to_water=True).predict(conc, pars)
    reg = ObservationModel().regimes(conc, pars)
    assert set(reg["h1"]) <= {"intermediate", "fast"}
    pk = DHAQ_PEAKS["h1"]
    a = float(mT_to_MHz(pk.a_mT)) * 1e6
    for i in range(x.size):
        offs, p, K = dhaq_exchange_sites(O[i], R[i], H[i], a_hz=a, k1=1e8, k2=1e8,
                                         nu_O_hz=pk.delta_O_ppm * SF, nu_H_hz=pk.delta_H_ppm * SF)
        w_model = float(df["dhaq_h1_fwhm_Hz"].iloc[i])
        c = float(df["dhaq_h1_shift_ppm"].iloc[i]) * SF
        f = np.linspace(c - 8 * w_model, c + 8 * w_model, 40001)
        w_bm = fwhm_from_spectrum(f, bloch_mcconnell_spectrum(f, offs, p, K, r2=np.pi * 2.0), near_hz=c)
        assert w_model == pytest.approx(w_bm, rel=0.05)
        assert float(slow_exchange_fwhm_hz(1e8, R[i], w0_Hz=2.0)) > 1.1 * w_bm


def test_bloch_mcconnell_lines_limits():
    O, H = np.full(3, 0.05), np.full(3, 0.05)
    R = np.array([1e-5, 1e-4, 1e-3])
    offs, p, K = dhaq_sites_batch(O, R, H, a_hz=float(mT_to_MHz(-0.1)) * 1e6, k1=1e4, k2=2e4,
                                  nu_O_hz=7.45 * SF, nu_H_hz=6.55 * SF)
    ln = bloch_mcconnell_lines(offs, p, K, r2=np.pi * 1.0)
    np.testing.assert_allclose(ln["fwhm_hz"][:, 0], 1.0 + 1e4 * R / np.pi, rtol=1e-3)
    np.testing.assert_allclose(ln["fwhm_hz"][:, 1], 1.0 + 2e4 * R / np.pi, rtol=1e-3)
    np.testing.assert_allclose(ln["centre_hz"][:, 0] / SF, 7.45, atol=1e-4)
    np.testing.assert_allclose(ln["area"][:, 0], O / (O + R + H), rtol=1e-3)
    assert not ln["coalesced"].any()


# --- item 4: widths of broadened lines from fits past the window ---------------------
def test_extended_lorentzian_fit_measures_what_the_window_fit_truncates():
    ppm = np.linspace(5.0, 9.0, 8001)
    x = ppm * SF
    rng = np.random.default_rng(3)

    def lor(c, w, A):
        return A / np.pi * (w / 2) / ((x - c * SF) ** 2 + (w / 2) ** 2)

    y = lor(7.45, 150.0, 1000.0) + lor(6.55, 60.0, 600.0) + rng.normal(0, 0.02, x.size)
    win = fit_peak(ppm, y, (7.325, 7.575), sfo1_hz=SF * 1e6)  # 100 Hz window, line 150 Hz wide
    both = fit_lorentzians(ppm, y, [7.45, 6.55], sfo1_hz=SF * 1e6, fit_range_ppm=(5.0, 9.0), fwhm_guess_hz=20.0)
    assert both[0].fwhm_hz == pytest.approx(150.0, rel=0.01)
    assert both[1].fwhm_hz == pytest.approx(60.0, rel=0.01)
    assert both[0].area == pytest.approx(1000.0, rel=0.01)
    assert "peak wider than half the window" in win.warnings  # the pipeline drops that one
    assert not both[0].warnings and not both[1].warnings
    bad = fit_lorentzians(ppm, np.full(ppm.size, np.nan), [7.45], sfo1_hz=SF * 1e6, fit_range_ppm=(5, 9))
    assert not bad[0].success and bad[0].warnings


# --- item 6: recovery over k = 1e3 ... 1e9 ------------------------------------------
R_SERIES = np.array([3e-7, 1e-6, 2e-6, 1e-5, 3e-5, 1e-4, 2e-4, 1e-3, 1e-2])  # mol/L
PPM = np.linspace(3.0, 11.0, 1601)  # 3200 Hz at 400 MHz, 2 Hz per point


def _observed_widths(k: float, R_values: np.ndarray, seed: int) -> np.ndarray:
    """Spectra from the generator -> h1 O-line (or averaged-line) widths; NaN when not observed."""
    rng = np.random.default_rng(seed)
    pk = DHAQ_PEAKS["h1"]
    out = []
    for R in R_values:
        y = _gen_spectrum(PPM, 0.05, R, 0.05, k=k, a_mT=pk.a_mT, d_O=pk.delta_O_ppm, d_H=pk.delta_H_ppm, w0=3.0)
        y = y + rng.normal(0, 2e-6, y.size)
        fits = fit_lorentzians(PPM, y, [pk.delta_O_ppm, pk.delta_H_ppm], sfo1_hz=SF * 1e6,
                               fit_range_ppm=(PPM[0], PPM[-1]), fwhm_guess_hz=[10.0, 10.0])
        w = fits[0].fwhm_hz
        if not np.isfinite(w) or not abs(fits[0].center_ppm - fits[1].center_ppm) * SF > 0.3 * w:
            one = fit_lorentzians(PPM, y, [0.5 * (pk.delta_O_ppm + pk.delta_H_ppm)], sfo1_hz=SF * 1e6,
                                  fit_range_ppm=(PPM[0], PPM[-1]), fwhm_guess_hz=50.0)
            w = one[0].fwhm_hz
        out.append(w if np.isfinite(w) and w < 1500.0 else np.nan)
    return np.array(out)


@pytest.mark.parametrize("k", [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9])
def test_recover_exchange_rate_from_spectra(k):
    w = _observed_widths(k, R_SERIES, seed=int(np.log10(k)))
    conc = pd.DataFrame({"O": 0.05, "R": R_SERIES, "H": 0.05}, index=np.arange(R_SERIES.size) * 60.0)
    model = ObservationModel(peaks={"h1": DHAQ_PEAKS["h1"]}, referenced_to_water=True)
    sig = np.maximum(0.02 * np.nan_to_num(w, nan=1.0), 0.2)
    est = estimate_exchange_rate(conc, {"dhaq_h1_fwhm_Hz": w}, model=model, sigma_Hz=float(np.median(sig)))
    assert est.identifiable, est.note
    print(f"k = {k:.0e}: recovered {est.k:.3e} [{est.k_lo:.3e}, {est.k_hi:.3e}], w0 {est.w0_Hz:.2f} Hz, "
          f"{est.n_used} widths; {est.note}")
    assert est.k == pytest.approx(k, rel=0.15)
    assert est.k_lo <= k <= est.k_hi
    # w0 fitted, not taken from a first spectrum; at k = 1e9 every line is >= 35 Hz wide and w0 is weak
    assert est.w0_Hz == pytest.approx(3.0, abs=0.5 if k < 1e8 else 2.0)


def test_unobservable_lines_flag_k_unidentifiable():
    # k = 1e7 with only high radical concentrations: every line is kHz wide -> nothing to fit
    R = np.array([3e-3, 1e-2])
    w = _observed_widths(1e7, R, seed=1)
    assert np.isnan(w).all()
    conc = pd.DataFrame({"O": 0.05, "R": R, "H": 0.05}, index=[0.0, 60.0])
    est = estimate_exchange_rate(conc, {"dhaq_h1_fwhm_Hz": w}, model=ObservationModel(peaks={"h1": DHAQ_PEAKS["h1"]}))
    assert not est.identifiable and "observed" in est.note
    # and a rate too slow to broaden anything is unbounded from below
    conc7 = pd.DataFrame({"O": 0.05, "R": R_SERIES[1:4], "H": 0.05}, index=np.arange(3) * 60.0)
    est = estimate_exchange_rate(conc7, {"dhaq_h1_fwhm_Hz": np.full(3, 3.0)},
                                 model=ObservationModel(peaks={"h1": DHAQ_PEAKS["h1"]}), sigma_Hz=0.2)
    assert not est.identifiable
