"""Fast-equilibrium blocks of a network: which fast reactions group together, their invariants
and their algebraic speciation (docs/physics.md §1.2, §2.2).

Used by :mod:`kinetics.codegen` to build the reduced model: each block contributes the
linear invariants of its fast stoichiometry as slow variables, and :meth:`FastBlock.solve`
gives the block's concentrations back from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp

from kinetics import speciation
from kinetics.emit import build_pure, function_source
from kinetics.network import CURRENT_SYMBOLS, ELECTRON, Network, NetworkError

__all__ = ["FastBlock", "find_blocks", "rxs_of"]


@dataclass
class FastBlock:
    """A group of fast reactions sharing species, with its invariants and solver."""

    kind: str                      # 'comproportionation' | 'isomer'
    species: list[str]             # block species (global names)
    idx: np.ndarray                # indices of block species in the state
    L: np.ndarray                  # invariants (n_inv x n_block)
    names: list[str]               # slow-variable names
    K_idx: list[int]               # parameter indices of the equilibrium constants
    roles: dict[str, str] = field(default_factory=dict)  # role -> species (O, R, H, D / X, Y)
    G_y: Callable | None = None    # (y_b, p) -> d(equilibria)/d(y_b) (n_fast x n_block)
    G_y_source: str = ""           # its generated source (kinetics.emit)

    def make_G_y(self) -> None:
        """Build :attr:`G_y` from :attr:`G_y_source`."""
        g = build_pure(self.G_y_source, "G_y")
        self.G_y = lambda yb, p: g(yb, p, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind == "comproportionation":
            role_of = {v: k for k, v in self.roles.items()}
            self._order = ["ORHD".index(role_of[s]) for s in self.species]

    def solve(self, zb: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Block concentrations (mol/L) from its invariants ``zb``."""
        if self.kind == "isomer":
            K = float(p[self.K_idx[0]])
            T = float(zb[0])
            return [T / (1.0 + K), K * T / (1.0 + K)]
        C, E = float(zb[0]), float(zb[1])
        Kc = float(p[self.K_idx[0]])
        KD = float(p[self.K_idx[1]]) if len(self.K_idx) > 1 else 0.0
        if C <= 0.0:
            return [0.0] * len(self.species)
        x = min(max(E / (2.0 * C), 0.0), 1.0)
        if KD > 0.0:
            a, b = C * (1.0 - x), C * x
            pp = speciation.dimer_p(a, b, Kc, KD)
            R = math.sqrt(Kc * pp)
            D = KD * pp
        else:
            # docs/physics.md §1.2 stable root (scalar copy of speciation.radical_fraction)
            u = x * (1.0 - x)
            den = Kc / 2.0 + math.sqrt(Kc * Kc / 4.0 + Kc * (4.0 - Kc) * u)
            R = C * (2.0 * Kc * u / den if den > 0 else 0.0)
            D = 0.0
        s = R / 2.0 + D
        vals = (max(C * (1.0 - x) - s, 0.0), R, max(C * x - s, 0.0), D)  # O, R, H, D
        return [vals[k] for k in self._order]

    def solve_many(self, Zb: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`solve` over rows of ``Zb`` (n_t, n_inv) -> (n_t, n_block)."""
        if self.kind == "isomer":
            K = float(p[self.K_idx[0]])
            T = Zb[:, 0]
            return np.column_stack([T / (1.0 + K), K * T / (1.0 + K)])
        KD = float(p[self.K_idx[1]]) if len(self.K_idx) > 1 else 0.0
        if KD > 0.0:
            return np.array([self.solve(z, p) for z in Zb]).reshape(len(Zb), len(self.species))
        C, E = Zb[:, 0], Zb[:, 1]
        K = float(p[self.K_idx[0]])
        if K < 0:
            raise ValueError(f"radical_fraction: K must be >= 0, got {K}")
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(C > 0, E / (2.0 * C), 0.0)
            np.clip(x, 0.0, 1.0, out=x)
            # docs/physics.md §1.2 stable root: speciation.radical_fraction, inlined (same arithmetic)
            u = x * (1.0 - x)
            den = K / 2.0 + np.sqrt(K * K / 4.0 + K * (4.0 - K) * u)
            f = np.where(den > 0, 2.0 * K * u / np.where(den > 0, den, 1.0), 0.0)
        Cp = np.maximum(C, 0.0)
        R = Cp * f
        out = np.zeros((len(C), 4))  # O, R, H, D (D = 0 without a dimer)
        half = R / 2.0
        np.maximum(Cp * (1.0 - x) - half, 0.0, out=out[:, 0])
        out[:, 1] = R
        np.maximum(Cp * x - half, 0.0, out=out[:, 2])
        return out[:, self._order]

    def dy_dz(self, yb: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Implicit-function derivative of block concentrations wrt its invariants."""
        nI = self.L.shape[0]
        gy = np.atleast_2d(np.asarray(self.G_y(yb.tolist(), p.tolist()), dtype=float))  # type: ignore[misc]
        M = np.vstack([self.L, gy])
        rhs = np.zeros((M.shape[0], nI))
        rhs[:nI, :nI] = np.eye(nI)
        try:
            return np.linalg.solve(M, rhs)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(M, rhs, rcond=None)[0]


def find_blocks(net: Network, ps: list[sp.Symbol]) -> list[FastBlock]:
    fast = [r for r in net.reactions if r.fast]
    if not fast:
        return []
    # union-find on species through fast reactions
    groups: list[tuple[set[str], list]] = []
    for r in fast:
        spc = {s for s in list(r.reactants) + list(r.products) if s != ELECTRON}
        merged = [g for g in groups if g[0] & spc]
        new_s, new_r = set(spc), [r]
        for g in merged:
            new_s |= g[0]
            new_r += g[1]
            groups.remove(g)
        groups.append((new_s, new_r))
    names = net.species_names
    pnames = [str(p) for p in ps]
    blocks = []
    for spc, rxs in groups:
        rxs = sorted(rxs, key=lambda r: net.reactions.index(r))
        comp = [r for r in rxs if sorted(r.reactants.values()) == [1, 1] and len(r.reactants) == 2
                and list(r.products.values()) == [2] and len(r.products) == 1]
        if len(rxs) == 1 and len(rxs[0].reactants) == 1 and len(rxs[0].products) == 1 \
                and list(rxs[0].reactants.values()) == [1] and list(rxs[0].products.values()) == [1]:
            r = rxs[0]
            X, Y = next(iter(r.reactants)), next(iter(r.products))
            bsp = [X, Y]
            L = np.array([[1.0, 1.0]])
            blocks.append(FastBlock("isomer", bsp, np.array([names.index(s) for s in bsp]), L,
                                    [f"{X}_tot"], [pnames.index(r.K)], {"X": X, "Y": Y}))
            continue
        if len(comp) == 1:
            c = comp[0]
            X, Y = list(c.reactants)
            if net.species_info(X).electrons > net.species_info(Y).electrons:
                X, Y = Y, X
            Z = next(iter(c.products))
            rest = [r for r in rxs if r is not c]
            W = None
            ok = True
            if len(rest) == 1:
                d = rest[0]
                if set(d.reactants) == {X, Y} and list(d.reactants.values()) == [1, 1] \
                        and len(d.products) == 1 and list(d.products.values()) == [1]:
                    W = next(iter(d.products))
                else:
                    ok = False
            elif len(rest) > 1:
                ok = False
            if ok:
                bsp = [X, Z, Y] + ([W] if W else [])
                L = np.array([[1.0, 1.0, 1.0] + ([2.0] if W else []),
                              [0.0, 1.0, 2.0] + ([2.0] if W else [])])
                active = all(net.species_info(s).active for s in bsp)
                nm = ["C_act", "n_e"] if active else [f"C_{X}{Z}{Y}", f"n_{X}{Z}{Y}"]
                Kidx = [pnames.index(c.K)] + ([pnames.index(rest[0].K)] if W else [])
                roles = {"O": X, "R": Z, "H": Y}
                if W:
                    roles["D"] = W
                blocks.append(FastBlock("comproportionation", bsp,
                                        np.array([names.index(s) for s in bsp]), L, nm, Kidx, roles))
                continue
        raise NetworkError(
            "no fast-equilibrium reduction for the block of fast reactions "
            f"{[r.name for r in rxs]} (supported: X <=> Y, and X + Y <=> 2Z with optional "
            "X + Y <=> W); compile with reduce_fast=False")
    # equilibrium-condition Jacobians
    for b in blocks:
        eqs = []
        for r in rxs_of(net, b):
            lhs = sp.Mul(*[sp.Symbol(s) ** n for s, n in r.reactants.items()])
            rhs = sp.Mul(*[sp.Symbol(s) ** n for s, n in r.products.items()])
            eqs.append(sp.Symbol(r.K) * lhs - rhs)
        ysb = [sp.Symbol(s) for s in b.species]
        Gy = sp.Matrix(eqs).jacobian(ysb)
        b.G_y_source = function_source("G_y", ysb, ps, [sp.Symbol(n) for n in CURRENT_SYMBOLS], Gy)
        b.make_G_y()
    return blocks


def rxs_of(net: Network, b: FastBlock) -> list:
    s = set(b.species)
    return [r for r in net.reactions if r.fast and set(r.reactants) | set(r.products) <= s]
