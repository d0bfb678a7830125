"""Cycling protocols: constant-current steps, rests and voltage limits.

A :class:`Protocol` is a list of :class:`Step` objects (constant current with an
optional cell-voltage or SOC cut-off and a maximum duration, or a rest at open
circuit).  :meth:`Protocol.resolve` turns it into a piecewise-constant
:class:`CurrentSchedule` that the kinetic model integrates.

Cell voltage model (docs/physics.md §1.2, [D])::

    E_neg  = E_mid + (RT / 2F) ln([O]/[H])          (anolyte, exact Nernst for any K_c)
    E_cell = E_pos - E_neg + I * R_cell              (I > 0 charging)

The positive side (ferro/ferricyanide in excess) is held at a constant potential
``E_pos_V``; all numbers of :class:`CellVoltageModel` are ASSUMED placeholders
(DHAQ's two-electron potential at pH 14 is recalled as about -0.68 V vs SHE, [U]
in docs/physics.md §2.1; it is NOT a literature value taken from the papers).

Voltage cut-offs are resolved with the ideal (coulomb-counting) SOC trajectory,
SOC(t) = SOC0 + (1 - eps_H) I t / (2 F C V) (docs/physics.md §1.1, §2.3), and the
closed-form speciation of §1.2.  Side reactions slower than the step (decomposition,
O2 self-discharge) therefore move the true cut-off time slightly; the simulator
records the voltage from the simulated concentrations, so the potentiostat log is
still self-consistent.

Protocol text (for the command line), steps separated by ``;``::

    cc +0.03 A until 1.45 V max 2 h ; rest 30 min ; cc -0.03 A until 0.9 V max 2 h

Words: ``cc <I> A|mA``, ``until <V> V`` (upper limit when charging, lower when
discharging), ``until soc <x>``, ``max <n> s|min|h``; ``rest <n> s|min|h``.
The same steps can be given in TOML as ``[[step]]`` tables with keys ``kind``
(``"cc"``/``"rest"``), ``current_A``, ``duration_s``, ``v_limit_V``, ``soc_limit``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import numpy as np
from scipy.optimize import brentq

from kinetics.constants import F, R_GAS
from kinetics.library import DEFAULTS
from kinetics.speciation import radical_fraction

__all__ = [
    "F",
    "R_GAS",
    "Step",
    "Protocol",
    "ProtocolError",
    "CellVoltageModel",
    "CurrentSchedule",
    "default_protocol",
]



class ProtocolError(ValueError):
    """A protocol description makes no sense; the message names the step."""


@dataclass(frozen=True)
class CellVoltageModel:
    """Open-circuit + ohmic cell voltage (docs/physics.md §1.2 Nernst, [D]).

    Attributes
    ----------
    E_mid_V : float
        Two-electron mid-point potential of the anolyte, V (ASSUMED -0.68 V vs SHE, [U]).
    E_pos_V : float
        Potential of the positive side (excess ferro/ferricyanide), V (ASSUMED +0.52 V).
    R_cell_ohm : float
        Area-specific resistance over the electrode area, ohm (ASSUMED 1.5 ohm).
    T_K : float
        Temperature, K.
    """

    E_mid_V: float = -0.68
    E_pos_V: float = 0.52
    R_cell_ohm: float = 1.5
    T_K: float = 298.15

    def e_neg(self, O_M: np.ndarray | float, H_M: np.ndarray | float) -> np.ndarray:
        """Anolyte potential E_neg = E_mid + (RT/2F) ln([O]/[H]), V."""
        O = np.maximum(np.asarray(O_M, dtype=float), 1e-12)
        H = np.maximum(np.asarray(H_M, dtype=float), 1e-12)
        return self.E_mid_V + R_GAS * self.T_K / (2 * F) * np.log(O / H)

    def cell(self, O_M: np.ndarray | float, H_M: np.ndarray | float,
             current_A: np.ndarray | float) -> np.ndarray:
        """Cell voltage E_pos - E_neg + I R (I > 0 charging), V."""
        return self.E_pos_V - self.e_neg(O_M, H_M) + np.asarray(current_A, float) * self.R_cell_ohm

    def cell_from_soc(self, soc: np.ndarray | float, current_A: np.ndarray | float, K: float) -> np.ndarray:
        """Cell voltage at a state of charge using the §1.2 closed-form speciation, V."""
        x = np.asarray(soc, dtype=float)
        fR = radical_fraction(x, K)
        return self.cell(1.0 - x - fR / 2.0, x - fR / 2.0, current_A)


@dataclass(frozen=True)
class Step:
    """One protocol step.

    Attributes
    ----------
    kind : {'cc', 'rest'}
    current_A : float
        Constant current, A (> 0 charges the anolyte, i.e. reduces it); 0 for a rest.
    duration_s : float
        Maximum duration, s (the whole duration of a rest).
    v_limit_V : float or None
        Cell-voltage cut-off, V: upper limit on charge, lower limit on discharge.
    soc_limit : float or None
        SOC cut-off (ideal coulomb-counting SOC), upper on charge, lower on discharge.
    """

    kind: Literal["cc", "rest"]
    current_A: float = 0.0
    duration_s: float = 3600.0
    v_limit_V: float | None = None
    soc_limit: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("cc", "rest"):
            raise ProtocolError(f"step kind must be 'cc' or 'rest', got {self.kind!r}")
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ProtocolError(f"step {self.kind}: duration must be > 0 s, got {self.duration_s}")
        if self.kind == "rest" and self.current_A != 0.0:
            raise ProtocolError("a rest step has zero current")
        if self.kind == "cc" and self.current_A == 0.0:
            raise ProtocolError("a cc step needs a non-zero current (use 'rest' for open circuit)")
        if self.soc_limit is not None and not 0.0 <= self.soc_limit <= 1.0:
            raise ProtocolError(f"soc limit must be within 0..1, got {self.soc_limit}")

    def describe(self) -> str:
        """Short human-readable text (the same grammar the parser reads)."""
        if self.kind == "rest":
            return f"rest {self.duration_s / 60:g} min"
        s = f"cc {self.current_A * 1e3:+g} mA"
        if self.v_limit_V is not None:
            s += f" until {self.v_limit_V:g} V"
        if self.soc_limit is not None:
            s += f" until soc {self.soc_limit:g}"
        return s + f" max {self.duration_s / 60:g} min"


@dataclass
class CurrentSchedule:
    """Piecewise-constant current: ``I(t) = current_A[i]`` for ``t_edges_s[i] <= t < t_edges_s[i+1]``.

    Attributes
    ----------
    t_edges_s : ndarray, shape (n+1,)
        Step boundaries, s (first is 0).
    current_A : ndarray, shape (n,)
        Current in each segment, A (> 0 charging).
    step_index : ndarray of int, shape (n,)
        Protocol step each segment came from.
    end_reason : list of str
        Why each step ended ('duration', 'voltage', 'soc').
    """

    t_edges_s: np.ndarray
    current_A: np.ndarray
    step_index: np.ndarray
    end_reason: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        """Total duration, s."""
        return float(self.t_edges_s[-1])

    def __call__(self, t_s: np.ndarray | float) -> np.ndarray | float:
        """Current at time(s) ``t_s`` (A); 0 outside the schedule."""
        t = np.asarray(t_s, dtype=float)
        i = np.searchsorted(self.t_edges_s, t, side="right") - 1
        inside = (i >= 0) & (i < len(self.current_A))
        out = np.where(inside, self.current_A[np.clip(i, 0, len(self.current_A) - 1)], 0.0)
        return float(out) if out.ndim == 0 else out

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(t_start_s, I_A)`` of each segment (the piecewise-constant table form)."""
        return self.t_edges_s[:-1].copy(), self.current_A.copy()

    def charge_C(self, t_s: np.ndarray | float) -> np.ndarray:
        """Exact charge passed since t = 0, C (integral of the piecewise-constant current)."""
        t = np.clip(np.asarray(t_s, dtype=float), 0.0, self.total_s)
        cum = np.concatenate([[0.0], np.cumsum(np.diff(self.t_edges_s) * self.current_A)])
        i = np.clip(np.searchsorted(self.t_edges_s, t, side="right") - 1, 0, len(self.current_A) - 1)
        return cum[i] + (t - self.t_edges_s[i]) * self.current_A[i]


