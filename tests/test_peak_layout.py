"""The simulator, the observation model and the ingest windows must agree on where lines are.

The quinone shifts are ASSUMED placeholders (docs/physics.md §1.4, §1.6 give none), held in
two places: ``kinetics.observe.DHAQ_PEAKS`` (model) and ``ingest/data/dhaq_observables.toml``
(extraction windows). A line placed in the wrong window biases an area or a shift silently,
so the layout is checked here.
"""

from __future__ import annotations

from flowcell.simulate.simulator import ANTHRONE_LINES
from ingest.processing.observables import ObservablesConfig
from kinetics.observe import DHAQ_PEAKS


def _windows() -> dict[str, tuple[float, float]]:
    return {p.name: tuple(sorted(p.window_ppm)) for p in ObservablesConfig.default().nmr.peaks}


def test_oxidised_lines_sit_inside_their_own_windows() -> None:
    win = _windows()
    for pk in DHAQ_PEAKS.values():
        lo, hi = win[pk.name_O]
        assert lo < pk.delta_O_ppm < hi, (pk.name_O, pk.delta_O_ppm, (lo, hi))
    for name, (ppm, _nh) in ANTHRONE_LINES.items():
        lo, hi = win[name]
        assert lo < ppm < hi, (name, ppm, (lo, hi))


def test_no_line_falls_into_another_species_window() -> None:
    win = _windows()
    lines = {pk.name_O: pk.delta_O_ppm for pk in DHAQ_PEAKS.values()}
    lines |= {pk.name_H: pk.delta_H_ppm for pk in DHAQ_PEAKS.values()}
    lines |= {name: ppm for name, (ppm, _nh) in ANTHRONE_LINES.items()}
    for line, ppm in lines.items():
        for wname, (lo, hi) in win.items():
            if wname != line:
                assert not lo <= ppm <= hi, f"{line} at {ppm} ppm lies in the {wname} window {lo}-{hi}"
