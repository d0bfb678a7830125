"""The experiment description: a validated TOML file.

One file describes one in-line experiment: the electrolyte, the flow loop,
where the instruments write, the kinetic model and the live-SOC filter.
``flowcell/data/example_experiment.toml`` is a fully commented template.

Tables and keys (units in the key names; defaults in brackets; ASSUMED
defaults are the simulator placeholders of docs/physics.md §2.6, not literature):

``[experiment]``
    ``name`` (required), ``operator`` [""], ``notes`` [""].
``[electrolyte]``
    ``quinone`` ["DHAQ"; a label, e.g. "DHAQ", "DBEAQ"], ``concentration_M`` (required, mol/L of
    quinone monomer, C_tot of §1.1), ``volume_L`` (required, whole circulating
    volume V_tot of §1.1), ``supporting`` ["1 M KOH"], ``solvent`` ["D2O"],
    ``temperature_K`` [298.15].
``[flow]`` (docs/physics.md §1.7)
    ``rate_mL_min`` [13.6, §2.6/[S]], ``cell_to_nmr_mL`` [0], ``cell_to_epr_mL`` [0],
    ``nmr_cell_mL`` [0], ``epr_cell_mL`` [0], ``reservoir_mL`` [volume_L minus the
    other loop volumes], ``cell_mL`` [0], ``return_mL`` [0: the flow path from the
    cell outlet back into the reservoir], ``feed_mL`` [0: reservoir to cell inlet;
    added to the contract], ``detectors`` ["loop"; or "reservoir": the detectors sample the
    well-mixed reservoir, no transit delay and no cell-outlet lead].
``[instruments]``
    ``nmr_dir``, ``nmr_format`` ["bruker"; bruker|bruker_ser|spinsolve|jcampdx],
    ``epr_dir``, ``epr_format`` ["bes3t"; bes3t|esp|magnettech|csv],
    ``potentiostat`` (file or folder), ``epr_standard`` [none: the spin standard's file or
    folder, never ingested as a sample; nor is anything in a folder named ``standard/``], ``geometry`` ["parallel"; or "perpendicular",
    the sample axis relative to B0, §1.3], ``nmr_clock_offset_s`` [0],
    ``epr_clock_offset_s`` [0] (instrument clock minus potentiostat clock, s),
    ``nmr_sfo1_MHz`` [none; informative], ``nucleus`` ["1H"], ``current_sign`` [+1:
    multiply the potentiostat current by this to get the anolyte charging current].
``[observables]``
    ``config`` (path to an ``ingest`` observables TOML; optional).
``[epr_calibration]`` (optional, §1.5)
    ``concentration_M``, ``di_norm`` (both required when the table is present),
    ``temperature_K`` [298.15], ``g`` [2.0058], ``spin`` [0.5], ``q_factor``, ``mw_freq_hz`` [none:
    the standard's resonator Q and frequency, used only when the sample's file has them too].
``[model]``
    ``name`` ["dhaq"; dhaq|dbeaq], ``reduce_fast`` [true], ``mechanism`` ["": variants of
    ``kinetics.library.VARIANTS`` joined by "+", e.g. "dec_H+dimer"], ``network`` ["": text in
    the ``kinetics.network`` syntax, a whole network or lines editing the named one],
    ``[model.params]`` any
    parameter of the kinetic model or the observation model (``Kc``, ``kc``, ``k1``,
    ``k2``, ``KD``, ``KT``, ``k_dec``, ``k_dec2``, ``eps_dec``, ``J_e``, ``Ks``,
    ``nu_O2``, ``eps_H``, ``T``, ``g``, ``xi``, ``hdo_ref_ppm``, ``w0_Hz``, ``a_*``).
``[live]`` (the live SOC filter, docs/physics.md §1.9; added to the contract)
    ``soc0`` [0], ``soc0_sd`` [0.02], ``hdo_ref_ppm`` [none: taken from the first
    spectra, then refined as a filter state], ``hdo_ref_sd_ppm`` [0.005, its prior sd],
    ``q_ref_ppm2_per_s`` [3e-10, its random walk: ~0.001 ppm/h of slow temperature drift],
    ``n_ref_spectra`` [1], ``sigma_hdo_ppm`` [0.002], ``sigma_epr_M`` [2e-4],
    ``sigma_arom`` [0.02], ``sigma_area_rel`` [0.01, O-peak area / reference],
    ``q_soc_per_s`` [1e-8, SOC^2/s], ``q_drift_per_s3`` [1e-15, (1/s)^2/s],
    ``drift_sd_per_s`` [5e-6, 1/s], ``active_sd`` [1e-3, prior sd of the active
    fraction a = C_act/C_tot], ``q_active_per_s`` [1e-10, its random walk],
    ``refer_to_outlet`` [true], ``gate_sigma`` [6: observations whose normalised
    innovation exceeds it are rejected], ``hdo_temp_coeff_ppm_per_K`` [-1/96.9, water's
    shift vs temperature (Gottlieb, §1.3), applied when a row has ``temperature_K``; 0 = off].

Folder and file paths are resolved against the folder of the TOML file.
Errors raise :class:`ConfigError`, which names the file, the key and the
problem, and suggests the closest known key for a misspelt one.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from flowcell.validation import (
    PARAM_RANGES,
    ConfigError,
    _check_param_range,
    check_arg,
    check_output,
)

if TYPE_CHECKING:  # flowcell.transit imports kinetics (sympy, lmfit: ~1 s); loaded where used
    from flowcell.transit import TransitDelays

__all__ = [
    "KNOWN_MODEL_PARAMS",
    "PARAM_RANGES",
    "ConfigError",
    "EPRCalibrationConfig",
    "ElectrolyteConfig",
    "ExperimentConfig",
    "ExperimentInfo",
    "FlowConfig",
    "InstrumentsConfig",
    "LiveConfig",
    "ModelConfig",
    "ObservablesRef",
    "check_arg",
    "check_output",
]

_MAX_TOML_BYTES = 4 << 20


#: Parameter names accepted in ``[model.params]`` (docs/architecture.md, docs/physics.md §2).
KNOWN_MODEL_PARAMS = (
    "Kc", "kc", "k1", "k2", "KD", "KT", "k_dec", "k_dec2", "eps_dec", "J_e", "Ks",
    "nu_O2", "eps_H", "T", "g", "xi", "hdo_ref_ppm", "w0_Hz", "dE_V",
)


# --------------------------------------------------------------------------- field specs

def _f(default: Any = None, *, kind: str = "float", required: bool = False, min: float | None = None,
       strict_min: bool = False, max: float | None = None, choices: tuple | None = None, doc: str = "") -> Any:
    """A dataclass field with validation metadata (``min``/``max``: its physical range)."""
    meta = {"kind": kind, "required": required, "min": min, "strict_min": strict_min, "max": max,
            "choices": choices, "doc": doc}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ExperimentInfo:
    """``[experiment]``: free-text identification."""

    name: str = _f("", kind="str", required=True)
    operator: str = _f("", kind="str")
    notes: str = _f("", kind="str")


@dataclass(frozen=True)
class ElectrolyteConfig:
    """``[electrolyte]``: the anolyte (docs/physics.md §1.1, §2.6).

    Attributes
    ----------
    quinone : str
        A label ('DHAQ', 'DBEAQ', ...); the chemistry is chosen by ``[model] name``.
    concentration_M : float
        Total active quinone C_tot, mol/L (monomer units).
    volume_L : float
        Whole circulating volume V_tot (reservoir + tubing + cell), L.
    supporting, solvent : str
    temperature_K : float
    """

    quinone: str = _f("DHAQ", kind="str")
    concentration_M: float = _f(0.1, required=True, min=0.0, strict_min=True, max=10.0)
    volume_L: float = _f(0.010, required=True, min=0.0, strict_min=True, max=1e4)
    supporting: str = _f("1 M KOH", kind="str")
    solvent: str = _f("D2O", kind="str")
    temperature_K: float = _f(298.15, min=200.0, max=500.0)


@dataclass(frozen=True)
class FlowConfig:
    """``[flow]``: the flow loop, volumes in mL, rate in mL/min (docs/physics.md §1.7).

    ``reservoir_mL`` None means "the rest of ``electrolyte.volume_L``".
    """

    rate_mL_min: float = _f(13.6, min=0.0, strict_min=True, max=1e5)
    cell_to_nmr_mL: float = _f(0.0, min=0.0)
    cell_to_epr_mL: float = _f(0.0, min=0.0)
    nmr_cell_mL: float = _f(0.0, min=0.0)
    epr_cell_mL: float = _f(0.0, min=0.0)
    reservoir_mL: float | None = _f(None, min=0.0, strict_min=True)
    cell_mL: float = _f(0.0, min=0.0)
    return_mL: float = _f(0.0, min=0.0)
    feed_mL: float = _f(0.0, min=0.0)
    #: "loop": detectors sit in the flow loop after the cell (transit delays, outlet composition);
    #: "reservoir": they sample the well-mixed reservoir (no transit, no outlet lead)
    detectors: str = _f("loop", kind="str", choices=("loop", "reservoir"))


@dataclass(frozen=True)
class InstrumentsConfig:
    """``[instruments]``: where the instruments write and how to read them."""

    nmr_dir: Path | None = _f(None, kind="path")
    nmr_format: str = _f("bruker", kind="str", choices=("bruker", "bruker_ser", "spinsolve", "jcampdx"))
    epr_dir: Path | None = _f(None, kind="path")
    epr_format: str = _f("bes3t", kind="str", choices=("bes3t", "esp", "magnettech", "csv"))
    potentiostat: Path | None = _f(None, kind="path")
    #: the EPR spin standard (file or folder): never ingested as a sample (``standard/`` folders neither)
    epr_standard: Path | None = _f(None, kind="path")
    geometry: str = _f("parallel", kind="str", choices=("parallel", "perpendicular"))
    nmr_clock_offset_s: float = _f(0.0)
    epr_clock_offset_s: float = _f(0.0)
    nmr_sfo1_MHz: float | None = _f(None, min=0.0, strict_min=True)
    nucleus: str = _f("1H", kind="str")
    current_sign: int = _f(1, kind="int", choices=(1, -1))


@dataclass(frozen=True)
class ObservablesRef:
    """``[observables]``: optional path to an ``ingest`` observables TOML."""

    config: Path | None = _f(None, kind="path")


@dataclass(frozen=True)
class EPRCalibrationConfig:
    """``[epr_calibration]``: a spin standard measured in the same cell (docs/physics.md §1.5)."""

    concentration_M: float = _f(None, required=True, min=0.0, strict_min=True)
    di_norm: float = _f(None, required=True, min=0.0, strict_min=True)
    temperature_K: float = _f(298.15, min=2.0, max=500.0)
    g: float = _f(2.0058, min=1.5, max=2.5)
    spin: float = _f(0.5, min=0.0, strict_min=True, max=10.0)
    #: resonator Q and microwave frequency (Hz) of the standard's measurement: used with the sample's
    q_factor: float | None = _f(None, min=0.0, strict_min=True)
    mw_freq_hz: float | None = _f(None, min=0.0, strict_min=True)


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: which kinetic model, and parameter overrides (docs/physics.md §2)."""

    name: str = _f("dhaq", kind="str", choices=("dhaq", "dbeaq"))
    reduce_fast: bool = _f(True, kind="bool")
    params: dict[str, float] = _f(None, kind="params")
    #: mechanism variants of kinetics.library.VARIANTS, "+"-separated ("dec_H+dimer"; docs/physics.md §2.1)
    mechanism: str = _f("", kind="str")
    #: network text (kinetics.network syntax): a whole network, or lines editing the named one
    network: str = _f("", kind="str")

    def __post_init__(self) -> None:
        if self.params is None:
            object.__setattr__(self, "params", {})

    def __hash__(self) -> int:  # dict field: hash by items
        return hash((self.name, self.reduce_fast, tuple(sorted(self.params.items())), self.mechanism, self.network))