_UNIT_S = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}
_UNIT_A = {"a": 1.0, "ma": 1e-3, "ua": 1e-6}


def _parse_step(text: str) -> Step:
    toks = text.split()
    if not toks:
        raise ProtocolError("empty step")
    kind = toks[0].lower()

    def num(i: int) -> float:
        try:
            return float(toks[i])
        except (IndexError, ValueError):
            raise ProtocolError(f"step {text!r}: expected a number after {toks[i - 1]!r}") from None

    def unit(i: int, table: dict[str, float]) -> float:
        if i >= len(toks) or toks[i].lower() not in table:
            raise ProtocolError(f"step {text!r}: expected a unit in {sorted(table)} at position {i + 1}")
        return table[toks[i].lower()]

    if kind == "rest":
        return Step("rest", 0.0, num(1) * unit(2, _UNIT_S))
    if kind != "cc":
        raise ProtocolError(f"step {text!r}: unknown kind {toks[0]!r} (use 'cc' or 'rest')")
    current = num(1) * unit(2, _UNIT_A)
    i, v_lim, soc_lim, dur = 3, None, None, 24 * 3600.0
    while i < len(toks):
        w = toks[i].lower()
        if w == "until" and i + 1 < len(toks) and toks[i + 1].lower() == "soc":
            soc_lim = num(i + 2)
            i += 3
        elif w == "until":
            v_lim = num(i + 1)
            if i + 2 < len(toks) and toks[i + 2].lower() == "v":
                i += 3
            else:
                i += 2
        elif w == "max":
            dur = num(i + 1) * unit(i + 2, _UNIT_S)
            i += 3
        else:
            raise ProtocolError(f"step {text!r}: unexpected word {toks[i]!r}")
    return Step("cc", current, dur, v_lim, soc_lim)


