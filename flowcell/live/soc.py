"""Live state of charge: coulomb counting fused with the spectroscopic observables.

An extended Kalman filter (science.md §1.9) with state
``[SOC, r_side, hdo_ref, a]``:

* ``SOC`` on the initial C_tot (§1.1); ``a = C_act / C_tot`` the fraction still active
  (1 until something decomposes), so the SOC on the active total is ``SOC / a``;
* process model ``dSOC/dt = s I (1 - eps_H) / (2 F C_tot V_tot) - r_side + known`` (§1.1),
  ``s`` the current sign of the config, ``r_side`` (1/s) the unexplained rate at which
  charge is lost (HER, O2 re-oxidation, decomposition; a random walk), and ``known``
  the side reactions predicted from ``model_params`` (``eps_H``, ``k_dec``, ``k_dec2``,
  ``J_e``, ``Ks``; zero when not given), which also drive ``da/dt``;
* ``hdo_ref`` (ppm), the zero-radical water shift, is a slow random walk (temperature);
* observations (through the closed-form radical fraction ``f_R(u; K)``, §1.2, at the
  detected ``u = SOC_act``):

  - water shift ``h_water = hdo_ref + xi chi_M C_tot a f_R(u)`` (§1.3, ppm),
  - EPR spin concentration ``h_epr = C_tot a f_R(u)`` (§1.5, mol/L),
  - optionally an aromatic area fraction ``h_arom = f_H / (f_O + f_H)
    = (u - f_R/2) / (1 - f_R)`` (§1.9 step 2, slow regime), monotonic in u,
  - optionally an O-form peak area ``area_ref a f_O(u)``.

``f_R`` is symmetric about 50 %, so near 50 % (and near 0/100 % for the
sensitivity) the Jacobian ``dh/dx`` goes to zero and the filter leans on the
coulomb count and the learnt ``r_side`` by itself; the branch (x or 1-x) is
kept by the dynamics, as §1.9 step 3 asks.

Each spectrum sees the fluid that left the cell ``delay`` earlier (§1.7) and
the cell outlet leads the reservoir by ``dSOC_pass = I/(2 F C_tot Q)`` (§1.1),
so with ``[live] refer_to_outlet = true`` an observation is evaluated at
``x + dSOC_pass - (dSOC/dt) delay``; the ``-r_side delay`` term enters the Jacobian.

The zero-radical water shift ``hdo_ref`` is ``[live] hdo_ref_ppm`` when given,
otherwise it is set from the first ``n_ref_spectra`` water shifts, each
corrected by the shift predicted at the (coulomb-counted) prior SOC, which
should then be reliable (start near SOC 0 with a known state).

Observation models come from ``kinetics.observe.water_shift_ppm`` and
``kinetics.speciation.radical_fraction`` (science.md §1.2, §1.3).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

import numpy as np

from kinetics.observe import water_shift_ppm
from kinetics.speciation import radical_fraction

from flowcell.config import ExperimentConfig
from flowcell.transit import FARADAY, delta_soc_per_pass

__all__ = ["SOCState", "LiveSOC", "TerminalTable", "LivePlot", "format_state"]

# --------------------------------------------------------------------------- state record

@dataclass(frozen=True)
class SOCState:
    """One filter output.

    Attributes
    ----------
    t_s : float
        Time of the estimate, s (the filter's clock).
    soc, soc_sd : float
        Reservoir SOC estimate and its standard deviation (dimensionless).
    radical_M : float
        ``C_tot f_R(soc)``, mol/L.
    soc_coulomb : float
        Pure coulomb-counted SOC from ``soc0`` (science.md §1.1).
    drift : float
        ``soc_coulomb - soc``: charge counted but not stored (SOC units).
    r_side_per_s, r_side_sd_per_s : float
        Side-reaction rate estimate (1/s, SOC per second; > 0 means charge lost) and its sd.
    branch : {'low', 'high'}
        Which side of 50 % the estimate is on.
    current_A : float
        Current used for the last step, A.
    hdo_ref_ppm : float or None
        Zero-radical water shift in use.
    used : tuple of str
        Observations used in this update ('hdo', 'epr', 'arom').
    innovations : dict
        Normalised prior innovation (residual / predicted sd) per observation offered.
    kind : str or None
        'nmr' / 'epr' for a spectrum row, None for a pure time/current step.
    rejected : tuple of str
        Observations dropped by the outlier gate (``|innovation| > [live] gate_sigma``).
    active_fraction, active_sd : float
        ``a = C_act / C_tot``, the fraction of the quinone still redox-active, and its sd.
    soc_active : float
        SOC on the current active total, ``soc / a`` (science.md §1.1).
    """

    t_s: float
    soc: float
    soc_sd: float
    radical_M: float
    soc_coulomb: float
    drift: float
    r_side_per_s: float
    r_side_sd_per_s: float
    branch: str
    current_A: float
    hdo_ref_ppm: float | None
    used: tuple[str, ...] = ()
    innovations: dict[str, float] = field(default_factory=dict)
    kind: str | None = None
    rejected: tuple[str, ...] = ()
    active_fraction: float = 1.0
    soc_active: float = float("nan")
    active_sd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Flat dict (innovations as ``innov_<name>``), for tables."""
        d = asdict(self)
        inn = d.pop("innovations")
        d["used"] = ",".join(self.used)
        d["rejected"] = ",".join(self.rejected)
        for k, v in inn.items():
            d[f"innov_{k}"] = v
        return d


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- the filter

class LiveSOC:
    """Extended Kalman filter for the live anolyte SOC (science.md §1.9).

    Parameters
    ----------
    cfg : ExperimentConfig
        Supplies C_tot, V_tot, flow, geometry, clock offsets, ``[model.params]``
        (``Kc``, ``g``, ``xi``, ``T``, ``hdo_ref_ppm``) and ``[live]`` tuning.
    model_params : dict, optional
        Overrides for ``Kc``, ``g``, ``xi``, ``T``, ``hdo_ref_ppm`` (e.g. from a fit).
    arom_column : str, (str, str) or None
        Aromatic channel (science.md §1.9 step 2, slow regime): a row column holding
        the area fraction ``A_H/(A_O + A_H)``, or a pair ``(O_area_column,
        H_area_column)`` (e.g. ``("dhaq_h1_area", "dhaq4_h1_area")``) from which it
        is formed; None disables the channel.
    area_column : str or None
        Capacity channel: a row column holding the area of an O-form (oxidised
        quinone) peak, e.g. ``"dhaq_h1_area"``.  Observed as ``a f_O(SOC_act)``
        times ``area_ref`` (slow regime, where broadening preserves area, §1.9 step 2):
        monotonic in SOC, so it helps near 50 %.  It constrains the active fraction
        ``a`` only weakly at high SOC (f_O is small there); decomposition is best handled
        by passing the fitted ``k_dec`` in ``model_params``.
    area_ref : float, optional
        Area of that peak for the whole initial C_tot as O; default: from the first
        ``n_ref_spectra`` rows, corrected by the predicted ``a f_O`` (needs SOC < ~0.8 there).
    t0_s : float
        Time of the initial state, s.
    start : datetime, optional
        Absolute time of ``t_s = 0`` (e.g. the potentiostat log's ``attrs['start']``).
        When given, rows are timed by ``time_mid - start`` (preferred over their
        ``t_s``, which ``ingest`` counts from the first spectrum); otherwise by
        ``t_s``, or by ``time_mid`` relative to the first stamp seen.

    Notes
    -----
    ``update(row, current_A, t_s)`` takes one watcher row (``kind``,
    ``hdo_shift_ppm``, ``hdo_shift_err_ppm``, ``epr_spin_conc_M``, ``t_s`` or
    ``time_mid``) and the cell current.  Times taken from the row are shifted by the
    instrument's clock offset (``[instruments] nmr_clock_offset_s`` /
    ``epr_clock_offset_s``, instrument minus potentiostat); an explicit ``t_s`` is
    used as given.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        *,
        model_params: Mapping[str, float] | None = None,
        arom_column: str | tuple[str, str] | None = None,
        area_column: str | None = None,
        area_ref: float | None = None,
        t0_s: float = 0.0,
        start: datetime | None = None,
    ) -> None:
        self.cfg = cfg
        p = dict(cfg.model.params)
        p.update(model_params or {})
        self.C = cfg.electrolyte.concentration_M
        self.V = cfg.electrolyte.volume_L
        self.K = float(p.get("Kc", cfg.Kc))
        self.g = float(p.get("g", 2.0046))
        self.T = float(p.get("T", cfg.electrolyte.temperature_K))
        self.xi = p.get("xi")
        self.geometry = cfg.instruments.geometry
        self.sign = cfg.instruments.current_sign
        lv = cfg.live
        self.live = lv
        self._radical_fraction = radical_fraction
        kw = {"g": self.g, "T_K": self.T, "geometry": self.geometry}
        if self.xi is not None:
            kw["xi"] = float(self.xi)
        # the BMS shift is linear in [R]: evaluate its slope once (ppm per mol/L)
        self.ppm_per_M = float(water_shift_ppm(1e-3, **kw) - water_shift_ppm(0.0, **kw)) / 1e-3
        ref = p.get("hdo_ref_ppm", lv.hdo_ref_ppm)
        self.hdo_ref_ppm: float | None = None if ref is None else float(ref)
        self._ref_samples: list[float] = []
        self.arom_column = arom_column
        self.area_column = area_column
        self.area_ref: float | None = None if area_ref is None else float(area_ref)
        self._area_samples: list[float] = []
        self.delays = cfg.transit_delays()
        # known side reactions (kinetics.library DHAQ model, science.md §2.1/§2.4): a fitted
        # model passed as model_params makes the filter predict them instead of learning them
        self.k_dec = float(p.get("k_dec", 0.0))
        self.k_dec2 = float(p.get("k_dec2", 0.0))
        self.J_e = float(p.get("J_e", 0.0))
        self.Ks = float(p.get("Ks", 1e-3))
        self.eps_H = float(p.get("eps_H", 0.0))
        # state: [SOC (on the initial C_tot), r_side (1/s), hdo_ref (ppm), a = C_act/C_tot];
        # hdo_ref is filled in by the first water shift
        self.x = np.array([lv.soc0, 0.0, self.hdo_ref_ppm or 0.0, 1.0])
        self.P = np.diag([lv.soc0_sd ** 2, lv.drift_sd_per_s ** 2, lv.hdo_ref_sd_ppm ** 2,
                          lv.active_sd ** 2])
        self.t_s = float(t0_s)
        self.soc_coulomb = float(lv.soc0)
        self.current_A = 0.0
        self._t0_stamp = None
        self._start_given = start is not None
        if start is not None:
            import pandas as pd

            ts = pd.Timestamp(start)
            self._t0_stamp = ts.tz_localize("UTC") if ts.tzinfo is None else ts
        self.history: list[SOCState] = []

    # ---------------------------------------------------------------- model pieces
    def radical_fraction(self, x: float) -> float:
        """f_R at SOC x (clipped into [0, 1])."""
        return float(self._radical_fraction(min(max(x, 0.0), 1.0), self.K))

    def _dfr(self, x: float) -> float:
        xc = min(max(x, 1e-9), 1 - 1e-9)
        h = min(1e-6, xc / 2, (1 - xc) / 2)
        return (self.radical_fraction(xc + h) - self.radical_fraction(xc - h)) / (2 * h)

    def predict_observations(self, soc: float) -> dict[str, float]:
        """Observation model at an SOC (initial-C_tot basis) seen by a detector, with the current
        active fraction: hdo shift (ppm), EPR (mol/L), aromatic fraction."""
        a = float(self.x[3])
        xc = min(max(soc / a, 0.0), 1.0)
        fr = self.radical_fraction(xc)
        out = {
            "hdo_shift_ppm": float(self.x[2]) + self.ppm_per_M * self.C * a * fr,
            "epr_spin_conc_M": self.C * a * fr,
            "arom": (xc - fr / 2) / (1 - fr) if fr < 1 else 0.5,
        }
        return out

    def _h(self, name: str, xe: float, ref: float = 0.0) -> tuple[float, float]:
        """Value and d/dx of one observation at detector SOC xe (``ref``: hdo_ref, ppm)."""
        fr = self.radical_fraction(xe)
        d = self._dfr(xe)
        if name == "hdo":
            return ref + self.ppm_per_M * self.C * fr, self.ppm_per_M * self.C * d
        if name == "epr":
            return self.C * fr, self.C * d
        if name == "arom":
            xc = min(max(xe, 0.0), 1.0)
            val = (xc - fr / 2) / (1 - fr)
            dval = ((1 - d / 2) * (1 - fr) + (xc - fr / 2) * d) / (1 - fr) ** 2
            return val, dval
        raise KeyError(name)

    # ---------------------------------------------------------------- time handling
    def _row_time(self, row: Mapping[str, Any]) -> float | None:
        kind = row.get("kind")
        offset = 0.0
        if kind == "nmr":
            offset = self.cfg.instruments.nmr_clock_offset_s
        elif kind == "epr":
            offset = self.cfg.instruments.epr_clock_offset_s
        stamp = row.get("time_mid")
        if _finite(row.get("t_s")) and not (self._start_given and stamp is not None):
            return float(row["t_s"]) - offset
        if stamp is not None:
            import pandas as pd

            ts = pd.Timestamp(stamp)
            if ts.tzinfo is None:
                ts = ts.tz_localize("UTC")
            if self._t0_stamp is None:
                self._t0_stamp = ts - pd.Timedelta(seconds=self.t_s)
            return (ts - self._t0_stamp).total_seconds() - offset
        return None

    # ---------------------------------------------------------------- filter steps
    def _predict(self, t_new: float, current_A: float | None, charge_C: float | None) -> None:
        dt = t_new - self.t_s
        if dt < 0:
            dt = 0.0  # out-of-order row: no time step, still use its observations
        if charge_C is not None:
            dq = float(charge_C)
            if current_A is not None:
                self.current_A = float(current_A)
        else:
            i_new = self.current_A if current_A is None else float(current_A)
            dq = i_new * dt  # the current given is the one that flowed since the last update
            self.current_A = i_new
        i_ch = self.sign * dq
        if i_ch > 0 and self.eps_H:
            i_ch *= 1.0 - self.eps_H  # known HER fraction of the charging current
        ds = i_ch / (2 * FARADAY * self.C * self.V)
        self.soc_coulomb += self.sign * dq / (2 * FARADAY * self.C * self.V)
        x_old = self.x.copy()
        self.x = self._propagate(x_old, dt, ds)
        # Jacobian of the step by finite differences (4 states, cheap)
        F = np.eye(4)
        if dt > 0:
            for j, h in enumerate((1e-6, 1e-9, 1e-6, 1e-6)):
                if j == 2:
                    continue  # hdo_ref is a pure random walk
                xp = x_old.copy()
                xp[j] += h
                F[:, j] = (self._propagate(xp, dt, ds) - self.x) / h
        qs, qr, qh = self.live.q_soc_per_s, self.live.q_drift_per_s3, self.live.q_ref_ppm2_per_s
        qa = self.live.q_active_per_s
        Q = np.array([[qs * dt + qr * dt ** 3 / 3, -qr * dt ** 2 / 2, 0.0, 0.0],
                      [-qr * dt ** 2 / 2, qr * dt, 0.0, 0.0],
                      [0.0, 0.0, qh * dt, 0.0],
                      [0.0, 0.0, 0.0, qa * dt]])
        self.P = F @ self.P @ F.T + Q
        self.t_s = max(self.t_s, t_new)

    def side_rates(self, soc: float, a: float) -> tuple[float, float]:
        """Known side-reaction rates at SOC ``soc`` with active fraction ``a``: (dSOC/dt, da/dt), 1/s.

        From ``k_dec``, ``k_dec2``, ``J_e``, ``Ks`` of the model parameters (0 when not given),
        with the DHAQ model's stoichiometry (kinetics.library, science.md §2.1, §2.4):
        ``2 H -> A + O`` at ``k_dec [H] + k_dec2 [H]^2`` events (4 electrons and 1 active unit
        lost per event) and ``H -> O`` at ``J_e/2 s/(s + Ks)``, ``s = [R]/2 + [H]`` (2 electrons).
        """
        if not (self.k_dec or self.k_dec2 or self.J_e):
            return 0.0, 0.0
        a = max(a, 1e-6)
        xa = min(max(soc / a, 0.0), 1.0)
        fr = self.radical_fraction(xa)
        H = self.C * a * max(xa - fr / 2, 0.0)
        R = self.C * a * fr
        ev = self.k_dec * H + self.k_dec2 * H * H
        sd = R / 2 + H
        ox = 0.5 * self.J_e * sd / (sd + self.Ks) if self.J_e else 0.0
        return -(4 * ev + 2 * ox) / (2 * self.C), -ev / self.C

    def _propagate(self, x: np.ndarray, dt: float, ds: float) -> np.ndarray:
        """Deterministic step over ``dt`` (s) with coulomb increment ``ds``; sub-steps of <= 30 s."""
        n = max(1, int(math.ceil(dt / 30.0)))
        h = dt / n
        soc, r, ref, a = (float(v) for v in x)
        for _ in range(n):
            dsoc, da = self.side_rates(soc, a)
            soc += ds / n + (dsoc - r) * h
            a += da * h
        return np.array([soc, r, ref, a])

    def _offset(self, kind: str | None) -> tuple[float, float]:
        """(SOC offset of the detected fluid vs the reservoir now, d offset / d r_side)."""
        if not self.live.refer_to_outlet or kind not in ("nmr", "epr"):
            return 0.0, 0.0
        delay = self.delays.delay_s(kind)
        i_ch = self.sign * self.current_A
        rate = i_ch / (2 * FARADAY * self.C * self.V) - self.x[1]
        pass_ = float(delta_soc_per_pass(i_ch, self.C, self.cfg.flow.rate_mL_min))
        return pass_ - rate * delay, delay

    def _collect(self, row: Mapping[str, Any]) -> list[tuple[str, float, float]]:
        obs: list[tuple[str, float, float]] = []
        lv = self.live
        hdo = row.get("hdo_shift_ppm")
        if _finite(hdo) and lv.hdo_temp_coeff_ppm_per_K and _finite(row.get("temperature_K")):
            # water's own shift moves with T (Gottlieb: -1/96.9 ppm/K, science.md §1.3 item 1):
            # refer the observed shift to the electrolyte temperature of the config
            dT = float(row["temperature_K"]) - self.cfg.electrolyte.temperature_K
            hdo = float(hdo) - lv.hdo_temp_coeff_ppm_per_K * dT
        if _finite(hdo):
            err = row.get("hdo_shift_err_ppm")
            sd = math.hypot(lv.sigma_hdo_ppm, float(err) if _finite(err) else 0.0)
            if self.hdo_ref_ppm is None:
                off, _ = self._offset(row.get("kind"))
                a = float(self.x[3])
                pred = self.ppm_per_M * self.C * a * self.radical_fraction((self.x[0] + off) / a)
                self._ref_samples.append(float(hdo) - pred)
                if len(self._ref_samples) >= lv.n_ref_spectra:
                    self.hdo_ref_ppm = float(np.mean(self._ref_samples))
                    self.x[2] = self.hdo_ref_ppm  # refined afterwards as a filter state
            else:
                obs.append(("hdo", float(hdo), sd))
        epr = row.get("epr_spin_conc_M")
        if _finite(epr):
            err = row.get("epr_spin_conc_err_M")
            obs.append(("epr", float(epr), math.hypot(lv.sigma_epr_M, float(err) if _finite(err) else 0.0)))
        if self.area_column is not None and _finite(row.get(self.area_column)):
            area = float(row[self.area_column])
            if self.area_ref is None:
                off, _ = self._offset(row.get("kind"))
                a = float(self.x[3])
                u = min(max((self.x[0] + off) / a, 0.0), 1.0)
                unit = a * (1.0 - u - self.radical_fraction(u) / 2)
                if unit > 0.2:
                    self._area_samples.append(area / unit)
                    if len(self._area_samples) >= lv.n_ref_spectra:
                        self.area_ref = float(np.mean(self._area_samples))
            else:
                obs.append(("area", area / self.area_ref, lv.sigma_area_rel))
        if self.arom_column is not None:
            frac = self._arom_fraction(row)
            if frac is not None:
                obs.append(("arom", frac, lv.sigma_arom))
        return obs

    def _arom_fraction(self, row: Mapping[str, Any]) -> float | None:
        col = self.arom_column
        if isinstance(col, str):
            v = row.get(col)
            return float(v) if _finite(v) else None
        o_col, h_col = col  # type: ignore[misc]
        a_o, a_h = row.get(o_col), row.get(h_col)
        if not (_finite(a_o) and _finite(a_h)) or float(a_o) + float(a_h) <= 0:
            return None
        return float(a_h) / (float(a_o) + float(a_h))

    def _linearise(self, obs: list[tuple[str, float, float]], kind: str | None,
                   xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted observations and their Jacobian at state ``xi``.

        Columns: SOC, r_side, hdo_ref, a.  The detector sees SOC_act
        ``u = (soc + offset) / a`` and radicals ``C_tot a f_R(u)``.
        """
        off, doff_dr = self._offset(kind)
        # the offset depends on r_side: -rate*delay with rate = I/(2FCV) - r
        a = max(float(xi[3]), 1e-6)
        u = (xi[0] + off + (xi[1] - self.x[1]) * doff_dr) / a
        fr = self.radical_fraction(u)
        d = self._dfr(u)
        hv, H = [], []
        for name, _, _ in obs:
            if name in ("hdo", "epr"):
                k = self.ppm_per_M * self.C if name == "hdo" else self.C
                v = k * a * fr + (xi[2] if name == "hdo" else 0.0)
                H.append([k * d, k * d * doff_dr, 1.0 if name == "hdo" else 0.0, k * (fr - u * d)])
            elif name == "area":  # O-form peak area / reference = a f_O(u)
                uc = min(max(u, 0.0), 1.0)
                fo = 1.0 - uc - fr / 2
                g = -1.0 - d / 2
                v = a * fo
                H.append([g, g * doff_dr, 0.0, fo - u * g])
            else:  # aromatic area fraction f_H / (f_O + f_H) at u
                uc = min(max(u, 0.0), 1.0)
                v = (uc - fr / 2) / (1 - fr)
                g = ((1 - d / 2) * (1 - fr) + (uc - fr / 2) * d) / (1 - fr) ** 2
                H.append([g / a, g * doff_dr / a, 0.0, -g * u / a])
            hv.append(v)
        return np.array(hv), np.array(H)

    def _correct(self, obs: list[tuple[str, float, float]],
                 kind: str | None) -> tuple[dict[str, float], tuple[str, ...]]:
        """Gate, then iterated EKF update (Gauss-Newton, 3 passes) for the nonlinear f_R.

        Returns the normalised prior innovations of every observation and the names rejected
        by the ``[live] gate_sigma`` test.
        """
        if not obs:
            return {}, ()
        x0, P0 = self.x.copy(), self.P.copy()
        hv, H = self._linearise(obs, kind, x0)
        y = np.array([o[1] for o in obs])
        R = np.diag([o[2] ** 2 for o in obs])
        z = (y - hv) / np.sqrt(np.diag(H @ P0 @ H.T + R))
        innov = {name: float(z[i]) for i, (name, _, _) in enumerate(obs)}
        keep = np.abs(z) <= self.live.gate_sigma
        rejected = tuple(o[0] for o, k in zip(obs, keep) if not k)
        if not keep.any():
            return innov, rejected
        obs = [o for o, k in zip(obs, keep) if k]
        y, R = y[keep], R[np.ix_(keep, keep)]
        hv, H = hv[keep], H[keep]
        xi = x0.copy()
        for it in range(3):
            if it:
                hv, H = self._linearise(obs, kind, xi)
            S = H @ P0 @ H.T + R
            Kg = P0 @ H.T @ np.linalg.inv(S)
            xi = x0 + Kg @ (y - hv - H @ (x0 - xi))
        self.x = xi
        A = np.eye(4) - Kg @ H
        self.P = A @ P0 @ A.T + Kg @ R @ Kg.T  # Joseph form
        if self.hdo_ref_ppm is not None:
            self.hdo_ref_ppm = float(self.x[2])
        return innov, rejected

    def update(
        self,
        row: Mapping[str, Any] | None = None,
        current_A: float | None = None,
        t_s: float | None = None,
        *,
        charge_C: float | None = None,
    ) -> SOCState:
        """Advance the filter to ``t_s`` and fold in one spectrum row.

        Parameters
        ----------
        row : mapping, optional
            One row from the watcher/store (columns of docs/architecture.md).
            None or an empty dict: a pure coulomb-counting step.
        current_A : float, optional
            Cell current that flowed since the previous update, A (held constant over
            the interval, exact for a constant current); None keeps the previous value.
            For a current that changed in between, pass ``charge_C`` instead.
        t_s : float, optional
            Time, s.  Default: the row's ``t_s`` (or ``time_mid``) minus the clock offset.
        charge_C : float, optional
            Charge passed since the previous update, C (overrides the current
            integration; use it with a coulomb count from the potentiostat log).

        Returns
        -------
        SOCState
        """
        row = row or {}
        if t_s is None:
            t_s = self._row_time(row)
        if t_s is None:
            t_s = self.t_s
        self._predict(float(t_s), current_A, charge_C)
        kind = row.get("kind")
        obs = self._collect(row)
        innov, rejected = self._correct(obs, kind)
        st = self.state(kind=kind, used=tuple(o[0] for o in obs if o[0] not in rejected),
                        innovations=innov, rejected=rejected)
        self.history.append(st)
        return st

    def state(self, *, kind: str | None = None, used: tuple[str, ...] = (),
              innovations: dict[str, float] | None = None, rejected: tuple[str, ...] = ()) -> SOCState:
        """The current estimate as an :class:`SOCState`."""
        soc = float(self.x[0])
        a = float(self.x[3])
        return SOCState(
            t_s=self.t_s, soc=soc, soc_sd=float(math.sqrt(max(self.P[0, 0], 0.0))),
            radical_M=self.C * a * self.radical_fraction(soc / a), soc_coulomb=self.soc_coulomb,
            drift=self.soc_coulomb - soc, r_side_per_s=float(self.x[1]),
            r_side_sd_per_s=float(math.sqrt(max(self.P[1, 1], 0.0))),
            branch="low" if soc < 0.5 else "high", current_A=self.current_A,
            hdo_ref_ppm=self.hdo_ref_ppm, used=used, innovations=dict(innovations or {}), kind=kind,
            rejected=rejected, active_fraction=a, soc_active=soc / a,
            active_sd=float(math.sqrt(max(self.P[3, 3], 0.0))),
        )

    def run(self, rows, current: Callable[[float], float] | None = None) -> list[SOCState]:
        """Feed a sequence of rows (dicts or a DataFrame, time-ordered); ``current(t_s) -> A``."""
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict("records")
        out = []
        for r in rows:
            t = self._row_time(r)
            out.append(self.update(r, None if current is None or t is None else current(t), t))
        return out


# --------------------------------------------------------------------------- terminal table

_COLUMNS = (("t (min)", 8), ("SOC %", 7), ("±sd %", 6), ("branch", 6), ("coul %", 7), ("drift %", 7),
            ("r_side %/h", 10), ("[R] mM", 7), ("I mA", 8), ("obs", 9))


def format_state(st: SOCState) -> str:
    """One fixed-width line for a state (units in the header)."""
    vals = (f"{st.t_s / 60:8.2f}", f"{100 * st.soc:7.2f}", f"{100 * st.soc_sd:6.2f}", f"{st.branch:>6}",
            f"{100 * st.soc_coulomb:7.2f}", f"{100 * st.drift:7.2f}", f"{100 * 3600 * st.r_side_per_s:10.3f}",
            f"{1e3 * st.radical_M:7.2f}", f"{1e3 * st.current_A:8.2f}", f"{','.join(st.used) or '-':>9}")
    return " ".join(vals)


def _header() -> str:
    return " ".join(f"{name:>{w}}" for name, w in _COLUMNS)


class TerminalTable:
    """A live table of the latest states.

    On a terminal (``stream.isatty()``) it redraws the last ``n_rows`` lines in
    place with ANSI cursor moves; otherwise it prints the header once and one
    plain line per update (log-friendly).

    Parameters
    ----------
    stream : text stream, default ``sys.stdout``
    n_rows : int
    ansi : bool or None
        Force ANSI on/off; None detects a TTY.
    """

    def __init__(self, stream: TextIO | None = None, *, n_rows: int = 12, ansi: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.n_rows = n_rows
        if ansi is None:
            ansi = bool(getattr(self.stream, "isatty", lambda: False)())
        self.ansi = ansi
        self.rows: list[str] = []
        self._drawn = 0
        self._header_done = False

    def render(self) -> str:
        """The table as plain text (header, rule, last ``n_rows`` lines)."""
        head = _header()
        return "\n".join([head, "-" * len(head), *self.rows[-self.n_rows:]])

    def update(self, state: SOCState) -> None:
        """Add a state and redraw."""
        line = format_state(state)
        self.rows.append(line)
        if self.ansi:
            text = self.render()
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self.stream.write(text + "\n")
            self._drawn = text.count("\n") + 1
        else:
            if not self._header_done:
                head = _header()
                self.stream.write(head + "\n" + "-" * len(head) + "\n")
                self._header_done = True
            self.stream.write(line + "\n")
        self.stream.flush()


# --------------------------------------------------------------------------- plot

class LivePlot:
    """An updating SOC plot: filter SOC ± 2 sd, coulomb count, radical concentration.

    With a display and an interactive backend the window refreshes; otherwise
    (Agg, no display, or ``interactive=False``) a PNG is saved at ``path`` on
    every update.  Uses :class:`matplotlib.figure.Figure` directly when not
    interactive, so it never needs a GUI.

    Parameters
    ----------
    path : str or Path, optional
        PNG to write (default ``live_soc.png`` in the working directory when not interactive).
    interactive : bool or None
        None: interactive only if the backend is not Agg-like and a display exists.
    title : str, optional
    """

    def __init__(self, path: str | Path | None = None, *, interactive: bool | None = None,
                 title: str | None = None) -> None:
        import matplotlib

        backend = matplotlib.get_backend().lower()
        if interactive is None:
            headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or
                                                                 os.environ.get("WAYLAND_DISPLAY"))
            interactive = not (headless or backend in ("agg", "pdf", "svg", "ps", "cairo", "template")
                               or "inline" in backend)
        self.interactive = interactive
        self.path = Path(path) if path is not None else (None if interactive else Path("live_soc.png"))
        if interactive:
            import matplotlib.pyplot as plt

            plt.ion()
            self.fig = plt.figure(figsize=(8, 5))
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            self.fig = Figure(figsize=(8, 5))
            FigureCanvasAgg(self.fig)
        self.ax_soc, self.ax_r = self.fig.subplots(2, 1, sharex=True)
        self.fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.1, hspace=0.08)
        self.title = title
        self.states: list[SOCState] = []

    def update(self, state: SOCState) -> Path | None:
        """Add a state, redraw; returns the PNG path when one was written."""
        self.states.append(state)
        t = np.array([s.t_s for s in self.states]) / 60.0
        soc = np.array([s.soc for s in self.states]) * 100
        sd = np.array([s.soc_sd for s in self.states]) * 100
        cc = np.array([s.soc_coulomb for s in self.states]) * 100
        rad = np.array([s.radical_M for s in self.states]) * 1e3
        a, b = self.ax_soc, self.ax_r
        a.clear()
        b.clear()
        a.fill_between(t, soc - 2 * sd, soc + 2 * sd, color="C0", alpha=0.25, lw=0, label="±2 sd")
        a.plot(t, soc, "C0-", label="SOC (filter)")
        a.plot(t, cc, "C1--", label="SOC (coulomb count)")
        a.axhline(50, color="0.6", lw=0.8, ls=":")
        a.set_ylabel("SOC (%)")
        a.legend(loc="best", fontsize=8)
        if self.title:
            a.set_title(self.title)
        b.plot(t, rad, "C2-")
        b.set_ylabel("[R] (mM)")
        b.set_xlabel("time (min)")
        if self.interactive:
            self.fig.canvas.draw_idle()
            self.fig.canvas.flush_events()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fig.savefig(self.path, dpi=90)
            return self.path
        return None

    def close(self) -> None:
        """Release the figure."""
        if self.interactive:
            import matplotlib.pyplot as plt

            plt.close(self.fig)