@dataclass(frozen=True)
class LiveConfig:
    """``[live]``: the live SOC filter (docs/physics.md §1.9).  Noise values are tuning knobs."""

    soc0: float = _f(0.0, min=0.0, max=1.0)
    soc0_sd: float = _f(0.02, min=0.0, strict_min=True, max=1.0)
    hdo_ref_ppm: float | None = _f(None)
    hdo_ref_sd_ppm: float = _f(0.005, min=0.0, strict_min=True)
    q_ref_ppm2_per_s: float = _f(3e-10, min=0.0)
    n_ref_spectra: int = _f(1, kind="int", min=1)
    sigma_hdo_ppm: float = _f(0.002, min=0.0, strict_min=True)
    sigma_epr_M: float = _f(2e-4, min=0.0, strict_min=True)
    sigma_arom: float = _f(0.02, min=0.0, strict_min=True)
    sigma_area_rel: float = _f(0.01, min=0.0, strict_min=True)
    q_soc_per_s: float = _f(1e-8, min=0.0)
    q_drift_per_s3: float = _f(1e-15, min=0.0)
    drift_sd_per_s: float = _f(5e-6, min=0.0, strict_min=True)
    refer_to_outlet: bool = _f(True, kind="bool")
    gate_sigma: float = _f(6.0, min=0.0, strict_min=True)
    active_sd: float = _f(1e-3, min=0.0, strict_min=True, max=1.0)
    q_active_per_s: float = _f(1e-10, min=0.0)
    hdo_temp_coeff_ppm_per_K: float = _f(-1.0 / 96.9)


