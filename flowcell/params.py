"""The one place a model and its parameter values are chosen.

Every consumer -- the simulator, the fit, screening and the live SOC filter -- asks
here for the kinetic model of an experiment (:func:`model_network`) and for the values
of its parameters (:func:`resolve_params`), so an experiment file means the same thing
to all of them.  Values are layered, later layers winning::

    library defaults (kinetics.library)  <-  experiment file [model.params]  <-  overrides

Derived forms are converted where they enter: ``dE_V = E1 - E2`` (V) becomes
``Kc = exp(F dE_V / RT)`` (docs/physics.md §1.2) at the experiment's temperature
(``[model.params] T`` if given, else ``[electrolyte] temperature_K``, which is
also the resolved ``T``).  A layer that
gives both ``Kc`` and ``dE_V`` is an error; a later layer's ``Kc`` replaces an earlier
``dE_V``.  Unknown names raise :class:`~flowcell.config.ConfigError` naming the file (or
``<overrides>``), the key and the closest valid name.
"""

from __future__ import annotations

import difflib
import math
from typing import Callable, Mapping

from kinetics import library
from kinetics.constants import T_STD, Kc_from_dE
from kinetics.model import Model
from kinetics.network import Network
from kinetics.observe import ObservationModel

from flowcell.config import ConfigError, ExperimentConfig

__all__ = ["MODELS", "DERIVED", "model_network", "compiled_model", "known_params", "resolve_params"]

#: The built-in models an experiment file can name in ``[model] name``.
MODELS: dict[str, Callable[[], Network]] = {"dhaq": library.dhaq, "dbeaq": library.dbeaq}

#: Derived parameter forms: name -> the model parameter it sets.
DERIVED: dict[str, str] = {"dE_V": "Kc"}

#: Observation parameters that are not :class:`~kinetics.observe.ObservationModel`
#: fit parameters but are read by the simulator and the live filter: the radical's g.
_EXTRA = ("g",)

_OVERRIDES = "<overrides>"


def model_network(config: ExperimentConfig | str | None = None) -> Network:
    """The kinetic network an experiment names (``[model] name``; default ``"dhaq"``).

    Parameters
    ----------
    config : ExperimentConfig or str, optional
        The experiment, or a model name (a key of :data:`MODELS`).

    Returns
    -------
    kinetics.network.Network
        With the library's parameter defaults (apply :func:`resolve_params` for the
        experiment's values).
    """
    if isinstance(config, str):
        name, src = config, None
    else:
        name = config.model.name if config is not None else "dhaq"
        src = config.source if config is not None else None
    try:
        build = MODELS[name]
    except KeyError:
        raise ConfigError(src, "model.name", f"unknown model {name!r}{_hint(name, MODELS)}") from None
    mech = getattr(getattr(config, "model", None), "mechanism", "") or ""
    text = getattr(getattr(config, "model", None), "network", "") or ""
    if mech or text:  # [model] mechanism / network: a variant or an edited network (issue 14)
        try:
            return library.mechanism(mech, base=name, network=text or None)
        except KeyError as exc:
            raise ConfigError(src, "model.mechanism", str(exc).strip("'\"")) from None
        except ValueError as exc:  # kinetics.network.NetworkError
            raise ConfigError(src, "model.network", str(exc)) from None
    return build()


def compiled_model(config: ExperimentConfig | None = None) -> Model:
    """:func:`model_network` compiled with the experiment's ``[model] reduce_fast``."""
    reduce_fast = bool(config.model.reduce_fast) if config is not None else True
    return model_network(config).compile(reduce_fast=reduce_fast)


def known_params(network: Network) -> set[str]:
    """Names :func:`resolve_params` accepts for ``network``.

    The network's parameters, the observation model's (``hdo_ref_ppm``, ``xi``,
    ``w0_Hz``, hyperfine couplings ``a_*`` ...), ``g`` and the derived forms (``dE_V``).
    """
    return set(network.param_names) | set(ObservationModel().param_names) | set(_EXTRA) | set(DERIVED)


def resolve_params(config: ExperimentConfig | None, overrides: Mapping[str, float] | None = None, *,
                   network: Network | None = None, overrides_source: str = _OVERRIDES) -> dict[str, float]:
    """Parameter values of an experiment: library defaults <- ``[model.params]`` <- overrides.

    Parameters
    ----------
    config : ExperimentConfig or None
        The experiment (None: library defaults and overrides only, at 298.15 K).
    overrides : mapping name -> float, optional
        E.g. ``--param`` values from the command line or fitted values.
    network : kinetics.network.Network, optional
        The model whose defaults form the first layer (default :func:`model_network`).
    overrides_source : str
        What error messages call the overrides, e.g. ``"--param"``.

    Returns
    -------
    dict name -> float
        Every network parameter (units as in :mod:`kinetics.library`), plus the
        observation parameters the file or the overrides give.  Derived forms are
        replaced by what they set (``dE_V`` -> ``Kc``).

    Raises
    ------
    ConfigError
        An unknown name (with the closest valid one), a non-finite value, or ``Kc`` and
        ``dE_V`` given together in one layer.
    """
    net = network if network is not None else model_network(config)
    known = known_params(net)
    out = {k: float(v) for k, v in net.defaults.items()}
    # the experiment's temperature: [electrolyte] temperature_K unless a layer gives T
    T_K = float(config.electrolyte.temperature_K) if config is not None else T_STD
    if config is not None and "T" in out:
        out["T"] = T_K
    layers = []
    if config is not None:
        layers.append((config.source, "model.params", config.model.params or {}))
    layers.append((overrides_source, "param", overrides or {}))
    for src, where, layer in layers:
        values = _checked(layer, known, src, where)
        T_K = values.get("T", T_K)
        for derived, target in DERIVED.items():
            if derived in values:
                if target in values:
                    raise ConfigError(src, f"{where}.{derived}", f"give {target} or {derived}, not both")
                values[target] = float(Kc_from_dE(values.pop(derived), T_K))
        out.update(values)
    return out


def _checked(layer: Mapping[str, float], known: set[str], src: object, where: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for k, v in layer.items():
        if k not in known:
            raise ConfigError(src, f"{where}.{k}", f"unknown model parameter{_hint(k, known)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise ConfigError(src, f"{where}.{k}", f"must be a finite number, got {v!r}")
        values[k] = float(v)
    return values


def _hint(name: str, known) -> str:
    close = [k for k in sorted(known) if k.lower() == name.lower()]
    close = close or difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
