"""The live SOC row's shortcuts give the numbers of the steps they replace, to the last bit (issue 13).

:meth:`flowcell.live.session.LiveSession.on_row` went from ~1.0 to ~0.5 ms CPU: the filter
(:class:`flowcell.live.estimator.LiveSOC`) keeps its constant matrices and buffers, calls the
LAPACK gufuncs without numpy's wrappers, works on floats where arrays had one element and
evaluates the radical fraction of one point on floats; the row clock compares integer
nanoseconds instead of Timestamps; the CSV line is read off the state without a dict; the
state carries its UTC time (no ``dataclasses.replace``).  Each is compared here with the
plain formulation it replaced (written out below), on experiments written by the
independent generator tests/generators/live_experiment.py (it imports nothing from the
package): rejections and their streaks, NaN inputs, both observations in one row, rows
arriving late, the first water shift setting the reference, EPR before any water shift.
"""

from __future__ import annotations

import csv
import io
import math
import random
import struct
from dataclasses import fields
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from generators.live_experiment import charging_run, write_potentiostat_csv
from test_live_soc import HoldLog, config

from flowcell.config import ExperimentConfig
from flowcell.live.csvlog import CSV_COLUMNS, LiveCsv
from flowcell.live.estimator import (
    HDO_REF,
    LN_EPR,
    LN_KC,
    LN_NMR,
    MODEL_REL_SD,
    Q_CONST_PER_S,
    LiveSOC,
)
from flowcell.live.session import LiveSession
from flowcell.live.state import SOCState
from flowcell.live.timing import RowClock, _seconds
from kinetics.speciation import radical_fraction, radical_fraction_checked

SOC, DRIFT, ACTIVE = 0, 1, 6


