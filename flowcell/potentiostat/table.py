"""Assemble a reader's columns into the package's potentiostat table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from flowcell.potentiostat.columns import (
    SI_NAMES,
    UNIT_SCALE,
    interval_current,
    split_name,
)
from flowcell.potentiostat.coulomb import coulomb_count
from ingest.types import IngestError

__all__ = ["CORE_COLUMNS", "assemble", "roles_from_columns"]

#: The first columns of every table, in order.
CORE_COLUMNS = ("t_s", "I_A", "Q_C", "Q_instrument_C", "E_V", "loop")
#: Roles a current can come from, best first (:mod:`flowcell.potentiostat.columns`).
CURRENT_ROLES = ("dq", "Q", "Imean", "I")


def roles_from_columns(columns: Mapping[str, np.ndarray], path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """EC-Lab columns -> SI arrays by role (``t``, ``I``, ``Imean``, ``Q``, ``dq``, ``E``).

    Returns the arrays and ``{raw column name: role}``.  Raises :class:`IngestError`
    on an unknown unit of a used column, or when time or every current is missing.
    """
    roles: dict[str, np.ndarray] = {}
    found: dict[str, str] = {}
    for col, values in columns.items():
        name, unit = split_name(col)
        role = SI_NAMES.get(name)
        if role is None or role in roles or role == "control":
            continue
        scale = UNIT_SCALE.get(unit)
        if scale is None:
            raise IngestError(path, f"column {col!r}: unknown unit {unit!r}")
        roles[role] = np.asarray(values, dtype=float) * scale
        found[col] = role
    if "t" not in roles:
        raise IngestError(path, f"no time column (time/s) among {list(columns)}")
    if not {"I", "Imean", "Q", "dq"} & set(roles):
        raise IngestError(path, f"no current or charge column (I/mA, <I>/mA, (Q-Qo)/C, dq/mA.h) among {list(columns)}")
    return roles, found


def assemble(roles: dict[str, np.ndarray], raw: Mapping[str, np.ndarray], *, loop: np.ndarray | None,
             sample_current: bool, attrs: dict, current_from: tuple[str, ...] = CURRENT_ROLES) -> pd.DataFrame:
    """The table: ``t_s, I_A, Q_C, Q_instrument_C, E_V, loop`` then the raw columns.

    ``current_from`` lists the roles the current may be derived from, best first.
    Rows with a non-finite time or current source, or a time not after the previous row,
    are dropped and counted in ``attrs['warnings']``.
    """
    t = roles["t"]
    warnings: list[str] = list(attrs.get("warnings", []))
    source_key = next(k for k in current_from if k in roles)
    ok = np.isfinite(t) & np.isfinite(roles[source_key])
    if (~ok).any():
        warnings.append(f"{int((~ok).sum())} row(s) with no time or {source_key} skipped")
    run_max = np.maximum.accumulate(np.where(ok, t, -np.inf))
    later = np.concatenate([[True], t[1:] > run_max[:-1]]) if t.size else ok
    if (ok & ~later).any():
        warnings.append(f"{int((ok & ~later).sum())} row(s) whose time does not increase skipped")
    keep = ok & later
    roles = {k: v[keep] for k, v in roles.items()}
    loop_k = None if loop is None else np.asarray(loop)[keep]
    current, loop_k, source = interval_current(roles["t"], {k: v for k, v in roles.items() if k in current_from},
                                               loop_k, None, sample_current=sample_current,
                                               charge=roles.get("Q"))
    n = int(keep.sum())
    q_inst = roles.get("Q")
    if q_inst is None and "dq" in roles:
        q_inst = np.cumsum(roles["dq"])
    df = pd.DataFrame({
        "t_s": roles["t"], "I_A": current, "Q_C": coulomb_count(roles["t"], current, segments=loop_k),
        "Q_instrument_C": q_inst if q_inst is not None else np.full(n, np.nan),
        "E_V": roles.get("E", np.full(n, np.nan)), "loop": loop_k,
    })
    extra = {c: np.asarray(v)[keep] for c, v in raw.items() if c not in df.columns}
    if extra:
        df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    if not df["Q_instrument_C"].notna().any():
        df = df.drop(columns="Q_instrument_C")
    if source == "I" and sample_current:
        warnings.append("current from the instantaneous I column only (no (Q-Qo), dq or <I>): each reading "
                        "is held until the next row, which EC-Lab versions do not all mean (docs/physics.md §5.7)")
    attrs = dict(attrs, current_source=source, warnings=warnings)
    df.attrs.update(attrs)
    return df
