"""Closed forms of docs/physics.md §1.2 / §1.2b and the §4b rows 1-2."""

from __future__ import annotations

import numpy as np
import pytest

from kinetics.constants import Kc_from_dE, dE_from_Kc, thermal_voltage
from kinetics.speciation import (K_from_radical, apparent_K, radical_fraction, soc_from_radical,
                                 speciate)

KS = [1e-4, 2.9e-3, 0.0968, 0.1, 1.0, 3.99, 4.0, 4.01, 49.0, 1e3]
X = np.linspace(0.0, 1.0, 101)


@pytest.mark.parametrize("K", KS)
def test_half_soc_closed_form(K: float) -> None:
    # §4b row 1: f_R(1/2) = sqrt(K)/(2 + sqrt(K)), to 1e-13 relative
    assert radical_fraction(0.5, K) == pytest.approx(np.sqrt(K) / (2 + np.sqrt(K)), rel=1e-13)


@pytest.mark.parametrize("K", KS)
def test_quadratic_residual_and_symmetry(K: float) -> None:
    f = radical_fraction(X, K)
    res = (1 - K / 4) * f**2 + (K / 2) * f - K * X * (1 - X)
    assert np.max(np.abs(res)) < 1e-14 * max(1.0, K)
    np.testing.assert_allclose(f, f[::-1], rtol=0, atol=1e-15)  # f(x) = f(1-x)
    assert np.all(f <= np.sqrt(K) / (2 + np.sqrt(K)) + 1e-15)


def test_K4_statistical() -> None:
    np.testing.assert_allclose(radical_fraction(X, 4.0), 2 * X * (1 - X), rtol=1e-14, atol=1e-16)


def test_worked_table_rows() -> None:
    # §4b row 2: dE = -60 mV at 298.15 K -> Kc = 0.0968, f_R(1/2) = 0.1346; Kc = 0.1 -> 0.1365
    Kc = Kc_from_dE(-0.060, 298.15)
    assert Kc == pytest.approx(0.0968, abs=5e-5)
    assert radical_fraction(0.5, Kc) == pytest.approx(0.1346, abs=5e-5)
    assert radical_fraction(0.5, 0.1) == pytest.approx(0.1365, abs=5e-5)
    # other rows of the §1.2 table (3 decimals as printed)
    assert radical_fraction(0.5, 1.0) == pytest.approx(1 / 3, abs=5e-4)
    assert radical_fraction(0.25, 1.0) == pytest.approx(0.268, abs=5e-4)
    assert radical_fraction(0.25, 4.0) == pytest.approx(0.375, abs=1e-12)
    assert radical_fraction(0.5, 49.0) == pytest.approx(0.778, abs=5e-4)
    assert radical_fraction(0.25, 49.0) == pytest.approx(0.481, abs=5e-4)
    assert thermal_voltage(298.15) == pytest.approx(0.025693, abs=5e-7)
    assert dE_from_Kc(4.0, 298.15) == pytest.approx(0.0356, abs=5e-5)
    assert dE_from_Kc(Kc_from_dE(-0.123)) == pytest.approx(-0.123, rel=1e-13)


@pytest.mark.parametrize("KD", [0.0, 5.0, 50.0])
def test_speciate_balances(KD: float) -> None:
    C, Kc = 0.1, 0.1
    O, R, H, D = speciate(X, C, Kc, KD)
    np.testing.assert_allclose(O + R + H + 2 * D, C, rtol=1e-12)
    np.testing.assert_allclose(R + 2 * H + 2 * D, 2 * X * C, rtol=1e-12, atol=1e-16)
    inner = slice(1, -1)
    np.testing.assert_allclose(R[inner] ** 2, Kc * O[inner] * H[inner], rtol=1e-9)
    np.testing.assert_allclose(D[inner], KD * O[inner] * H[inner], rtol=1e-9, atol=1e-300)
    assert np.all(np.array([O, R, H, D]) >= 0)


@pytest.mark.parametrize("C", [0.01, 0.1, 0.5, 1.0])
def test_dimer_half_soc_closed_form(C: float) -> None:
    # §1.2b: at x = 1/2, KD O^2 + (1 + sqrt(Kc)/2) O - C/2 = 0 and R = sqrt(Kc) O
    Kc, KD = 0.1, 5.0
    b = 1 + np.sqrt(Kc) / 2
    O_exact = (-b + np.sqrt(b * b + 2 * KD * C)) / (2 * KD)
    O, R, H, D = speciate(0.5, C, Kc, KD)
    assert O == pytest.approx(O_exact, rel=1e-11)
    assert H == pytest.approx(O_exact, rel=1e-11)
    assert R == pytest.approx(np.sqrt(Kc) * O_exact, rel=1e-11)
    assert D == pytest.approx(KD * O_exact**2, rel=1e-11)


def test_dimer_radical_fraction_falls_with_concentration() -> None:
    C = np.array([0.01, 0.05, 0.1, 0.5, 1.0])
    fR = np.array(speciate(0.5, C, 0.1, 5.0)[1]) / C
    assert np.all(np.diff(fR) < 0)  # Z21 observation reproduced by the KD > 0 model
    Kapp = apparent_K(0.5, C, 0.1, 5.0)
    assert np.all(np.diff(Kapp) < 0) and np.all(Kapp < 0.1)
    np.testing.assert_allclose(apparent_K(0.3, C, 0.1, 0.0), 0.1, rtol=1e-10)


@pytest.mark.parametrize("K", [0.0968, 1.0, 4.0, 49.0])
def test_inverses_round_trip(K: float) -> None:
    x = np.array([0.05, 0.2, 0.35, 0.45])
    f = radical_fraction(x, K)
    lo, hi = soc_from_radical(f, K)
    np.testing.assert_allclose(lo, x, atol=1e-9)
    np.testing.assert_allclose(hi, 1 - x, atol=1e-9)
    np.testing.assert_allclose(K_from_radical(f, x), K, rtol=1e-9)
    # above the maximum (noise) both branches collapse to 1/2
    lo, hi = soc_from_radical(np.sqrt(K) / (2 + np.sqrt(K)) * 1.01, K)
    assert lo == hi == 0.5


def test_architecture_keyword_aliases() -> None:
    a = speciate(0.3, 0.1, 0.1, 5.0)
    b = speciate(0.3, 0.1, K=0.1, K_D=5.0)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError):
        speciate(0.3, 0.1)
