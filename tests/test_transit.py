"""Flow-loop delays, single-pass conversion and the CSTR reservoir (docs/physics.md §1.1, §1.7)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from flowcell.transit import (
    FARADAY,
    delta_soc_per_pass,
    outlet_soc_from_tank,
    refer_to_outlet,
    refer_to_reservoir,
    tank_response,
    tank_soc_from_outlet,
    transit_delays,
    transit_time_s,
)


def test_worked_example_single_pass():
    # docs/physics.md §1.1: 0.1 A, 0.1 M, 13.6 mL/min -> 0.023 (2.3 %)
    d = delta_soc_per_pass(0.1, 0.1, 13.6)
    assert d == pytest.approx(0.1 / (2 * FARADAY * 0.1 * 13.6e-3 / 60), rel=1e-12)
    assert round(d, 3) == 0.023
    arr = delta_soc_per_pass(np.array([0.0, 0.1, -0.1]), 0.1, 13.6)
    np.testing.assert_allclose(arr, [0.0, d, -d], rtol=1e-12)


def test_transit_times_and_delays():
    assert transit_time_s(1.0, 60.0) == pytest.approx(1.0)       # 1 mL at 1 mL/s
    assert transit_time_s(0.5, 13.6) == pytest.approx(0.5 / 13.6 * 60)
    d = transit_delays(rate_mL_min=6.0, cell_to_nmr_mL=0.5, cell_to_epr_mL=0.2, nmr_cell_mL=0.1,
                       epr_cell_mL=0.05, cell_mL=0.3, feed_mL=0.4, return_mL=1.0, reservoir_mL=8.0)
    assert d.cell_to_nmr_s == pytest.approx(5.0)
    assert d.cell_to_epr_s == pytest.approx(2.0)
    assert d.nmr_to_epr_s == pytest.approx(-3.0)  # EPR sees the fluid 3 s before the NMR
    assert d.nmr_residence_s == pytest.approx(1.0)
    assert d.epr_residence_s == pytest.approx(0.5)
    assert d.cell_residence_s == pytest.approx(3.0)
    assert d.feed_s == pytest.approx(4.0) and d.return_s == pytest.approx(10.0)
    assert d.tank_s == pytest.approx(80.0)
    # mean age in the detector: tubing + half the detection volume
    assert d.delay_s("nmr") == pytest.approx(5.5)
    assert d.delay_s("epr") == pytest.approx(2.25)
    assert refer_to_outlet(100.0, d, "nmr") == pytest.approx(94.5)
    np.testing.assert_allclose(refer_to_outlet(np.array([10.0, 20.0]), d, "epr"), [7.75, 17.75])
    with pytest.raises(ValueError):
        transit_time_s(1.0, 0.0)
    with pytest.raises(ValueError):
        transit_time_s(-1.0, 1.0)
    with pytest.raises(ValueError):
        d.delay_s("uv")


def test_outlet_leads_tank_and_reservoir_reference():
    d = transit_delays(rate_mL_min=13.6, cell_to_nmr_mL=0.5, nmr_cell_mL=0.2, cell_mL=0.3, feed_mL=0.5)
    lead = delta_soc_per_pass(0.1, 0.1, 13.6)
    assert outlet_soc_from_tank(0.4, 0.1, 0.1, 13.6) == pytest.approx(0.4 + lead)
    assert tank_soc_from_outlet(outlet_soc_from_tank(0.4, 0.1, 0.1, 13.6), 0.1, 0.1, 13.6) == pytest.approx(0.4)
    t_res, soc_res = refer_to_reservoir(600.0, 0.5, 0.1, d, "nmr", C_tot_M=0.1, rate_mL_min=13.6)
    q = 13.6 / 60.0  # mL/s
    assert t_res == pytest.approx(600.0 - (0.5 + 0.1) / q - 0.3 / q - 0.5 / q)
    assert soc_res == pytest.approx(0.5 - lead)


def test_tank_step_response_is_first_order():
    # a step of inflow composition 0 -> 1 at t = 0: c = 1 - exp(-t Q / V)
    t = np.linspace(0.0, 300.0, 61)
    c = tank_response(t, np.ones_like(t), tank_mL=10.0, rate_mL_min=12.0, c0=0.0)
    np.testing.assert_allclose(c, 1 - np.exp(-t * 0.2 / 10.0), rtol=0, atol=1e-12)


def test_tank_ramp_with_return_delay_matches_ode():
    # inflow c_in(t) = 0.3 + 1e-3 t arriving tau = 20 s later; compare with a tight ODE solution
    V, Qr, tau = 8.0, 13.6, 20.0
    t = np.linspace(0.0, 600.0, 601)   # 1 s grid: the delayed ramp stays piecewise linear
    cin = 0.3 + 1e-3 * t
    c = tank_response(t, cin, tank_mL=V, rate_mL_min=Qr, return_delay_s=tau, c0=0.3)
    a = Qr / 60.0 / V

    def rhs(tt, y):
        u = 0.3 + 1e-3 * max(tt - tau, 0.0)
        return [a * (u - y[0])]

    ref = solve_ivp(rhs, (0, 600), [0.3], t_eval=t, rtol=1e-11, atol=1e-13, max_step=0.5).y[0]
    np.testing.assert_allclose(c, ref, atol=1e-8)
    # late times: the tank lags the delayed inflow by (slope / a)
    assert cin[-1] - 1e-3 * tau - c[-1] == pytest.approx(1e-3 / a, rel=1e-3)
