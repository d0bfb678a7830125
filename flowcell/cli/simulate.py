"""``flowcell simulate``: the subcommand's parser (``add``) and its work (``run``)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Sequence

from flowcell.cli.common import EXIT_OK, EXIT_TEXT as _EXIT_TEXT, Formatter as _Formatter, Usage as _Usage, load_config as _load_config


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", formatter_class=_Formatter, help="write a synthetic experiment (vendor files + truth)",
        description=textwrap.dedent("""\
            Simulate the experiment described by CONFIG under a cycling protocol and write
            OUT/nmr/<expno> (Bruker 1H), OUT/epr/epr_NNNN.DSC/.DTA (BES3T), OUT/potentiostat.csv,
            OUT/standard/ (the EPR spin standard), OUT/experiment.toml (the config of the written
            folders, with its EPR calibration) and OUT/truth/ (true SOC, concentrations, parameters).

            PROTOCOL is a TOML file with [[step]] tables or text such as
              "rest 6 min; cc +50 mA until 1.6 V until soc 0.85 max 2 h; rest 1 h; cc -50 mA until 0.7 V max 2 h"
            (steps: 'cc <I> A|mA [until <V> V] [until soc <x>] [max <n> s|min|h]', 'rest <n> s|min|h')."""),
        epilog="examples:\n  flowcell simulate flowcell/data/demo_experiment.toml --out sim --hours 2\n"
               "  flowcell simulate exp.toml --out sim --protocol 'rest 5 min; cc 40 mA max 1 h' "
               "--realtime --speedup 60\n\n" + _EXIT_TEXT)
    p.add_argument("config", type=Path, help="experiment TOML (flowcell/data/example_experiment.toml is a template)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--protocol", default=None,
                   help="protocol TOML file or text (default: the demo's rest/charge/rest/discharge over --hours)")
    p.add_argument("--hours", type=float, default=3.0, help="duration of the default protocol, h")
    p.add_argument("--interval-min", type=float, default=2.0, help="minutes between spectrum pairs")
    p.add_argument("--soc0", type=float, default=0.0, help="initial SOC")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--realtime", action="store_true", help="write each file when the simulated clock reaches it")
    p.add_argument("--speedup", type=float, default=60.0, help="speed-up with --realtime")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a model parameter (repeatable), e.g. --param k_dec=3e-6")
    p.add_argument("--nmr-drift-ppm-h", type=float, default=0.0, help="NMR field drift, ppm/h")
    p.add_argument("--epr-drift-mT-h", type=float, default=0.0, help="EPR field drift, mT/h")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _parse_params(items: Sequence[str]) -> dict[str, float]:
    out = {}
    for it in items:
        if "=" not in it:
            raise _Usage(f"--param {it!r}: expected NAME=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise _Usage(f"--param {it!r}: {v!r} is not a number") from None
    return out


def run(a: argparse.Namespace) -> int:
    # imported here, not at module level: `flowcell --help` must not load numpy/scipy/sympy
    from flowcell.demo import demo_protocol
    from flowcell.params import model_network, resolve_params
    from flowcell.simulate.protocol import Protocol
    from flowcell.simulate.simulator import ExperimentSimulator, NoiseSettings
    from flowcell.validation import check_arg, check_output
    # every argument within its physical range, the output writable, before any work (exit 2)
    check_arg("--hours", a.hours, min=0.0, strict_min=True, max=2000.0, unit="h")
    check_arg("--interval-min", a.interval_min, min=0.0, strict_min=True,
              max=24 * 60.0 if a.protocol else 60.0 * a.hours, unit="min")
    if not a.protocol:
        check_arg("spectra (--hours / --interval-min)", 60.0 * a.hours / a.interval_min, max=2e5)
    check_arg("--speedup", a.speedup, min=0.0, strict_min=True, max=1e7)
    check_arg("--soc0", a.soc0, min=0.0, max=1.0)
    check_output(a.out, "--out")
    cfg = _load_config(a.config)
    C, V = cfg.electrolyte.concentration_M, cfg.electrolyte.volume_L
    protocol = Protocol.load(a.protocol) if a.protocol else demo_protocol(a.hours, C_tot_M=C, volume_L=V)
    params = _parse_params(a.param)
    net = model_network(cfg)
    resolve_params(cfg, params, network=net, overrides_source="--param")  # unknown names: exit 2 before the model is compiled
    model = net.compile(reduce_fast=cfg.model.reduce_fast)
    noise = NoiseSettings(nmr_drift_ppm_per_h=a.nmr_drift_ppm_h, epr_field_drift_T_per_h=a.epr_drift_mT_h * 1e-3)
    sim = ExperimentSimulator(cfg, protocol, model, a.out, params=params, interval_s=60.0 * a.interval_min,
                              soc0=a.soc0, seed=a.seed, noise=noise)
    tr = sim.prepare()
    print(f"simulating {tr.schedule.total_s / 3600:.2f} h: {protocol.describe()}")
    print(f"{len(tr.spectra)} spectra -> {a.out}" + (f" in real time at {a.speedup:g}x" if a.realtime else ""))
    sim.write(realtime_speedup=a.speedup if a.realtime else None, progress=not a.no_progress)
    print(f"config of the written folders: {tr.config_path}")
    print(f"truth: {Path(a.out) / 'truth'}")
    return EXIT_OK
