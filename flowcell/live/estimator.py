"""The live state of charge: coulomb counting fused with the water shift and EPR.

An unscented Kalman filter (docs/physics.md §1.9) whose state holds, besides the SOC,
everything the observations need that is not known beforehand:

=============  =====================================================================
``soc``        SOC on the initial amount of quinone (docs/physics.md §1.1)
``r_side``     side-reaction rate, 1/s (charge counted but not stored; random walk)
``ln_Kc``      natural log of the comproportionation constant (§1.2); prior one decade wide
``hdo_ref``    zero-radical water shift, ppm (set by the first water shift, then learnt)
``ln_nmr``     log factor on the ideal BMS water shift per radical (§1.3: cell geometry)
``ln_epr``     log factor on the EPR spin count (§1.5: calibration)
``active``     fraction of the quinone still redox-active (§1.1)
=============  =====================================================================

Coulomb counting from the potentiostat log is the anchor (process model
``dSOC/dt = s I/(2 F C_tot V) - r_side``); the spectra are predicted through
:class:`kinetics.observe.ObservationModel` from the speciation of §1.2, so the
filter learns K_c and the scales as the charge sweeps the radical fraction, and its
uncertainty stays wide until they are pinned down.  Each row is evaluated at its
own acquisition time, minus the transit delay of its instrument (§1.7), even when it
arrives late: the SOC the detector saw is the current estimate shifted by the charge
passed in between, so out-of-order rows leave no sawtooth.  One update costs the same
whatever the time gap (the process model is linear; no sub-steps).

An observation further than ``[live] gate_sigma`` predicted sd from its prediction is
turned down and counted; :attr:`LiveSOC.mismatch` (rms normalised innovation) and
:attr:`LiveSOC.rejection_rate` over the last rows say when data and model disagree.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from flowcell.config import ExperimentConfig
from flowcell.live.state import SOCState
from flowcell.params import resolve_params
from flowcell.transit import delta_soc_per_pass
from ingest.processing.linalg_fast import cholesky as _cholesky
from ingest.processing.linalg_fast import inv as _inv
from kinetics.constants import F as FARADAY
from kinetics.observe import ObservationModel
from kinetics.speciation import radical_fraction, radical_fraction_checked

__all__ = ["KC_PRIOR_CENTRE", "KC_PRIOR_DECADES", "STATE_NAMES", "CoulombSource", "LiveSOC"]

STATE_NAMES = ("soc", "r_side", "ln_Kc", "hdo_ref", "ln_nmr", "ln_epr", "active")
SOC, DRIFT, LN_KC, HDO_REF, LN_NMR, LN_EPR, ACTIVE = range(7)
#: Prior of K_c when none is asked for: centre and sd in decades, so that 0.01-10 (the
#: range of known quinones, docs/physics.md §1.2) lies within 1.5 sd.  The constant is
#: not needed beforehand: the filter learns it as the charge sweeps the radical fraction.
KC_PRIOR_CENTRE, KC_PRIOR_DECADES = 0.316, 1.0
#: Prior sd of the log factors on the water-shift and EPR scales.
NMR_SCALE_SD, EPR_SCALE_SD = 0.2, 0.3
#: Random walk of the constants (ln units² per s): lets a slow drift (temperature) show.
Q_CONST_PER_S = 1e-9
#: Relative sd of the observation model itself (speciation, Curie law, linear EPR response):
#: keeps the filter from trusting a large radical signal beyond what the model can promise.
MODEL_REL_SD = 0.02
#: Observations remembered for the rejection rate and the mismatch.
WINDOW = 20
N_STATES = len(STATE_NAMES)
#: Weight of each of the 2n symmetric sigma points (zero centre weight).
SIGMA_WEIGHT = 1.0 / (2 * N_STATES)


class CoulombSource(Protocol):
    """What the filter needs from a potentiostat log (``flowcell.potentiostat.PotentiostatTail``)."""

    def charge_at(self, t_s: float) -> float:
        """Charge passed since the log's start, C."""

    def current_at(self, t_s: float) -> float:
        """Cell current, A."""