class PlainSOC(LiveSOC):
    """The filter written the plain way (np.eye, np.diag, np.linalg, np.ix_, arrays throughout)."""

    def advance(self, t_s):
        dt = float(t_s) - self.t_s
        if not dt > 0:
            return
        q = self._charge(t_s)
        if math.isfinite(q) and not math.isfinite(self._q_count):
            self._q_count = self._charge(self.t_s)
        lv = self.live
        qs, qr = lv.q_soc_per_s, lv.q_drift_per_s3
        if math.isfinite(q) and math.isfinite(self._q_count):
            ds = (q - self._q_count) * self._soc_per_C()
            self._q_count = q
        else:
            ds = 0.0
            qs = qs + self.no_current_rate ** 2 * dt
            if math.isfinite(q):
                self._q_count = q
        self.x[SOC] += ds - self.x[DRIFT] * dt
        F = np.eye(7)
        F[SOC, DRIFT] = -dt
        Q = np.diag([qs * dt + qr * dt ** 3 / 3, qr * dt, Q_CONST_PER_S * dt, lv.q_ref_ppm2_per_s * dt,
                     Q_CONST_PER_S * dt, Q_CONST_PER_S * dt, lv.q_active_per_s * dt])
        Q[SOC, DRIFT] = Q[DRIFT, SOC] = -qr * dt ** 2 / 2
        self.P = F @ self.P @ F.T + Q
        self.t_s = float(t_s)
        return

    def plain_sigma_points(self):
        n = self.x.size
        ok = np.isfinite(self.x)
        x = np.where(ok, self.x, 0.0)
        P = self.P.copy()
        P[~ok, :] = P[:, ~ok] = 0.0
        P[~ok, ~ok] = 1.0
        L = np.linalg.cholesky(n * (P + 1e-18 * np.eye(n)))
        return np.concatenate([x + L.T, x - L.T]), np.full(2 * n, 1.0 / (2 * n))

    def plain_unit_shifts(self, pts, t_det):
        a = np.maximum(pts[:, ACTIVE], 1e-6)
        u = np.clip((pts[:, SOC] + self.soc_shift(t_det, pts[:, DRIFT])) / a, 0.0, 1.0)
        radical = self.C * a * np.asarray(radical_fraction(u, np.exp(pts[:, LN_KC])), dtype=float)
        return self.hdo_per_M * radical, self.epr_per_M * radical

    def observe(self, row, t_row):
        obs = self._offered(row)
        kind = row.get("kind")
        refer = self.live.refer_to_outlet and kind in ("nmr", "epr")
        t_det = t_row - (self.delays.delay_s(kind) if refer else 0.0)
        pts, w = self.plain_sigma_points()
        if obs and obs[0][0] == "hdo" and not math.isfinite(self.x[HDO_REF]):
            hdo_u, _ = self.plain_unit_shifts(pts, t_det)
            bms = np.exp(pts[:, LN_NMR]) * hdo_u
            mean = float(w @ bms)
            self.x[HDO_REF] = obs[0][1] - mean
            self.P[HDO_REF, :] = self.P[:, HDO_REF] = 0.0
            self.P[HDO_REF, HDO_REF] = float(w @ (bms - mean) ** 2) + obs[0][2] ** 2
            obs = obs[1:]
            pts, w = self.plain_sigma_points()
        if not obs:
            return {}, (), ()
        names = [o[0] for o in obs]
        hdo_u, epr_u = self.plain_unit_shifts(pts, t_det)
        Y = np.column_stack([pts[:, HDO_REF] + np.exp(pts[:, LN_NMR]) * hdo_u if n == "hdo"
                             else np.exp(pts[:, LN_EPR]) * epr_u for n in names])
        y_hat = w @ Y
        dY, dX = Y - y_hat, pts - w @ pts
        signal = np.array([y_hat[i] - (self.x[HDO_REF] if n == "hdo" else 0.0) for i, n in enumerate(names)])
        R = np.diag([o[2] ** 2 + (MODEL_REL_SD * sig) ** 2 for o, sig in zip(obs, signal)])
        S = (dY * w[:, None]).T @ dY + R
        y = np.array([o[1] for o in obs])
        z = (y - y_hat) / np.sqrt(np.diag(S))
        keep = np.abs(z) <= self.live.gate_sigma
        for v, k in zip(z, keep):
            self._z.append(float(v))
            self._rejected.append(not bool(k))
        self._streak = 0 if keep.all() else self._streak + 1
        if self._streak >= 3:
            for i in (LN_KC, LN_NMR, LN_EPR, HDO_REF, SOC):
                self.P[i, i] *= 4.0
            self._streak = 0
        if keep.any():
            Sk = S[np.ix_(keep, keep)]
            gain = ((dX * w[:, None]).T @ dY[:, keep]) @ np.linalg.inv(Sk)
            self.x = self.x + gain @ (y - y_hat)[keep]
            self.P = self.P - gain @ Sk @ gain.T
            self.P = 0.5 * (self.P + self.P.T)
            np.fill_diagonal(self.P, np.maximum(np.diag(self.P), 1e-16))
            self.x[SOC] = min(max(self.x[SOC], 0.0), self.x[ACTIVE])
        innov = {n: float(v) for n, v in zip(names, z)}
        return innov, tuple(n for n, k in zip(names, keep) if k), tuple(n for n, k in zip(names, keep) if not k)

    def state(self, **extra):
        x, sd = self.x, np.sqrt(np.maximum(np.diag(self.P), 0.0))
        a = float(x[ACTIVE])
        kc = math.exp(x[LN_KC])
        u = min(max(x[SOC] / a, 0.0), 1.0)
        q = self._charge(self.t_s)
        if not math.isfinite(self._q0):
            self._q0 = self._charge(0.0)
        soc_cc = self.live.soc0 + (q - self._q0) * self._soc_per_C() if math.isfinite(q + self._q0) else math.nan
        return SOCState(
            t_s=self.t_s, soc=float(x[SOC]), soc_sd=float(sd[SOC]), soc_active=float(x[SOC]) / a,
            soc_coulomb=soc_cc, drift=soc_cc - float(x[SOC]), r_side_per_s=float(x[DRIFT]), Kc=kc,
            Kc_lo=kc * math.exp(-2 * sd[LN_KC]), Kc_hi=kc * math.exp(2 * sd[LN_KC]),
            nmr_scale=math.exp(x[LN_NMR]), epr_scale=math.exp(x[LN_EPR]), hdo_ref_ppm=float(x[HDO_REF]),
            radical_M=self.C * a * float(np.asarray(radical_fraction(np.asarray(u), kc))),
            active_fraction=a, current_A=self._current(self.t_s), **extra)

    def update(self, row, t_row):
        row = row or {}
        self.advance(t_row)
        innov, used, rejected = self.observe(row, t_row) if row else ({}, (), ())
        return self.state(kind=row.get("kind"), used=used, rejected=rejected, innovations=innov, row_time_s=t_row)


