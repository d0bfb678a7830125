"""The per-spectrum Python of batch reprocessing, cut without changing a row (issue 15).

Each shortcut is compared with what it replaces: the column names made once a peak with
:meth:`PeakFit.columns`; the assignment checks with a verbatim copy of their former code on
random fits (NaN, integral windows, failed fits, siblings, overlapping lines); the written-out
first test of :func:`ingest.processing.widths.refine_widths` with ``_broad`` itself, close to
its threshold; the time stamps with ``tz_convert``; and the reused FID arrays of a batch
(:func:`ingest.readers.bruker_words.recycled_arrays`) with fresh ones.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.processing import widths
from ingest.processing.assignment import assignment_warnings
from ingest.processing.observables import ObservablesConfig, _ts
from ingest.processing.peak_fit import PeakFit
from ingest.processing.row_parts import cfg_note, peak_columns
from ingest.readers import bruker_words
from ingest.readers.dispatch import read_rows

PEAKS = ObservablesConfig.default().nmr.peaks


def _fit(rng: np.random.Generator, p, *, nan: float = 0.2) -> PeakFit:
    def val(x: float) -> float:
        return math.nan if rng.random() < nan else x

    lo, hi = p.window_ppm
    return PeakFit(center_ppm=val(p.expected_ppm + rng.normal(0, 0.6 * p.tolerance_ppm)), center_err_ppm=val(1e-4),
                   fwhm_hz=val(abs(rng.normal(3, 6))), fwhm_err_hz=val(0.1), area=val(rng.uniform(-1, 20)),
                   area_err=val(0.2), height=val(5.0), snr=val(rng.choice([3.0, 9.9, 10.0, 40.0])), redchi=1.0,
                   success=bool(rng.random() < 0.85), window=(lo, hi), n_points=50,
                   method="integral" if rng.random() < 0.2 else "fit",
                   warnings=tuple(rng.choice(["", "no peak above noise", "peak wider than half the window"], 1)[0:
                                  int(rng.integers(0, 2))]))


# --------------------------------------------------------------------------- columns, times


def test_peak_columns_are_peakfit_columns() -> None:
    rng = np.random.default_rng(0)
    for p in PEAKS:
        pf = _fit(rng, p, nan=0.0)
        assert dict(peak_columns(p.name, pf)) == pf.columns(p.name)
        assert list(dict(peak_columns(p.name, pf))) == list(pf.columns(p.name))  # same column order
    for source in (None, "", "/a/b/obs.toml", Path("c/d.toml")):
        assert cfg_note(source) == (f";cfg={Path(source).name}" if source else "")


@pytest.mark.parametrize("t", [datetime(2026, 1, 1, 0, 0, 50, 123456, tzinfo=timezone.utc),
                               datetime(2026, 1, 1, 2, 0, 50, tzinfo=timezone(timedelta(hours=2))),
                               datetime(2026, 1, 1, 0, 0, 50), None])
def test_time_stamps_as_tz_convert_gives_them(t: datetime | None) -> None:
    got = _ts(t)
    if t is None:
        assert got is pd.NaT
        return
    ts = pd.Timestamp(t)
    want = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    assert got == want and got.tzinfo is want.tzinfo and got.unit == want.unit and repr(got) == repr(want)


# --------------------------------------------------------------------------- assignment checks


def _old_ok(x):
    return x is not None and math.isfinite(x)


def _old_assignment(peaks, fits, offset, sfo1_hz, snr_check=10.0, area_factor=1.5, width_factor=3.0):
    """The checks of ingest.processing.assignment before issue 15, verbatim."""
    out = []
    for p in peaks:
        f = fits.get(p.name)
        if f is None or not _old_ok(f.center_ppm) or f.method == "integral" or not f.success:
            continue
        expect = p.expected_ppm + offset
        d = f.center_ppm - expect
        if abs(d) > p.tolerance_ppm:
            out.append(f"{p.name}: line at {f.center_ppm:.4f} ppm is {d:+.3f} ppm from the expected "
                       f"{expect:.4f} (tolerance {p.tolerance_ppm:.3f}): another line in this window? "
                       f"(recalibrate: flowcell calibrate)")
    got = []
    for p in peaks:
        f = fits.get(p.name)
        if f is not None and _old_ok(f.center_ppm) and f.method != "integral" and f.success:
            got.append((p.name, f.center_ppm, f.fwhm_hz if _old_ok(f.fwhm_hz) else None))
    mhz = sfo1_hz * 1e-6
    ws = [w for _, _, w in got if w is not None]
    if ws:
        cs = sorted(c for _, c, _ in got)
        if min((b - a for a, b in pairwise(cs)), default=math.inf) < max(0.5 * max(ws) / mhz, 1e-4):
            for i, (a, ca, wa) in enumerate(got):
                for b, cb, wb in got[i + 1:]:
                    w = wa if wb is None else wb if wa is None else max(wa, wb)
                    if w is not None and abs(ca - cb) < max(0.5 * w / mhz, 1e-4):
                        msg = f"same line as {{}} (both at {ca:.4f} ppm): overlapping windows"
                        out += [f"{a}: " + msg.format(b), f"{b}: " + msg.format(a)]
    groups: dict = {}
    for p in peaks:
        if not (p.species and p.n_h):
            continue
        f = fits.get(p.name)
        if f is not None and _old_ok(f.area) and _old_ok(f.snr) and f.snr >= snr_check:
            groups.setdefault(p.species, []).append((p, f))
    for species, members in groups.items():
        if len(members) < 2:
            continue
        per_h = sorted(f.area / p.n_h for p, f in members)
        med = per_h[len(per_h) // 2] if len(per_h) % 2 else 0.5 * (per_h[len(per_h) // 2 - 1] + per_h[len(per_h) // 2])
        wl = sorted(f.fwhm_hz for _, f in members if _old_ok(f.fwhm_hz))
        wmed = wl[len(wl) // 2] if wl else float("nan")
        for p, f in members:
            r = (f.area / p.n_h) / med if med > 0 else float("nan")
            if _old_ok(r) and not (1 / area_factor <= r <= area_factor):
                out.append(f"{p.name}: area per proton {r:.2f}x the {species} median: "
                           f"not a {p.n_h}H line of {species}, or overlapped")
            if _old_ok(f.fwhm_hz) and _old_ok(wmed) and wmed > 0 and f.fwhm_hz > width_factor * wmed:
                out.append(f"{p.name}: width {f.fwhm_hz:.1f} Hz is {f.fwhm_hz / wmed:.1f}x its {species} "
                           f"siblings' ({wmed:.1f} Hz)")
    return out


def test_assignment_warnings_as_before_on_random_fits() -> None:
    rng = np.random.default_rng(3)
    fired = 0
    for trial in range(300):
        fits = {p.name: _fit(rng, p) for p in PEAKS if rng.random() < 0.95}
        if trial % 5 == 0:  # two windows on one line
            a, b = PEAKS[1].name, PEAKS[2].name
            if a in fits and b in fits:
                fits[b] = replace(fits[b], center_ppm=fits[a].center_ppm, fwhm_hz=8.0, success=True, method="fit")
        offset = float(rng.choice([0.0, 0.03, -0.2]))
        want = _old_assignment(PEAKS, fits, offset, 400.13e6)
        assert assignment_warnings(PEAKS, fits, offset, sfo1_hz=400.13e6) == want
        fired += bool(want)
    assert fired > 100


# --------------------------------------------------------------------------- refine_widths


def test_refine_widths_picks_the_lines_broad_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The written-out first test passes exactly the lines ``_broad`` passes (widths at the
    threshold to the last ulp, the window-width warning, NaN)."""
    groups: list[list[str]] = []
    monkeypatch.setattr(widths, "_fit_group", lambda group, *a, **k: groups.append(group) or {})
    monkeypatch.setattr(widths, "_at_home", lambda *a, **k: False)
    rng = np.random.default_rng(7)
    sfo1, seen = 400.13e6, 0
    for _ in range(200):
        fits = {}
        for p in PEAKS:
            thr = widths.TRIGGER_FRACTION * abs(p.window_ppm[1] - p.window_ppm[0]) * sfo1 * 1e-6
            w = float(rng.choice([np.nextafter(thr, 0), thr, np.nextafter(thr, np.inf), 0.5 * thr, math.nan]))
            f = replace(_fit(rng, p, nan=0.0), fwhm_hz=w, method="fit")
            fits[p.name] = replace(f, center_ppm=p.expected_ppm) if rng.random() < 0.8 else f
        groups.clear()
        out = widths.refine_widths(fits, PEAKS, np.linspace(10, 0, 100), np.zeros(100), sfo1_hz=sfo1)
        want = [p.name for p in PEAKS if p.name in fits and widths._broad(p, fits[p.name], sfo1, 0.0)]
        assert sorted(n for g in groups for n in g) == sorted(want)
        assert out == fits
        seen += len(want)
    assert seen > 50


