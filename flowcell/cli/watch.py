"""``flowcell watch``: the subcommand's parser (``add``) and its work (``run``)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from flowcell.cli.common import EXIT_OK, EXIT_TEXT as _EXIT_TEXT, Formatter as _Formatter, Usage as _Usage, load_config as _load_config


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watch", formatter_class=_Formatter, help="follow the instrument folders of CONFIG: live SOC table",
        description=textwrap.dedent("""\
            Watch the NMR and EPR folders named in CONFIG ([instruments] nmr_dir, epr_dir), store
            every new spectrum (STORE, default <config folder>/store) and print the live state of
            charge (coulomb counting from [instruments] potentiostat fused with the water shift and
            EPR).  Files already present are processed first.  Ctrl-C stops cleanly (exit 0)."""),
        epilog="examples:\n  flowcell watch sim/experiment.toml\n  flowcell watch exp.toml --store run1/store "
               "--plot run1/live.png --polling\n\n" + _EXIT_TEXT)
    p.add_argument("config", type=Path)
    p.add_argument("--store", type=Path, default=None, help="store folder")
    p.add_argument("--plot", type=Path, default=None, help="PNG updated with the live SOC")
    p.add_argument("--polling", action="store_true", help="polling observer (network shares)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="stop once nothing is pending and no new row came for this long (scripts, tests)")
    p.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    import threading

    import numpy as np
    import pandas as pd

    from ingest.live.store import Store
    from ingest.live.watch import Watcher

    from flowcell.live.soc import LivePlot, LiveSOC, TerminalTable
    from flowcell.fit.pipeline import observables_config
    cfg = _load_config(a.config)
    ins = cfg.instruments
    if ins.nmr_dir is None and ins.epr_dir is None:
        raise _Usage(f"{a.config}: [instruments] names neither nmr_dir nor epr_dir")
    store_dir = a.store or Path(a.config).resolve().parent / "store"
    store = Store(store_dir)
    est = LiveSOC(cfg)
    table = TerminalTable()
    plot = LivePlot(a.plot, interactive=False) if a.plot else None
    pot_path = ins.potentiostat
    state = {"q": 0.0, "start": None}
    lock = threading.Lock()

    def pot_at(t_s: float) -> tuple[float | None, float | None]:
        if pot_path is None or not Path(pot_path).exists():
            return None, None
        from flowcell.potentiostat import coulomb_count, read_potentiostat
        try:
            df = read_potentiostat(pot_path)
        except Exception:
            return None, None
        if state["start"] is None:
            state["start"] = df.attrs.get("start")
        t, I = df["t_s"].to_numpy(float), df["I_A"].to_numpy(float)
        if t.size < 2:
            return None, None
        Q = coulomb_count(t, I, method="hold")
        i = int(np.clip(np.searchsorted(t, t_s, side="right") - 1, 0, t.size - 1))
        return float(I[i]), float(Q[i] + I[i] * (t_s - t[i]))

    def on_row(row: dict) -> None:
        with lock:
            pot_at(0.0) if state["start"] is None else None
            t_s = None
            if state["start"] is not None and row.get("time_mid") is not None:
                t_s = float((pd.Timestamp(row["time_mid"]) - pd.Timestamp(state["start"])).total_seconds())
            cur, q = pot_at(t_s) if t_s is not None else (None, None)
            dq = None if q is None else q - state["q"]
            if q is not None:
                state["q"] = q
            st = est.update(row, cur, t_s, charge_C=dq)
            table.update(st)
            if plot is not None:
                plot.update(st)

    w = Watcher(ins.nmr_dir, ins.epr_dir, store, observables_config(cfg), on_row=on_row,
                polling=True if a.polling else None, nmr_clock_offset_s=ins.nmr_clock_offset_s,
                epr_clock_offset_s=ins.epr_clock_offset_s)
    print(f"watching {ins.nmr_dir} and {ins.epr_dir} -> store {store_dir} (Ctrl-C to stop)", flush=True)
    import signal

    def _term(signum, frame):  # SIGTERM (service managers) stops as cleanly as Ctrl-C
        raise KeyboardInterrupt

    try:
        old_term = signal.signal(signal.SIGTERM, _term)
    except ValueError:  # not the main thread
        old_term = None
    try:
        if a.idle_exit is None:
            w.run(a.duration)
        else:
            import time
            w.start()
            t0 = last = time.monotonic()
            n_last = -1
            while a.duration is None or time.monotonic() - t0 < a.duration:
                time.sleep(0.25)
                n = len(est.history)
                if n != n_last:
                    n_last, last = n, time.monotonic()
                elif time.monotonic() - last >= a.idle_exit and w.wait_idle(timeout=0.1):
                    break
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        w.stop()
        store.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    print(f"{len(Store(store_dir))} rows in {store_dir}")
    return EXIT_OK