def bits(v):
    """A value with floats as their bit patterns (NaN == NaN, -0.0 != 0.0)."""
    if isinstance(v, float):
        return ("float", struct.pack("<d", v))
    if isinstance(v, dict):
        return {k: bits(x) for k, x in v.items()}
    return v


def states_bits(states):
    return [{f.name: bits(getattr(st, f.name)) for f in fields(st)} for st in states]


def replay(cls, run, cfg, rows, *, log=True, empty_every=0):
    f = cls(cfg, coulombs=HoldLog(run.log_t_s, run.log_I_A) if log else None)
    clock = RowClock(run.start)
    out = []
    for k, r in enumerate(rows):
        p = clock.place(r)
        if p.flag:
            out.append(f.state(kind=r.get("kind"), flag=p.flag))
            continue
        out.append(f.update(r, p.t_s))
        if empty_every and k % empty_every == 0:
            out.append(f.update({}, p.t_s + 5.0))
    return states_bits(out) + [bits(f.mismatch), bits(f.rejection_rate)]


def spoilt(rows, seed):
    rng = random.Random(seed)
    out = []
    for r in rows:
        r, u = dict(r), rng.random()
        if u < 0.05:
            r["hdo_shift_ppm"] = math.nan
        elif u < 0.08:
            r["epr_spin_conc_M"] = math.nan
        elif u < 0.11:
            r["hdo_shift_err_ppm"] = math.nan
        elif u < 0.16:
            r["temperature_K"] = 298.15 + rng.gauss(0.0, 2.0)
        elif u < 0.18:
            r["time_mid"] = r["time_start"] = r["time_end"] = None
        out.append(r)
    return out


def both(rows):
    """NMR and EPR in one row (two observations at once)."""
    return [{**a, **{k: v for k, v in b.items() if k.startswith("epr")}} for a, b in zip(rows[::2], rows[1::2])]


def shuffled(rows):
    blocks = [rows[i:i + 6][::-1] for i in range(0, len(rows) - 6, 6)]
    return [r for b in blocks for r in b] + rows[len(blocks) * 6:]


