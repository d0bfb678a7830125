"""Tests of ingest.processing.peaks: parameters recovered from spectra of known lines, and one
contract test shared by every extractor (style.md, pybaselines-like)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ingest.processing.peaks import EXTRACTORS, PeakFit, fit_multiplet, fit_peak, integrate_window

SF = 400.13e6  # Hz
TO_HZ = SF * 1e-6


def lorentz(ppm, center, fwhm_hz, area):
    """Area-normalised Lorentzian on a ppm axis; area in (units x Hz)."""
    g = fwhm_hz / 2 / TO_HZ  # HWHM, ppm
    return area / TO_HZ / math.pi * g / ((ppm - center) ** 2 + g**2)


PPM = np.linspace(10.0, 0.0, 32768)  # 0.12 Hz per point


def spectrum(lines, noise=0.0, seed=0, slope=0.0, offset=0.0):
    y = sum(lorentz(PPM, *ln) for ln in lines) + slope * (PPM - 5) + offset
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(PPM.size)
    return y


def test_noiseless_lorentzian_exact():
    y = spectrum([(7.4013, 2.5, 3.0)], slope=1e-3, offset=0.01)
    f = fit_peak(PPM, y, (7.2, 7.6), sfo1_hz=SF)
    assert f.success and f.method == "lorentzian" and f.warnings == ()
    assert f.center_ppm == pytest.approx(7.4013, abs=1e-7)
    assert f.fwhm_hz == pytest.approx(2.5, rel=1e-5)
    assert f.area == pytest.approx(3.0, rel=1e-5)
    assert f.height == pytest.approx(2 * 3.0 / (math.pi * 2.5), rel=1e-5)


def test_noisy_fit_errors_are_calibrated():
    # 40 noise realisations at SNR ~ 100: the scatter of centre/width/area agrees with the
    # reported standard errors within a factor 1.6 (chi-square of 40 samples), and the mean is
    # unbiased within 3 standard errors of the mean.
    truth = (4.79, 2.0, 1.0)
    height = 2 * 1.0 / (math.pi * 2.0)
    fits = [fit_peak(PPM, spectrum([truth], noise=height / 100, seed=s), (4.6, 5.0), sfo1_hz=SF)
            for s in range(40)]
    for attr, true in (("center_ppm", 4.79), ("fwhm_hz", 2.0), ("area", 1.0)):
        vals = np.array([getattr(f, attr) for f in fits])
        errs = np.array([getattr(f, attr.replace("_ppm", "_err_ppm").replace("_hz", "_err_hz")
                                 if attr != "area" else "area_err") for f in fits])
        sd = vals.std(ddof=1)
        assert 1 / 1.6 < sd / errs.mean() < 1.6, (attr, sd, errs.mean())
        assert abs(vals.mean() - true) < 3 * sd / math.sqrt(len(vals)) + 1e-12, attr


def test_voigt_recovers_lorentzian_and_gaussian_widths():
    from lmfit.lineshapes import voigt

    # pure Gaussian-broadened line: sigma 0.004 ppm, gamma 0.002 ppm
    y = voigt(PPM, amplitude=1.0, center=6.5, sigma=0.004, gamma=0.002)
    f = fit_peak(PPM, y, (6.3, 6.7), sfo1_hz=SF, shape="voigt")
    assert f.method == "voigt" and f.success
    fl, fg = 2 * 0.002, 2.3548200 * 0.004
    fwhm_ppm = 0.5346 * fl + math.sqrt(0.2166 * fl**2 + fg**2)  # Olivero-Longbothum, 0.02 %
    assert f.center_ppm == pytest.approx(6.5, abs=1e-7)
    assert f.fwhm_hz == pytest.approx(fwhm_ppm * TO_HZ, rel=1e-3)
    assert f.area == pytest.approx(1.0 * TO_HZ, rel=1e-4)
    lor = fit_peak(PPM, y, (6.3, 6.7), sfo1_hz=SF)  # a Lorentzian fit is worse
    assert lor.redchi > 10 * f.redchi


def test_windowed_integral_matches_arctan_fraction():
    # A Lorentzian integrated over +-n HWHM holds (2/pi) arctan(n) of its area (docs/physics.md §1.5).
    y = spectrum([(3.3, 4.0, 1.0)])
    hw = 2.0 / TO_HZ  # HWHM in ppm
    f = integrate_window(PPM, y, (3.3 - 20 * hw, 3.3 + 20 * hw), sfo1_hz=SF, baseline="none")
    assert f.area == pytest.approx(2 / math.pi * math.atan(20), rel=2e-3)
    assert f.center_ppm == pytest.approx(3.3, abs=1e-4)
    assert math.isnan(f.fwhm_hz)


def test_no_peak_above_noise_gives_integral_and_warning():
    y = spectrum([(2.2, 2.0, 1e-4)], noise=1e-3, seed=4)
    f = fit_peak(PPM, y, (2.1, 2.3), sfo1_hz=SF)
    assert "no peak above noise" in f.warnings
    assert math.isnan(f.center_ppm) and math.isnan(f.fwhm_hz)
    assert abs(f.area) < 4 * f.area_err  # consistent with zero


def test_peak_at_window_edge_is_flagged():
    y = spectrum([(7.6, 2.0, 1.0)])
    f = fit_peak(PPM, y, (7.35, 7.601), sfo1_hz=SF)
    assert "peak at window edge" in f.warnings


def test_too_few_points():
    f = fit_peak(PPM, spectrum([(5.0, 1.0, 1.0)]), (5.0, 5.0001), sfo1_hz=SF)
    assert f.warnings == ("too few points in window",) and not f.success


def test_multiplet_resolves_overlapping_lines():
    lines = [(7.40, 2.0, 1.0), (7.41, 2.5, 0.5), (7.425, 3.0, 0.8)]  # 4-6 Hz apart at 400 MHz
    height = 2 * 0.5 / (math.pi * 2.5)
    y = spectrum(lines, noise=height / 200, seed=5, slope=2e-3)
    fits = fit_multiplet(PPM, y, (7.35, 7.47), [7.401, 7.409, 7.426], sfo1_hz=SF)
    for f, (c, w, a) in zip(fits, lines):
        assert f.center_ppm == pytest.approx(c, abs=2e-4)
        assert f.fwhm_hz == pytest.approx(w, rel=0.05)
        assert f.area == pytest.approx(a, rel=0.05)


def test_columns_names():
    f = fit_peak(PPM, spectrum([(4.79, 2.0, 1.0)]), (4.6, 5.0), sfo1_hz=SF)
    cols = f.columns("hdo")
    assert list(cols) == ["hdo_shift_ppm", "hdo_shift_err_ppm", "hdo_fwhm_Hz", "hdo_fwhm_err_Hz",
                          "hdo_area", "hdo_area_err"]
    assert cols["hdo_fwhm_Hz"] == f.fwhm_hz


# ---------------------------------------------------------------- contract
@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_extractor_contract(name):
    """Every extractor: input not modified, repeatable, documented outputs present and sane."""
    fn = EXTRACTORS[name]
    y = spectrum([(7.1, 3.0, 0.8)], noise=1e-3, seed=9, offset=0.002)
    ppm0, y0 = PPM.copy(), y.copy()
    a = fn(PPM, y, (6.95, 7.25), sfo1_hz=SF)
    b = fn(PPM, y, (6.95, 7.25), sfo1_hz=SF)
    assert np.array_equal(PPM, ppm0) and np.array_equal(y, y0)  # not modified
    assert isinstance(a, PeakFit)
    assert a.as_dict().keys() == b.as_dict().keys()
    for k, v in a.as_dict().items():  # repeatable, bit for bit
        assert (v == b.as_dict()[k]) or (isinstance(v, float) and math.isnan(v) and math.isnan(b.as_dict()[k])), k
    for field in ("center_ppm", "center_err_ppm", "fwhm_hz", "fwhm_err_hz", "area", "area_err", "height",
                  "snr", "redchi", "success", "window", "n_points", "method", "warnings"):
        assert hasattr(a, field)
    assert a.window == (6.95, 7.25) and a.n_points > 100 and isinstance(a.warnings, tuple)
    assert a.area == pytest.approx(0.8, rel=0.06)  # window +-0.15 ppm = +-40 HWHM: 98.4 % for sums
    assert a.center_ppm == pytest.approx(7.1, abs=2e-3)
    assert a.snr > 50


def test_fast_lorentzian_matches_lmfit_reference():
    # fit_peak's Lorentzian path (scipy least_squares, analytic Jacobian) against an lmfit
    # LorentzianModel + LinearModel fit of the same points: same optimum (centre within
    # 0.01 standard error, area within 1e-5 relative) and the same standard errors (1e-3),
    # i.e. lmfit's covariance scaled by the reduced chi-square.
    from lmfit.models import LinearModel, LorentzianModel

    y = spectrum([(7.1, 3.0, 0.8), (7.25, 2.0, 0.3)], noise=1e-3, seed=5, offset=0.002)
    win = (6.95, 7.2)
    f = fit_peak(PPM, y, win, sfo1_hz=SF)
    sel = (PPM >= win[0]) & (PPM <= win[1])
    model = LorentzianModel(prefix="p_") + LinearModel(prefix="b_")
    pars = model.make_params(p_amplitude=0.8 / TO_HZ, p_center=7.1, p_sigma=1.5 / TO_HZ, b_slope=0.0,
                             b_intercept=0.002)
    ref = model.fit(y[sel], pars, x=PPM[sel])
    assert f.center_ppm == pytest.approx(ref.params["p_center"].value, abs=0.01 * f.center_err_ppm)
    assert f.area == pytest.approx(ref.params["p_amplitude"].value * TO_HZ, rel=1e-5)
    assert f.fwhm_hz == pytest.approx(ref.params["p_fwhm"].value * TO_HZ, rel=1e-5)
    assert f.area_err == pytest.approx(ref.params["p_amplitude"].stderr * TO_HZ, rel=1e-3)
    assert f.center_err_ppm == pytest.approx(ref.params["p_center"].stderr, rel=1e-3)
    assert f.redchi == pytest.approx(ref.redchi, rel=1e-5)


def test_integral_linear_baseline_error_is_propagated():
    # integrate_window(baseline='linear') on a line over a sloped offset, 40 white-noise
    # realisations: mean area = the in-window Lorentzian fraction minus what the edge line
    # takes (noise-free value, within 3 standard errors of the mean), and the scatter equals
    # the reported area_err within 25 % (chi-square, 40 samples: 2.5 sigma).  The edge
    # line adds its own noise: area_err is 1.5x the no-baseline value here (15 % strips).
    win = (3.1, 3.5)
    clean = spectrum([(3.3, 2.0, 1.0)], slope=2e-3, offset=1e-3)
    truth = integrate_window(PPM, clean, win, sfo1_hz=SF, baseline="linear", noise=1e-3).area
    got, err = [], []
    for seed in range(40):
        y = clean + 1e-3 * np.random.default_rng(seed).standard_normal(PPM.size)
        f = integrate_window(PPM, y, win, sfo1_hz=SF, baseline="linear", noise=1e-3)
        got.append(f.area)
        err.append(f.area_err)
    f_none = integrate_window(PPM, y, win, sfo1_hz=SF, baseline="none", noise=1e-3)
    assert err[0] > 1.4 * f_none.area_err
    assert abs(np.mean(got) - truth) < 3 * np.mean(err) / math.sqrt(40)
    assert np.std(got, ddof=1) / np.mean(err) == pytest.approx(1.0, abs=0.25)
    # signed, either axis order
    assert integrate_window(PPM[::-1], clean[::-1], win, sfo1_hz=SF, baseline="linear").area == pytest.approx(truth)
    assert integrate_window(PPM, -clean, win, sfo1_hz=SF, baseline="linear").area == pytest.approx(-truth)