_TABLES: dict[str, type] = {
    "experiment": ExperimentInfo,
    "electrolyte": ElectrolyteConfig,
    "flow": FlowConfig,
    "instruments": InstrumentsConfig,
    "observables": ObservablesRef,
    "epr_calibration": EPRCalibrationConfig,
    "model": ModelConfig,
    "live": LiveConfig,
}
_REQUIRED_TABLES = ("experiment", "electrolyte")
_OPTIONAL_NONE_TABLES = ("epr_calibration",)


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    if not close:
        close = [k for k in known if k.lower() == name.lower()]
    return f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"


def _known_params() -> set[str]:
    from kinetics.library import DEFAULTS  # lazy: sympy and lmfit load only when [model.params] is checked

    return set(KNOWN_MODEL_PARAMS) | set(DEFAULTS)  # the library may define more (e.g. hyperfine couplings)


def _convert(value: Any, spec: dict, where: str, src: Path | None, base: Path) -> Any:
    kind = spec["kind"]
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(src, where, f"must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(src, where, f"must be finite, got {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(src, where, f"must be an integer, got {type(value).__name__} {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(src, where, f"must be true or false, got {type(value).__name__} {value!r}")
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(src, where, f"must be a string, got {type(value).__name__} {value!r}")
    elif kind == "path":
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(src, where, f"must be a path string, got {type(value).__name__} {value!r}")
        p = Path(value).expanduser()
        value = p if p.is_absolute() else (base / p)
        value = Path(os.path.normpath(value))
    elif kind == "params":
        if not isinstance(value, Mapping):
            raise ConfigError(src, where, f"must be a table of name = number, got {type(value).__name__}")
        known = _known_params()
        out: dict[str, float] = {}
        for k, v in value.items():
            if k not in known and not k.startswith("a_"):
                raise ConfigError(src, f"{where}.{k}", "unknown model parameter" + _suggest(k, known))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise ConfigError(src, f"{where}.{k}", f"must be a finite number, got {v!r}")
            _check_param_range(k, float(v), src, f"{where}.{k}")
            out[k] = float(v)
        return out
    choices = spec["choices"]
    if choices is not None and value not in choices:
        hint = _suggest(str(value), [str(c) for c in choices]) if kind == "str" else ""
        raise ConfigError(src, where, f"{value!r} is not one of {', '.join(map(repr, choices))}{hint}")
    lo, hi = spec["min"], spec.get("max")
    if lo is not None and kind in ("float", "int"):
        if value < lo or (spec["strict_min"] and value == lo):
            rel = ">" if spec["strict_min"] else ">="
            raise ConfigError(src, where, f"must be {rel} {lo:g}, got {value!r}")
    if hi is not None and kind in ("float", "int") and value > hi:
        raise ConfigError(src, where, f"must be <= {hi:g}, got {value!r}")
    return value


def _build(cls: type, table: Any, name: str, src: Path | None, base: Path):
    if not isinstance(table, Mapping):
        raise ConfigError(src, name, f"must be a table, got {type(table).__name__}")
    specs = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in specs:
            raise ConfigError(src, f"{name}.{key}", "unknown key" + _suggest(key, specs))
        kwargs[key] = _convert(value, specs[key].metadata, f"{name}.{key}", src, base)
    for fname, f in specs.items():
        if f.metadata.get("required") and fname not in kwargs:
            raise ConfigError(src, f"{name}.{fname}", "missing required key")
    return cls(**kwargs)


def _toml_value(v: Any, relative_to: Path | None) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, Path):
        s = v
        if relative_to is not None:
            try:
                s = Path(os.path.relpath(v, relative_to))
            except ValueError:  # different drive on Windows
                s = v
        v = s.as_posix()
    if isinstance(v, str):
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{esc}"'
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment description.

    Build it with :meth:`from_toml` or :meth:`from_dict`; write it back with
    :meth:`to_toml` / :meth:`write_toml`.

    Attributes
    ----------
    experiment, electrolyte, flow, instruments, observables, model, live
        The tables (see the module docstring).
    epr_calibration : EPRCalibrationConfig or None
    source : Path or None
        The TOML file it was read from.
    """

    experiment: ExperimentInfo
    electrolyte: ElectrolyteConfig
    flow: FlowConfig = field(default_factory=FlowConfig)
    instruments: InstrumentsConfig = field(default_factory=InstrumentsConfig)
    observables: ObservablesRef = field(default_factory=ObservablesRef)
    epr_calibration: EPRCalibrationConfig | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    source: Path | None = field(default=None, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_toml(cls, path: str | Path) -> ExperimentConfig:
        """Read and validate an experiment TOML file.

        Raises
        ------
        ConfigError
            File missing, not valid TOML, or any key wrong (names file and key).
        """
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(path, "-", "config file not found")
        try:
            with open(path, "rb") as fh:
                raw = fh.read(_MAX_TOML_BYTES + 1)
        except OSError as exc:
            raise ConfigError(path, "-", f"cannot be read ({exc.strerror or exc})") from None
        if len(raw) > _MAX_TOML_BYTES or b"\x00" in raw:
            raise ConfigError(path, "-", "is a binary or huge file, not an experiment TOML text file")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(path, "-", f"is not UTF-8 text (byte offset {exc.start}): not an experiment "
                                         "TOML file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, "-", f"not valid TOML: {exc}") from None
        return cls.from_dict(data, source=path)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | Path | None = None,
                  base_dir: str | Path | None = None) -> ExperimentConfig:
        """Validate a parsed TOML dictionary.

        Parameters
        ----------
        d : mapping
            Tables as in the module docstring.
        source : path, optional
            File the dictionary came from (named in errors; its folder resolves relative paths).
        base_dir : path, optional
            Folder for relative paths when there is no ``source``; default the working directory.
        """
        src = Path(source) if source is not None else None
        base = Path(base_dir) if base_dir is not None else (src.parent if src is not None else Path.cwd())
        if not isinstance(d, Mapping):
            raise ConfigError(src, "-", "top level must be a table")
        for tname in d:
            if tname not in _TABLES:
                raise ConfigError(src, tname, "unknown table" + _suggest(tname, _TABLES))
        for tname in _REQUIRED_TABLES:
            if tname not in d:
                raise ConfigError(src, tname, "missing required table")
        built: dict[str, Any] = {}
        for tname, tcls in _TABLES.items():
            if tname in d:
                built[tname] = _build(tcls, d[tname], tname, src, base)
            elif tname in _OPTIONAL_NONE_TABLES:
                built[tname] = None
            else:
                built[tname] = tcls()
        cfg = cls(**built, source=src)
        cfg._check_consistency()
        return cfg

    def _check_consistency(self) -> None:
        src = self.source
        fl = self.flow
        loop_mL = (fl.cell_mL + fl.feed_mL + fl.return_mL)
        total_mL = self.electrolyte.volume_L * 1e3
        if fl.reservoir_mL is not None:
            if fl.reservoir_mL > total_mL * (1 + 1e-9):
                raise ConfigError(src, "flow.reservoir_mL",
                                  f"{fl.reservoir_mL:g} mL exceeds electrolyte.volume_L = {total_mL:g} mL")
        elif loop_mL >= total_mL:
            raise ConfigError(src, "flow",
                              f"cell_mL + feed_mL + return_mL = {loop_mL:g} mL leaves no reservoir volume "
                              f"in electrolyte.volume_L = {total_mL:g} mL")

    def require_dir(self, key: str) -> Path:
        """The folder named by ``key`` (``'instruments.nmr_dir'``), which must exist.

        Raises
        ------
        ConfigError
            Naming the file and the key (exit 2) when it is unset, missing or not a folder.
        """
        table, _, name = key.partition(".")
        value = getattr(getattr(self, table), name)
        if value is None:
            raise ConfigError(self.source, key, "is not set")
        p = Path(value)
        if not p.exists():
            raise ConfigError(self.source, key, f"folder {p} does not exist")
        if not p.is_dir():
            raise ConfigError(self.source, key, f"{p} is not a folder")
        return p

    # ------------------------------------------------------------------ derived values
    @property
    def reservoir_mL(self) -> float:
        """Reservoir liquid volume, mL (given, or V_tot minus cell, feed and return volumes)."""
        fl = self.flow
        if fl.reservoir_mL is not None:
            return fl.reservoir_mL
        return self.electrolyte.volume_L * 1e3 - (fl.cell_mL + fl.feed_mL + fl.return_mL)

    def transit_delays(self) -> TransitDelays:
        """Loop delays from ``[flow]`` (docs/physics.md §1.7); see :func:`flowcell.transit.transit_delays`."""
        # lazy: flowcell.transit imports kinetics (sympy, lmfit)
        from flowcell.transit import transit_delays

        fl = self.flow
        return transit_delays(
            rate_mL_min=fl.rate_mL_min, cell_to_nmr_mL=fl.cell_to_nmr_mL, cell_to_epr_mL=fl.cell_to_epr_mL,
            nmr_cell_mL=fl.nmr_cell_mL, epr_cell_mL=fl.epr_cell_mL, cell_mL=fl.cell_mL,
            feed_mL=fl.feed_mL, return_mL=fl.return_mL, reservoir_mL=self.reservoir_mL,
        )

    # ------------------------------------------------------------------ writing
    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (None values dropped; paths as :class:`Path`)."""
        out: dict[str, dict[str, Any]] = {}
        for tname in _TABLES:
            obj = getattr(self, tname)
            if obj is None:
                continue
            t: dict[str, Any] = {}
            for f in fields(obj):
                v = getattr(obj, f.name)
                if v is None:
                    continue
                t[f.name] = dict(v) if isinstance(v, dict) else v
            out[tname] = t
        return out

    def to_toml(self, relative_to: str | Path | None = None) -> str:
        """Serialise as TOML text that :meth:`from_toml` reads back to an equal config.

        Parameters
        ----------
        relative_to : path, optional
            Write paths relative to this folder (the folder the TOML will live in).
        """
        rel = Path(relative_to).resolve() if relative_to is not None else None
        lines = [f"# flowcell experiment config (written by flowcell.config {self.experiment.name!r})"]
        for tname, t in self.to_dict().items():
            params = t.pop("params", None)
            lines.append("")
            lines.append(f"[{tname}]")
            for k, v in t.items():
                lines.append(f"{k} = {_toml_value(v, rel)}")
            if params:
                lines.append("")
                lines.append(f"[{tname}.params]")
                for k, v in params.items():
                    lines.append(f"{k} = {_toml_value(v, rel)}")
        return "\n".join(lines) + "\n"

    def write_toml(self, path: str | Path) -> Path:
        """Write :meth:`to_toml` to ``path`` with paths relative to its folder; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_toml(relative_to=path.parent), encoding="utf-8")
        return path