def jumped(rows):
    """Water shifts from another experiment after the middle: rejections, and their streaks."""
    out = [dict(r) for r in rows]
    for r in out[len(out) // 2:]:
        if "hdo_shift_ppm" in r:
            r["hdo_shift_ppm"] += 0.05
    return out


SCENARIOS = {
    "plain": lambda run: (config(), run.rows, {}),
    "outlet, late rows": lambda run: (config(refer_to_outlet=True), shuffled(run.rows), {}),
    "NaN inputs, untimed rows": lambda run: (config(), spoilt(run.rows, 1), {}),
    "both in one row": lambda run: (config(), both(run.rows), {}),
    "rejections": lambda run: (config(), jumped(run.rows), {}),
    "EPR first, no log, empty rows": lambda run: (
        config(), [r for r in run.rows if r["kind"] == "epr"][:10] + run.rows, {"log": False, "empty_every": 5}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_filter_bit_identical_to_the_plain_formulation(name):
    run = charging_run(0.3, seed=3, loss=0.015, interval_s=90.0)
    cfg, rows, kw = SCENARIOS[name](run)
    new, plain = replay(LiveSOC, run, cfg, rows, **kw), replay(PlainSOC, run, cfg, rows, **kw)
    assert len(new) == len(plain) > 45
    for k, (a, b) in enumerate(zip(new, plain)):
        assert a == b, f"{name}: state {k} differs: " + str({f: (a[f], b[f]) for f in a if a[f] != b[f]})
    if name == "rejections":  # the scenario does what it says
        assert any(st["rejected"] for st in new[:-2])


def test_radical_fraction_of_one_point_is_the_array_value():
    xs = [-0.1, -0.0, 0.0, 1e-300, 1e-9, 0.1, 0.25, 0.5, 0.5 + 1e-16, 0.75, 1 - 1e-12, 1.0, 1.2, math.nan, math.inf]
    Ks = [0.0, 1e-300, 1e-6, 0.01, 0.3, 1.0, 4.0, 4.0 + 1e-12, 10.0, 1e6, 1e200, math.nan, math.inf]
    rng = np.random.default_rng(0)
    xs += list(rng.random(40))
    Ks += list(10 ** rng.uniform(-3, 3, 40))
    X, K = np.meshgrid(np.array(xs), np.array(Ks))
    with np.errstate(all="ignore"):
        arr = radical_fraction(X.ravel(), K.ravel())
        one = np.array([radical_fraction(float(x), float(k)) for x, k in zip(X.ravel(), K.ravel())])
        np_scalar = np.array([radical_fraction(np.float64(x), np.float64(k)) for x, k in zip(X.ravel(), K.ravel())])
    assert all(type(radical_fraction(0.3, k)) is float for k in (0.3, np.float64(0.3)))
    assert arr.tobytes() == one.tobytes() == np_scalar.tobytes()
    assert radical_fraction(0.5, 4.0) == 0.5  # 2 x (1 - x) at K = 4
    with pytest.raises(ValueError, match="K must be >= 0"):
        radical_fraction(0.3, -1.0)
    inside = (X.ravel() >= 0) & (X.ravel() <= 1)
    with np.errstate(all="ignore"):
        checked = radical_fraction_checked(X.ravel()[inside], K.ravel()[inside])
    assert checked.tobytes() == arr[inside].tobytes()


#: pandas 2 counts whole microseconds in ``Timedelta.total_seconds()`` (what the clock reproduces
#: to the last bit), pandas 3 counts the nanoseconds too: there, within a microsecond
PANDAS_2 = int(pd.__version__.split(".")[0]) < 3


def _same_seconds(a: float, b: float) -> bool:
    return a == b if PANDAS_2 else abs(a - b) < 1.001e-6


def test_row_clock_integer_arithmetic_is_pandas_arithmetic():
    rng = random.Random(5)
    for _ in range(3000):
        ns = rng.randrange(-10 ** 14, 10 ** 15)
        assert _same_seconds(_seconds(ns), pd.Timedelta(ns).total_seconds()), ns
    for start in ("2026-02-03T10:00:00Z", "2026-02-03T10:00:00.123456789Z",
                  datetime(2026, 11, 30, 9, 0, 0, 123457, tzinfo=timezone.utc)):
        clock = RowClock(start)
        s = pd.Timestamp(start)
        for _ in range(1000):
            t = rng.choice([rng.uniform(0, 1e6), round(rng.uniform(0, 1e5), 3), rng.uniform(-100, 10)])
            assert clock.utc(t) == (s + pd.Timedelta(seconds=t)).to_pydatetime(warn=False)
            row_t = s + pd.Timedelta(microseconds=rng.randrange(0, 10 ** 11))
            placed = clock.place({"time_mid": row_t})
            assert _same_seconds(placed.t_s, (row_t - clock.start).total_seconds())


def test_row_clock_bounds_exact_to_the_nanosecond():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    start = pd.Timestamp("2026-12-01T08:00:00Z")
    clock = RowClock(start, now=lambda: now)
    one_ns = pd.Timedelta(1, "ns")
    ahead = pd.Timestamp(now) + timedelta(days=1)
    assert clock.place({"time_mid": ahead}).flag == ""
    clock = RowClock(start, now=lambda: now)
    assert clock.place({"time_mid": ahead + one_ns}).flag == "future"
    assert clock.place({"time_mid": start - timedelta(days=1)}).flag == ""
    assert clock.place({"time_mid": start - timedelta(days=1) - one_ns}).flag == "outside run"
    assert clock.place({"time_mid": pd.Timestamp("1990-01-01T00:00:00Z") - one_ns}).flag == "before 1990"
    clock = RowClock(start, now=lambda: now + timedelta(days=10))
    clock.place({"time_mid": start})
    assert clock.place({"time_mid": start + timedelta(days=1)}).flag == ""
    assert clock.place({"time_mid": start + timedelta(days=2) + one_ns}).flag == "outside run"
    # a row in another zone, or naive (taken as UTC), is placed at its UTC instant
    assert clock.place({"time_mid": "2026-12-01T10:00:00+02:00"}).t_s == 0.0
    assert clock.place({"time_mid": datetime(2026, 12, 1, 8, 0, 30)}).t_s == 30.0


def plain_csv_line(st, source, rejection_rate, mismatch, true_soc):
    """The line as it was written before: through ``SOCState.as_dict``."""
    d = st.as_dict()
    d["time_utc"] = st.time_utc.isoformat() if st.time_utc is not None else ""
    d.update(source=source, rejection_rate=rejection_rate, mismatch=mismatch, true_soc=true_soc)
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if isinstance(v, float) and not math.isfinite(v) else v
                              for v in (d.get(c, "") for c in CSV_COLUMNS)])
    return buf.getvalue()


def test_csv_line_is_the_as_dict_line(tmp_path):
    t0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    states = [
        SOCState(t_s=12.5, soc=0.1234567890123, soc_sd=0.01, Kc=0.3, Kc_lo=0.1, Kc_hi=0.9, kind="nmr",
                 used=("hdo", "epr"), innovations={"hdo": 0.5, "epr": -1.25}, row_time_s=12.0,
                 time_utc=t0 + timedelta(seconds=12.5)),
        SOCState(t_s=math.nan, soc=math.nan, soc_sd=math.inf, kind=None, flag="untimed"),
        SOCState(t_s=99.0, soc=0.5, soc_sd=0.02, kind="epr", rejected=("epr",), current_A=-0.05,
                 time_utc=t0 + timedelta(microseconds=99_000_001)),
    ]
    out = LiveCsv(tmp_path / "live.csv")
    args = [("nmr/0001", 0.0, 1.1, math.nan), ("", 0.5, math.nan, 0.25), ('a "quoted", name', 1.0, 2.0, 0.5)]
    for st, a in zip(states, args):
        out.update(st, source=a[0], rejection_rate=a[1], mismatch=a[2], true_soc=a[3])
    out.close()
    with open(tmp_path / "live.csv", newline="", encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    assert lines[1:] == [plain_csv_line(st, *a) for st, a in zip(states, args)]


def test_session_states_carry_their_utc_time(tmp_path):
    run = charging_run(0.3, seed=5, interval_s=240.0)
    log = tmp_path / "pot.csv"
    write_potentiostat_csv(run, log)
    cfg = ExperimentConfig.from_dict({
        "experiment": {"name": "g"}, "electrolyte": {"concentration_M": 0.1, "volume_L": 0.010},
        "flow": {"rate_mL_min": 13.6}, "instruments": {"potentiostat": str(log)}})
    s = LiveSession(cfg, tmp_path / "store")
    rows = list(run.rows[:30])
    rows.insert(5, {**rows[5], "time_mid": None, "time_start": None, "time_end": None})
    for r in rows:
        s.on_row(r)
    s.close()
    start = pd.Timestamp(run.start)
    assert s.history[5].flag == "untimed"
    for st in s.history:
        assert st.time_utc == (start + pd.Timedelta(seconds=st.t_s)).to_pydatetime(warn=False)
