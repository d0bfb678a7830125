"""An in-line NMR + EPR experiment written by "other software": imports nothing from the package.

The anolyte (DHAQ, well-mixed, detectors sampling the reservoir) is integrated here with
its own ODE: slow states C_act (active quinone), n_e (stored electrons), P (products,
anthrone + anthranol, tautomer constant 1); the comproportionation O + H <=> 2R is at
equilibrium (closed form, docs/physics.md §1.2).  Reactions:

* electrode: i = I/(F V) mol e-/(L s) into n_e;
* decomposition, event rate k_dec [H] (or k_dec [H]^2 with ``order=2``):
  ``"2H->A+O"``: C_act -1, n_e -4, P +1;  ``"H->A"`` (2 e- from outside): C_act -1, n_e -2, P +1;
* O2 self-discharge: n_e loses J_e s/(s + Ks), s = [R]/2 + [H], Ks = 1e-3 M.

Observables (docs/physics.md §1.3, §1.5, §1.6): water shift ``ref + chi_M [R] / 3`` (parallel
geometry, Curie law, g = 2.0046, S = 1/2, 298.15 K), EPR [R], anthrone area ``2 [A]`` with
``[A] = P/2`` on the scale where the first spectrum's ``dhaq_h1_area = 2 C_tot``.  The
potentiostat log gives at each row the mean current over the interval ending there.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

F = 96485.33212
MU0, NA, MU_B, K_B = 4e-7 * np.pi, 6.02214076e23, 9.2740100783e-24, 1.380649e-23
START = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def radical(x: np.ndarray, C: np.ndarray, Kc: float) -> np.ndarray:
    """[R] at the comproportionation equilibrium, mol/L (x = SOC of the active pool)."""
    a = 1.0 - Kc / 4.0
    b = Kc * C / 2.0
    c = Kc * C * C * x * (1.0 - x)
    return (-b + np.sqrt(b * b + 4.0 * a * c)) / (2.0 * a)


def schedule(t: np.ndarray, current_A: float, hours: float) -> np.ndarray:
    """Rest 8 %, charge 45 %, rest 27 %, discharge 20 % of ``hours`` (A)."""
    T = hours * 3600.0
    e = np.array([0.08, 0.53, 0.80, 1.0]) * T
    return np.select([t < e[0], t < e[1], t < e[2]], [0.0, current_A, 0.0], -current_A)


def experiment(*, Kc: float = 0.35, k_dec: float = 3e-5, J_e: float = 3e-7, decomposition: str = "2H->A+O",
               order: int = 1, C: float = 0.1, V: float = 0.01, current_A: float = 0.06, hours: float = 1.5,
               interval_s: float = 90.0, noise: dict | None = None, seed: int = 0,
               hdo_ref: float = 4.79) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(store-like table, potentiostat log, true series) of one experiment.

    ``noise``: sigma per column (ppm, mol/L, area units); default 2e-4 ppm, 2e-4 M, 4e-5.
    """
    noise = {"hdo_shift_ppm": 2e-4, "epr_spin_conc_M": 2e-4, "anthrone_area": 4e-5, **(noise or {})}
    T = hours * 3600.0
    d_e, d_c = {"2H->A+O": (4.0, 1.0), "H->A": (2.0, 1.0)}[decomposition]

    def rhs(t, y):
        Ca, ne, P = y
        x = min(max(ne / (2 * Ca), 0.0), 1.0)
        R = radical(np.array(x), np.array(Ca), Kc)
        H = Ca * x - R / 2
        s = R / 2 + H
        r = k_dec * H ** order
        i = float(schedule(np.array(t), current_A, hours)) / (F * V)
        return [-d_c * r, i - d_e * r - J_e * s / (s + 1e-3), r]

    edges = np.array([0.08, 0.53, 0.80, 1.0]) * T
    t_log = np.unique(np.concatenate([np.arange(0.0, T + 1e-9, 10.0), edges]))
    t_nmr = np.arange(30.0, T, interval_s)
    t_epr = t_nmr + interval_s / 2
    t_epr = t_epr[t_epr < T]
    t_all = np.unique(np.concatenate([t_log, t_nmr, t_epr]))
    y, t0 = [C, 0.0, 0.0], 0.0
    sols = []
    for t1 in edges:  # integrate piece by piece: the current steps at the edges
        seg = t_all[(t_all >= t0) & (t_all <= t1)]
        sol = solve_ivp(rhs, (t0, t1), y, t_eval=seg, method="LSODA", rtol=1e-10, atol=1e-14,
                        first_step=1e-3, max_step=30.0)
        sols.append(pd.DataFrame(sol.y.T, columns=["C_act", "n_e", "P"], index=sol.t))
        y, t0 = sol.y[:, -1].tolist(), t1
    st = pd.concat(sols)
    st = st[~st.index.duplicated(keep="last")]
    x = np.clip(st["n_e"] / (2 * st["C_act"]), 0, 1).to_numpy()
    Ca = st["C_act"].to_numpy()
    R = radical(x, Ca, Kc)
    series = pd.DataFrame({"t_s": st.index.to_numpy(), "soc": x, "O_M": Ca * (1 - x) - R / 2, "R_M": R,
                           "H_M": Ca * x - R / 2, "A_M": st["P"].to_numpy() / 2})
    at = series.set_index("t_s")
    g = 2.0046
    chi = MU0 * NA * g * g * 0.75 * MU_B ** 2 / (3 * K_B * 298.15)  # m3/mol
    rng = np.random.default_rng(seed)
    rows = []
    for t in t_nmr:
        rows.append({"kind": "nmr", "t": t, "hdo_shift_ppm": hdo_ref + chi * 1000 * at.loc[t, "R_M"] / 3 * 1e6
                     + rng.normal(0, noise["hdo_shift_ppm"]), "dhaq_h1_area": 2 * C, "sfo1_MHz": 400.13,
                     "anthrone_area": 2 * at.loc[t, "A_M"] + rng.normal(0, noise["anthrone_area"]),
                     # the extractor's own errors (half the noise: the fit takes twice the median)
                     "hdo_shift_err_ppm": noise["hdo_shift_ppm"] / 2, "anthrone_area_err": noise["anthrone_area"] / 2})
    for t in t_epr:
        rows.append({"kind": "epr", "t": t,
                     "epr_spin_conc_M": at.loc[t, "R_M"] + rng.normal(0, noise["epr_spin_conc_M"])})
    table = pd.DataFrame(rows).sort_values("t", kind="stable").reset_index(drop=True)
    table["time_mid"] = [pd.Timestamp(START + timedelta(seconds=float(t))) for t in table.pop("t")]
    mid = 0.5 * (t_log[1:] + t_log[:-1])
    pot = pd.DataFrame({"t_s": t_log, "I_A": np.concatenate([[0.0], schedule(mid, current_A, hours)])})
    pot.attrs["start"] = START
    return table, pot, series


def config(*, C: float = 0.1, V: float = 0.01, mechanism: str = "") -> dict:
    """The experiment file as a dict: detectors in the reservoir, DHAQ model."""
    return {"experiment": {"name": "other-software"},
            "electrolyte": {"concentration_M": C, "volume_L": V},
            "flow": {"rate_mL_min": 13.6, "detectors": "reservoir"},
            "model": {"name": "dhaq", "mechanism": mechanism}}