@dataclass
class Protocol:
    """A cycling protocol: an ordered list of :class:`Step`.

    Examples
    --------
    >>> p = Protocol.parse("cc +30 mA until 1.45 V max 2 h; rest 30 min")
    >>> [s.kind for s in p.steps]
    ['cc', 'rest']
    """

    steps: list[Step]
    voltage: CellVoltageModel = field(default_factory=CellVoltageModel)

    @classmethod
    def parse(cls, text: str, voltage: CellVoltageModel | None = None) -> "Protocol":
        """Parse the ``;``-separated protocol text described in the module docstring."""
        parts = [p.strip() for p in text.replace("\n", ";").split(";") if p.strip()]
        if not parts:
            raise ProtocolError("protocol text holds no steps")
        steps = []
        for k, p in enumerate(parts):
            try:
                steps.append(_parse_step(p))
            except ProtocolError as e:
                raise ProtocolError(f"step {k + 1}: {e}") from None
        return cls(steps, voltage or CellVoltageModel())

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> "Protocol":
        """Build from ``{'step': [{kind, current_A, duration_s, v_limit_V, soc_limit}, ...],
        'voltage': {E_mid_V, E_pos_V, R_cell_ohm, T_K}}``."""
        raw = d.get("step") or d.get("steps")
        if not raw:
            raise ProtocolError(f"{source}: no [[step]] tables")
        steps = []
        allowed = {"kind", "current_A", "duration_s", "v_limit_V", "soc_limit"}
        for k, s in enumerate(raw):
            bad = set(s) - allowed
            if bad:
                raise ProtocolError(f"{source}: step {k + 1}: unknown key(s) {sorted(bad)}; known: {sorted(allowed)}")
            try:
                steps.append(Step(**s))
            except (TypeError, ProtocolError) as e:
                raise ProtocolError(f"{source}: step {k + 1}: {e}") from None
        volt = CellVoltageModel(**d.get("voltage", {}))
        return cls(steps, volt)

    @classmethod
    def load(cls, spec: str | Path) -> "Protocol":
        """A TOML file path (``.toml``) or protocol text."""
        p = Path(str(spec))
        if p.suffix == ".toml" and p.exists():
            with open(p, "rb") as fh:
                return cls.from_dict(tomllib.load(fh), source=str(p))
        if p.suffix == ".toml":
            raise ProtocolError(f"{p}: protocol file not found")
        return cls.parse(str(spec))

    def describe(self) -> str:
        """The protocol as text (parseable by :meth:`parse`)."""
        return "; ".join(s.describe() for s in self.steps)

    def resolve(self, *, C_tot_M: float, volume_L: float, soc0: float = 0.0, Kc: float | None = None,
                eps_H: float = 0.0, T_K: float | None = None) -> CurrentSchedule:
        """Turn the steps into a piecewise-constant current schedule.

        Cut-offs are found on the ideal SOC trajectory
        ``SOC(t) = SOC0 + (1 - eps_H) I t / (2 F C_tot V)`` (docs/physics.md §1.1) with the
        §1.2 Nernst cell voltage; the time of the cut-off is solved with brentq.

        Parameters
        ----------
        C_tot_M : float
            Total active quinone, mol/L.
        volume_L : float
            Circulating anolyte volume, L.
        soc0 : float
            Initial state of charge.
        Kc : float, optional
            Comproportionation constant (speciation for the Nernst term); default the
            library's (:data:`kinetics.library.DEFAULTS`).
        eps_H : float
            Fraction of the charging current lost to hydrogen evolution.
        T_K : float, optional
            Temperature, K (default: the voltage model's).
        """
        if C_tot_M <= 0 or volume_L <= 0:
            raise ProtocolError("C_tot_M and volume_L must be > 0")
        Kc = DEFAULTS["Kc"] if Kc is None else Kc
        vm = self.voltage if T_K is None else CellVoltageModel(
            self.voltage.E_mid_V, self.voltage.E_pos_V, self.voltage.R_cell_ohm, T_K)
        cap = 2 * F * C_tot_M * volume_L  # C per unit SOC
        edges, cur, idx, why = [0.0], [], [], []
        t, soc = 0.0, float(soc0)
        eps = 1e-9
        for k, st in enumerate(self.steps):
            dur = st.duration_s
            reason = "duration"
            if st.kind == "cc":
                eff = (1 - eps_H) if st.current_A > 0 else 1.0
                rate = eff * st.current_A / cap  # SOC per s
                # the SOC wall (0 or 1) always stops a cc step
                lim_soc = 1.0 - 1e-4 if rate > 0 else 1e-4
                if st.soc_limit is not None:
                    lim_soc = min(lim_soc, st.soc_limit) if rate > 0 else max(lim_soc, st.soc_limit)
                t_soc = (lim_soc - soc) / rate
                if t_soc <= eps:
                    why.append("soc")
                    continue
                if t_soc < dur:
                    dur, reason = t_soc, "soc"
                if st.v_limit_V is not None:
                    sign = 1.0 if rate > 0 else -1.0

                    def g(tt: float) -> float:
                        return sign * (float(vm.cell_from_soc(soc + rate * tt, st.current_A, Kc)) - st.v_limit_V)

                    if g(0.0) >= 0:
                        why.append("voltage")
                        continue
                    if g(dur) > 0:
                        dur, reason = brentq(g, 0.0, dur, xtol=1e-3), "voltage"
                soc += rate * dur
            t += dur
            edges.append(t)
            cur.append(st.current_A)
            idx.append(k)
            why.append(reason)
        if not cur:
            raise ProtocolError("every step ended before it started (check the limits and soc0)")
        return CurrentSchedule(np.array(edges), np.array(cur, float), np.array(idx, int), why)


def default_protocol(hours: float = 3.0, *, C_tot_M: float = 0.1, volume_L: float = 0.01,
                     soc_top: float = 0.9) -> Protocol:
    """Charge / rest / discharge filling ``hours`` (ASSUMED demo protocol).

    Charge for 45 % of the time to ``soc_top``, rest 25 %, discharge in the last 30 %
    at the same current magnitude (ending near SOC 0.1-0.2 after the self-discharge
    of the rest). Voltage limits 1.6 V (charge) and 0.7 V (discharge) stop runaway steps.
    """
    total = hours * 3600.0
    t_ch = 0.45 * total
    current = soc_top * 2 * F * C_tot_M * volume_L / t_ch
    return Protocol([
        Step("cc", current, t_ch * 1.05, v_limit_V=1.6, soc_limit=soc_top),
        Step("rest", 0.0, 0.25 * total),
        Step("cc", -current, 0.30 * total, v_limit_V=0.7),
    ])
