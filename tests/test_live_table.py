"""The live table in a pseudo-terminal (80 columns, then resized), plain lines in a log,
``live_soc.csv`` and the PNG plot."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest

from flowcell.live.csvlog import CSV_COLUMNS, LiveCsv
from flowcell.live.state import SessionStatus
from flowcell.live.state import SOCState
from flowcell.live.table import TerminalTable, render_lines

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def state(k: int, **kw) -> SOCState:
    d = dict(t_s=60.0 * k, soc=0.01 * k, soc_sd=0.004, soc_active=0.0101 * k, soc_coulomb=0.0102 * k,
             Kc=0.31, Kc_lo=0.12, Kc_hi=0.8, radical_M=0.01, current_A=0.05, kind="nmr", used=("hdo",),
             time_utc=T0 + timedelta(minutes=k))
    d.update(kw)
    return SOCState(**d)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

PTY_SCRIPT = textwrap.dedent("""
    import fcntl, struct, sys, termios, time
    from datetime import datetime, timedelta, timezone
    from flowcell.live.state import SessionStatus
    from flowcell.live.state import SOCState
    from flowcell.live.table import TerminalTable
    t0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    table = TerminalTable()
    assert table.ansi
    status = SessionStatus(rows=0, potentiostat="ok")
    for k in range(40):
        if k == 20:  # the user widens the window
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 130, 0, 0))
            print("RESIZED", flush=True)
        status.rows = k + 1
        st = SOCState(t_s=60.0 * k, soc=0.01 * k, soc_sd=0.004, soc_coulomb=0.0102 * k, soc_active=0.0101 * k,
                      Kc=0.31, Kc_lo=0.12, Kc_hi=0.8, radical_M=0.01, current_A=0.05, kind="epr",
                      used=("epr",), time_utc=t0 + timedelta(minutes=k))
        table.update(st, status)
        time.sleep(0.02)
    table.close()
""")


def run_in_pty(script: str, cols: int = 80, rows: int = 24) -> str:
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TERM", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                            env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty with TIOCSWINSZ")
def test_table_fits_80_columns_in_a_pty_and_redraws_on_resize():
    out = run_in_pty(PTY_SCRIPT, cols=80)
    before, after = out.split("RESIZED", 1)
    lines = [_ANSI.sub("", l) for l in re.split(r"[\r\n]", before)]
    lines = [l for l in lines if l.strip()]
    assert lines and max(len(l) for l in lines) <= 80, max(lines, key=len)
    text = "\n".join(lines)
    for must in ("SOC %", "±2sd %", "Kc (±2sd)", "rows", "potentiostat ok"):
        assert must in text, must
    assert "[R] mM" not in text  # dropped to fit 80 columns
    wide = [_ANSI.sub("", l) for l in re.split(r"[\r\n]", after)]
    assert any("[R] mM" in l for l in wide)  # redrawn with more columns once wider
    assert max(len(l) for l in wide) <= 130


def test_plain_lines_in_a_log_are_80_columns():
    buf = io.StringIO()
    table = TerminalTable(buf)
    assert not table.ansi
    status = SessionStatus(rows=3, rejected_rows=1, flagged=1, potentiostat="missing")
    for k in range(3):
        table.update(state(k, rejected=("epr",) if k == 1 else ()), status)
    table.update(state(3, flag="untimed", kind="epr"), status)
    table.close()
    lines = buf.getvalue().splitlines()
    assert max(len(l) for l in lines) <= 80
    assert lines[0].split()[:3] == ["time", "UTC", "SOC"]
    assert "09:01:00" in lines[3] and "epr!" in lines[3]  # a rejected observation is marked
    assert "untimed" in lines[5]
    assert lines[-1].startswith("potentiostat missing") and "flagged 1" in lines[-1]


def test_columns_dropped_by_priority():
    rows = [(state(5), 0.05)]
    narrow = render_lines(rows, 60, truth_shown=True)[0]
    wide = render_lines(rows, 200, truth_shown=True)[0]
    assert "SOC %" in narrow and "row" in narrow and "[R] mM" not in narrow
    assert "true %" in wide and "[R] mM" in wide


def test_live_csv_columns(tmp_path):
    path = tmp_path / "out" / "live_soc.csv"
    log = LiveCsv(path)
    log.update(state(2), source="nmr/3", rejection_rate=0.1, mismatch=1.2)
    log.update(state(3, flag="future", soc_coulomb=float("nan")))
    log.close()
    rows = list(csv.DictReader(open(path)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["time_utc"] == "2026-11-30T09:02:00+00:00"
    assert float(rows[0]["soc"]) == pytest.approx(0.02) and float(rows[0]["soc_active"]) == pytest.approx(0.0202)
    assert float(rows[0]["soc_sd"]) == pytest.approx(0.004) and rows[0]["source"] == "nmr/3"
    assert rows[1]["flag"] == "future" and rows[1]["soc_coulomb"] == ""


def test_plot_png_without_display(tmp_path):
    from flowcell.live.plot import LivePlot

    plot = LivePlot(tmp_path / "p.png", interactive=False, every=2)
    for k in range(4):
        plot.update(state(k), 0.01 * k)
    plot.close()
    assert (tmp_path / "p.png").stat().st_size > 1000
