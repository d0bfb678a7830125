"""``flowcell calibrate``: windows from the user's own reference spectrum (``add`` / ``run``)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from flowcell.cli.common import EXIT_OK
from flowcell.cli.common import EXIT_TEXT as _EXIT_TEXT
from flowcell.cli.common import Formatter as _Formatter
from flowcell.cli.common import Usage as _Usage

QUINONES = ("DHAQ", "DBEAQ")


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", formatter_class=_Formatter,
        help="observables windows from a reference spectrum (find, assign, window the lines)",
        description=textwrap.dedent("""\
            Process a reference 1H spectrum of the electrolyte (SOC 0 ideally; any state is
            accepted), pick its lines above the noise (multiplets grouped), assign them to the
            expected lines of the quinone (water, ring protons, side chains; the reduced form and
            the decomposition products get windows where the table puts them, moved by the
            common offset), and write an observables TOML whose windows are centred on the
            measured lines and sized from their widths and SNR.  The windows then follow the
            water line from spectrum to spectrum (the bulk-susceptibility shift moves every line).

            What could not be assigned is printed with the reason; nothing is invented.
            Without --quinone, every picked line gets its own window (line_<ppm>).
            Use the file with: flowcell ingest DATA --observables observables.toml"""),
        epilog=textwrap.dedent("""\
            examples:
              flowcell calibrate run/nmr/1 --quinone DHAQ -o observables.toml --plot calib.png
              flowcell calibrate reference.dx --quinone DBEAQ -o dbeaq.toml
              flowcell calibrate d2o-sample/1 --quinone none -o lines.toml   # no quinone: window every line

            """) + _EXIT_TEXT)
    p.add_argument("spectrum", type=Path, metavar="SPECTRUM",
                   help="reference spectrum: Bruker expno folder, Spinsolve folder, JCAMP-DX file")
    p.add_argument("--quinone", default="DHAQ", metavar="{DHAQ,DBEAQ,none}",
                   help="species whose lines to look for ('none': window every line as found)")
    p.add_argument("-o", "--output", type=Path, required=True, help="observables TOML to write")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG", help="draw the spectrum with windows and labels")
    p.add_argument("--observables", type=Path, default=None,
                   help="processing settings to keep (default: the package's DHAQ defaults)")
    p.add_argument("--snr-min", type=float, default=8.0, help="peak-picking threshold, noise standard deviations")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    q = str(args.quinone)
    if q.lower() == "none":
        quinone = None
    elif q.upper() in QUINONES:
        quinone = q.upper()
    else:
        raise _Usage(f"--quinone {q!r}: use one of {', '.join(QUINONES)} or none")
    if args.output.suffix.lower() != ".toml":
        raise _Usage(f"-o {args.output}: the observables file must end in .toml")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise _Usage(f"--plot {args.plot}: must end in .png")
    # heavy imports here, not at module level: `flowcell --help` must not load numpy
    from ingest.processing.calibrate import calibrate
    from ingest.processing.observables import ObservablesConfig
    from ingest.processing.observables_toml import write_observables
    from ingest.readers.dispatch import read

    base = ObservablesConfig.from_toml(args.observables) if args.observables else ObservablesConfig.default()
    spec = read(args.spectrum)
    if getattr(spec, "kind", "nmr") != "nmr":
        raise _Usage(f"{args.spectrum}: not an NMR spectrum")
    cal = calibrate(spec, quinone=quinone, base=base, snr_min=float(args.snr_min))
    header = (f"Observables calibrated by `flowcell calibrate` on {args.spectrum}\n"
              f"quinone: {quinone or 'none (every picked line windowed)'}; common offset from the line table "
              f"{cal.offset_ppm:+.4f} ppm\n" + cal.report())
    write_observables(cal.config, args.output, header=header)
    print(cal.report())
    print(f"wrote {args.output}")
    if args.plot is not None:
        from ingest.processing.calibrate_plot import plot_calibration

        plot_calibration(cal, args.plot)
        print(f"wrote {args.plot}")
    if quinone and any(n for n, why in cal.missing.items() if why and not why.startswith(
            ("reduced form", "decomposition product")) and n in {ln for ln in _main_lines(quinone)}):
        print("warning: expected lines of the quinone are missing (see above)", file=sys.stderr)
    return EXIT_OK


def _main_lines(quinone: str) -> set[str]:
    from ingest.processing.lines import lines_for

    return {ln.name for ln in lines_for(quinone) if ln.role == "main"}