# --------------------------------------------------------------------------- recycled FID arrays


def test_recycled_arrays_reuse_only_what_nothing_holds(tmp_path: Path) -> None:
    d = tmp_path / "1"
    d.mkdir()
    rng = np.random.default_rng(1)
    words = rng.integers(-2**20, 2**20, 2048).astype("<i4")
    (d / "fid").write_bytes(words.tobytes())
    (d / "acqus").write_text("##TITLE= t\n##$BYTORDA= 0\n##$DATE= 1764000000\n##$DTYPA= 0\n##$NC= -2\n##$NS= 1\n"
                             "##$SFO1= 400.13\n##$SW_h= 8000\n##$TD= 2048\n##END=\n", encoding="latin-1")
    truth = (words[0::2] + 1j * words[1::2]) * 0.25

    def ptr(s):
        return s.fid.__array_interface__["data"][0]

    with bruker_words.recycled_arrays():
        (a,), (b,) = read_rows(d), read_rows(d)
        assert ptr(a) != ptr(b)  # both held: two arrays
        pb = ptr(b)
        del b
        (c,) = read_rows(d)
        assert ptr(c) == pb  # b dropped: its memory reused
        view = c.fid[3:9]
        del c
        (e,) = read_rows(d)
        assert not np.shares_memory(e.fid, view)  # a view keeps its array out of reuse
        for s in (a, e):
            assert s.fid.tobytes() == truth.tobytes()
        assert view.tobytes() == truth[3:9].tobytes()
    (f,), (g,) = read_rows(d), read_rows(d)
    assert getattr(bruker_words._POOL, "arrays", None) is None and ptr(f) != ptr(g)