def _sd(var: float) -> float:
    """``sqrt(max(var, 0))`` as numpy evaluates it (NaN stays NaN, -0.0 gives 0.0)."""
    return math.sqrt(var) if var > 0.0 else math.nan if math.isnan(var) else 0.0


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


class LiveSOC:
    """Live SOC with K_c, the water reference and the NMR/EPR scales learnt online.

    Parameters
    ----------
    cfg : ExperimentConfig
        C_tot, V_tot, flow and transit volumes, geometry, current sign and ``[live]`` tuning.
    params : mapping, optional
        Resolved model parameters; default ``flowcell.params.resolve_params(cfg)``.  ``g``,
        ``T`` and ``xi`` set the observation model; ``hdo_ref_ppm`` (when the experiment file
        or ``[live]`` gives it) the zero-radical water shift, else the first water shift does.
    kc_prior : (float, float), optional
        Centre and sd (decades) of the prior on K_c; default (:data:`KC_PRIOR_CENTRE`,
        :data:`KC_PRIOR_DECADES`), centred instead on the resolved ``Kc`` when the experiment
        file names ``Kc`` or ``dE_V``.  A library default never centres it, so a wrong
        default constant cannot make a confident wrong SOC.
    coulombs : CoulombSource, optional
        The potentiostat log (charge and current at a time).  Without it the SOC
        uncertainty grows by ``no_current_rate`` per second: no silent zero current.
    no_current_rate : float
        SOC per second that an unknown current may move the state, 1/s.
    """

    def __init__(self, cfg: ExperimentConfig, params: Mapping[str, float] | None = None, *,
                 coulombs: CoulombSource | None = None, no_current_rate: float = 1.0 / 3600.0,
                 kc_prior: tuple[float, float] = (KC_PRIOR_CENTRE, KC_PRIOR_DECADES)) -> None:
        p = resolve_params(cfg) if params is None else dict(params)
        self.params = p
        self.cfg, self.live = cfg, cfg.live
        self.C, self.V = cfg.electrolyte.concentration_M, cfg.electrolyte.volume_L
        self.sign = cfg.instruments.current_sign
        self.delays = cfg.transit_delays()
        self.coulombs = coulombs
        self.no_current_rate = float(no_current_rate)
        self.obs_model = ObservationModel(geometry=cfg.instruments.geometry, g=float(p.get("g", 2.0046)),
                                          T_K=float(p.get("T", cfg.electrolyte.temperature_K)))
        self.g, self.T = self.obs_model.g, self.obs_model.T_K
        self.obs_params = {"hdo_ref_ppm": 0.0, "epr_scale": 1.0}
        self.xi = float(p["xi"]) if "xi" in p else None
        if self.xi is not None:
            self.obs_params["xi"] = self.xi
        self.hdo_per_M, self.epr_per_M = self._calibrate()
        kc0, kc_decades = kc_prior
        if kc_prior == (KC_PRIOR_CENTRE, KC_PRIOR_DECADES) and {"Kc", "dE_V"} & set(cfg.model.params):
            kc0 = float(p["Kc"])  # the experiment file names K_c: centre of the prior (still learnt)
        self.K = float(kc0)
        lv = self.live
        ref = lv.hdo_ref_ppm if lv.hdo_ref_ppm is not None else p.get("hdo_ref_ppm") \
            if "hdo_ref_ppm" in cfg.model.params else None
        self.hdo_ref_ppm = None if ref is None else float(ref)
        self.x = np.array([lv.soc0, 0.0, math.log(float(kc0)), ref if ref is not None else math.nan, 0.0, 0.0, 1.0])
        self.P = np.diag([lv.soc0_sd ** 2, lv.drift_sd_per_s ** 2, (kc_decades * math.log(10)) ** 2,
                          lv.hdo_ref_sd_ppm ** 2, NMR_SCALE_SD ** 2, EPR_SCALE_SD ** 2, lv.active_sd ** 2])
        self.t_s = 0.0
        self._q_count = self._charge(0.0)
        self._q0 = self._q_count
        # constant matrices and buffers of the time step and the sigma points (no per-row np.eye/np.diag)
        self._F, self._Q = np.eye(N_STATES), np.zeros((N_STATES, N_STATES))
        self._jitter = 1e-18 * np.eye(N_STATES)
        self._w = np.full(2 * N_STATES, SIGMA_WEIGHT)
        self._wcol = self._w[:, None]
        #: ``t_s -> datetime`` (UTC) for :attr:`SOCState.time_utc`; the session sets its clock's.
        self.utc: Callable[[float], datetime | None] | None = None
        self._pass_at = (math.nan, math.nan)  # (current, single-pass SOC change) last evaluated
        self._z: deque[float] = deque(maxlen=WINDOW)
        self._rejected: deque[bool] = deque(maxlen=WINDOW)
        self._streak = 0

    # ---------------------------------------------------------------- potentiostat
    def _charge(self, t_s: float) -> float:
        if self.coulombs is None:
            return math.nan
        q = self.coulombs.charge_at(t_s)
        return float(q) if _finite(q) else math.nan

    def _current(self, t_s: float) -> float:
        if self.coulombs is None:
            return math.nan
        i = self.coulombs.current_at(t_s)
        return float(i) if _finite(i) else math.nan

    def _soc_per_C(self) -> float:
        return self.sign / (2 * FARADAY * self.C * self.V)

    # ---------------------------------------------------------------- time step
    def advance(self, t_s: float) -> float | None:
        """Move the state forward to ``t_s`` (no-op for an earlier time); O(1) for any gap.
        Returns the charge at the new time (C, NaN without a log), None when it did not move."""
        dt = float(t_s) - self.t_s
        if not dt > 0:
            return None
        q = self._charge(t_s)
        if math.isfinite(q) and not math.isfinite(self._q_count):
            self._q_count = self._charge(self.t_s)  # the log just appeared: count from here
        lv = self.live
        qs, qr = lv.q_soc_per_s, lv.q_drift_per_s3
        if math.isfinite(q) and math.isfinite(self._q_count):
            ds = (q - self._q_count) * self._soc_per_C()
            self._q_count = q
        else:  # no current known: the SOC may move at no_current_rate
            ds = 0.0
            qs = qs + self.no_current_rate ** 2 * dt
            if math.isfinite(q):
                self._q_count = q
        self.x[SOC] += ds - self.x[DRIFT] * dt
        F, Q = self._F, self._Q  # identity but F[SOC, DRIFT]; Q zero but its diagonal and Q[SOC, DRIFT]
        F[SOC, DRIFT] = -dt
        qc = Q_CONST_PER_S * dt
        Q[SOC, SOC], Q[DRIFT, DRIFT], Q[LN_KC, LN_KC] = qs * dt + qr * dt ** 3 / 3, qr * dt, qc
        Q[HDO_REF, HDO_REF], Q[LN_NMR, LN_NMR], Q[LN_EPR, LN_EPR] = lv.q_ref_ppm2_per_s * dt, qc, qc
        Q[ACTIVE, ACTIVE] = lv.q_active_per_s * dt
        Q[SOC, DRIFT] = Q[DRIFT, SOC] = -qr * dt ** 2 / 2
        self.P = F @ self.P @ F.T + Q
        self.t_s = float(t_s)
        return q

    def soc_shift(self, t_det: float, r_side: np.ndarray) -> np.ndarray:
        """SOC of the fluid a detector saw at ``t_det`` minus the reservoir SOC now.

        Charge passed between ``t_det`` and now (negative shift for a late row), the
        side reactions over that interval, and the single-pass conversion of the cell
        (the outlet leads the reservoir by ``I/(2 F C_tot Q)``, docs/physics.md §1.1, §1.7).
        """
        dq = self._charge(t_det) - self._q_count if self.coulombs is not None else 0.0
        shift = (dq * self._soc_per_C() if math.isfinite(dq) else 0.0) - r_side * (t_det - self.t_s)
        if self.live.refer_to_outlet:
            i = self._current(t_det)
            if math.isfinite(i):
                if i != self._pass_at[0] or i == 0.0:  # the current changes rarely: one evaluation per current
                    self._pass_at = (i, float(delta_soc_per_pass(self.sign * i, self.C, self.cfg.flow.rate_mL_min)))
                shift = shift + self._pass_at[1]
        return shift

    # ---------------------------------------------------------------- observations
    def _sigma_points(self) -> np.ndarray:
        """Symmetric sigma points (2n rows, weights :data:`SIGMA_WEIGHT`, zero centre weight)."""
        n, x = N_STATES, self.x
        if math.isfinite(x.sum()):  # every state set (the usual case): no masking
            A = self.P + self._jitter
        else:
            ok = np.isfinite(x)
            x = np.where(ok, x, 0.0)
            A = self.P.copy()
            A[~ok, :] = A[:, ~ok] = 0.0
            A[~ok, ~ok] = 1.0  # placeholder for an unset reference (never used)
            A = A + self._jitter
        A *= n
        LT = _cholesky(A).T
        pts = np.empty((2 * n, n), order="F")  # row j: x + column j of L, then x - it (F order, as concatenate gave)
        np.add(x, LT, out=pts[:n])
        np.subtract(x, LT, out=pts[n:])
        return pts

    def _calibrate(self) -> tuple[float, float]:
        """Water shift (ppm) and EPR count per mol/L of radical at unit scales, from
        :class:`kinetics.observe.ObservationModel` (both are linear in [R], docs/physics.md §1.3,
        §1.5); evaluated once so an update costs microseconds."""
        conc = pd.DataFrame({"O": [self.C, self.C - 1e-3], "R": [0.0, 1e-3], "H": [0.0, 0.0]}, index=[0.0, 1.0])
        pred = self.obs_model.predict(conc, self.obs_params)
        hdo, epr = pred["hdo_shift_ppm"].to_numpy(float), pred["epr_spin_conc_M"].to_numpy(float)
        return float(hdo[1] - hdo[0]) / 1e-3, float(epr[1] - epr[0]) / 1e-3

    def _radical(self, pts: np.ndarray, t_det: float) -> np.ndarray:
        """Radical concentration (mol/L) per sigma point: the speciation of docs/physics.md §1.2
        at the detected SOC (u clipped to [0, 1], K_c = exp(ln_Kc) >= 0: checked arguments)."""
        a = np.maximum(pts[:, ACTIVE], 1e-6)
        u = ((pts[:, SOC] + self.soc_shift(t_det, pts[:, DRIFT])) / a).clip(0.0, 1.0)
        return self.C * a * radical_fraction_checked(u, np.exp(pts[:, LN_KC]))

    def _unit_shifts(self, pts: np.ndarray, t_det: float) -> tuple[np.ndarray, np.ndarray]:
        """Water shift over its reference (ppm) and EPR spin count (mol/L) at unit scales,
        per sigma point (both linear in the radical, docs/physics.md §1.3, §1.5)."""
        radical = self._radical(pts, t_det)
        return self.hdo_per_M * radical, self.epr_per_M * radical

    def _offered(self, row: Mapping[str, Any]) -> list[tuple[str, float, float]]:
        """(name, value, sd) of the observations in a row."""
        lv, out = self.live, []
        hdo = row.get("hdo_shift_ppm")
        if _finite(hdo):
            if lv.hdo_temp_coeff_ppm_per_K and _finite(row.get("temperature_K")):
                # water's own shift moves with T (docs/physics.md §1.3): refer it to the config's T
                hdo = float(hdo) - lv.hdo_temp_coeff_ppm_per_K * (
                    float(row["temperature_K"]) - self.cfg.electrolyte.temperature_K)
            err = row.get("hdo_shift_err_ppm")
            out.append(("hdo", float(hdo), math.hypot(lv.sigma_hdo_ppm, float(err) if _finite(err) else 0.0)))
        epr = row.get("epr_spin_conc_M")
        if _finite(epr):
            err = row.get("epr_spin_conc_err_M")
            out.append(("epr", float(epr), math.hypot(lv.sigma_epr_M, float(err) if _finite(err) else 0.0)))
        return out

    def _predict_obs(self, pts: np.ndarray, t_det: float, names: list[str]) -> np.ndarray:
        """Predicted observations per sigma point: one column per name (2n x m)."""
        radical = self._radical(pts, t_det)
        cols = [pts[:, HDO_REF] + np.exp(pts[:, LN_NMR]) * (self.hdo_per_M * radical) if name == "hdo"
                else np.exp(pts[:, LN_EPR]) * (self.epr_per_M * radical) for name in names]
        return cols[0].reshape(-1, 1) if len(cols) == 1 else np.column_stack(cols)

    def _set_reference(self, value: float, sd: float, pts: np.ndarray, t_det: float) -> None:
        """First water shift: the zero-radical reference is what the radicals do not explain."""
        hdo_u, _ = self._unit_shifts(pts, t_det)
        bms = np.exp(pts[:, LN_NMR]) * hdo_u
        w = self._w
        mean = float(w @ bms)
        self.x[HDO_REF] = value - mean
        self.P[HDO_REF, :] = self.P[:, HDO_REF] = 0.0
        self.P[HDO_REF, HDO_REF] = float(w @ (bms - mean) ** 2) + sd ** 2

    def observe(self, row: Mapping[str, Any], t_row: float) -> tuple[dict[str, float], tuple[str, ...],
                                                                       tuple[str, ...]]:
        """Fold in the observations of a row measured at ``t_row`` (s, may be in the past).

        Returns
        -------
        innovations, used, rejected
        """
        obs = self._offered(row)
        if not obs:  # nothing usable: the state is untouched
            return {}, (), ()
        kind = row.get("kind")
        refer = self.live.refer_to_outlet and kind in ("nmr", "epr")
        t_det = t_row - (self.delays.delay_s(kind) if refer else 0.0)
        pts = self._sigma_points()
        if obs[0][0] == "hdo" and not math.isfinite(self.x[HDO_REF]):
            self._set_reference(obs[0][1], obs[0][2], pts, t_det)
            obs = obs[1:]
            if not obs:
                return {}, (), ()
            pts = self._sigma_points()
        names = [o[0] for o in obs]
        w, wcol = self._w, self._wcol
        Y = self._predict_obs(pts, t_det, names)
        y_hat = w @ Y
        dY = Y - y_hat
        # measurement noise plus a model-inadequacy share of the radical signal (MODEL_REL_SD)
        ref = self.x[HDO_REF]
        r = [o[2] ** 2 + (MODEL_REL_SD * (y_hat[i] - (ref if o[0] == "hdo" else 0.0))) ** 2 for i, o in enumerate(obs)]
        S = (dY * wcol).T @ dY + (r[0] if len(r) == 1 else np.diag(r))
        resid = np.array([o[1] for o in obs]) - y_hat
        if len(obs) == 1 and S[0, 0] > 0:  # the same division on floats (sqrt correctly rounded either way)
            z = [float(resid[0]) / math.sqrt(S[0, 0])]
        else:
            z = (resid / np.sqrt(S.diagonal())).tolist()
        gate = self.live.gate_sigma
        keep = [abs(v) <= gate for v in z]
        self._remember(z, keep)
        if any(keep):
            if all(keep):
                dYk, Sk, rk = dY, S, resid
            else:
                k = np.array(keep)
                dYk, Sk, rk = dY[:, k], S[np.ix_(k, k)], resid[k]
            dX = pts - w @ pts
            gain = ((dX * wcol).T @ dYk) @ _inv(Sk)
            self.x = self.x + gain @ rk
            P = self.P - gain @ Sk @ gain.T
            P = 0.5 * (P + P.T)
            diag = P.reshape(-1)[::N_STATES + 1]  # a writable view of the diagonal
            np.maximum(diag, 1e-16, out=diag)
            self.P = P
            # the SOC lives in [0, active]: project the mean back (the clipped observation model
            # near SOC 0 or 1 would otherwise pull it outside)
            self.x[SOC] = min(max(self.x[SOC], 0.0), self.x[ACTIVE])
        used = tuple(n for n, k in zip(names, keep) if k)
        return dict(zip(names, z)), used, tuple(n for n, k in zip(names, keep) if not k)

    def _remember(self, z: list[float], keep: list[bool]) -> None:
        """Track disagreement; after a run of rejections, widen the learnt constants so the
        filter can re-acquire instead of turning down everything that follows."""
        for v, k in zip(z, keep):
            self._z.append(v)
            self._rejected.append(not k)
        self._streak = 0 if all(keep) else self._streak + 1
        if self._streak >= 3:
            for i in (LN_KC, LN_NMR, LN_EPR, HDO_REF, SOC):
                self.P[i, i] *= 4.0
            self._streak = 0

    # ---------------------------------------------------------------- public
    @property
    def rejection_rate(self) -> float:
        """Fraction of the last observations turned down by the gate."""
        return sum(self._rejected) / len(self._rejected) if self._rejected else 0.0

    @property
    def mismatch(self) -> float:
        """RMS normalised innovation of the last observations (about 1 when data and model agree)."""
        return math.sqrt(sum(v * v for v in self._z) / len(self._z)) if self._z else math.nan

    def update(self, row: Mapping[str, Any] | None, t_row: float) -> SOCState:
        """Advance to ``t_row`` (if later) and fold in one row measured at ``t_row``, s."""
        row = row or {}
        q = self.advance(t_row)  # the charge now (the log does not change within an update)
        innov, used, rejected = self.observe(row, t_row) if row else ({}, (), ())
        return self._state(q, {"kind": row.get("kind"), "used": used, "rejected": rejected,
                               "innovations": innov, "row_time_s": t_row})

    def state(self, **extra: Any) -> SOCState:
        """The current estimate as an :class:`SOCState` (``extra``: row details)."""
        return self._state(None, extra)

    def _state(self, q: float | None, extra: dict[str, Any]) -> SOCState:
        """:meth:`state`, with the charge at :attr:`t_s` when the caller has it (C)."""
        x, P = self.x.tolist(), self.P
        soc, a = x[SOC], x[ACTIVE]
        kc = math.exp(x[LN_KC])
        sd_soc, sd_kc = _sd(P[SOC, SOC]), _sd(P[LN_KC, LN_KC])
        u = min(max(soc / a, 0.0), 1.0)
        if q is None:
            q = self._charge(self.t_s)
        if not math.isfinite(self._q0):
            self._q0 = self._charge(0.0)
        soc_cc = self.live.soc0 + (q - self._q0) * self._soc_per_C() if math.isfinite(q + self._q0) else math.nan
        if self.utc is not None and "time_utc" not in extra:
            extra["time_utc"] = self.utc(self.t_s)
        return SOCState(
            t_s=self.t_s, soc=soc, soc_sd=sd_soc, soc_active=soc / a,
            soc_coulomb=soc_cc, drift=soc_cc - soc, r_side_per_s=x[DRIFT], Kc=kc,
            Kc_lo=kc * math.exp(-2 * sd_kc), Kc_hi=kc * math.exp(2 * sd_kc),
            nmr_scale=math.exp(x[LN_NMR]), epr_scale=math.exp(x[LN_EPR]), hdo_ref_ppm=x[HDO_REF],
            radical_M=self.C * a * radical_fraction(u, kc), active_fraction=a,
            current_A=self._current(self.t_s), **extra)
