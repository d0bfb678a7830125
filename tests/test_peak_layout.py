"""The simulator, the observation model and the ingest windows must agree on where lines are.

The quinone shifts are ASSUMED placeholders (docs/physics.md §1.4, §1.6 give none), defined once
in ``ingest.processing.lines`` and read by ``kinetics.observe.DHAQ_PEAKS`` (model), the simulator
(``flowcell.simulate.settings``) and ``ingest/data/dhaq_observables.toml`` (extraction windows,
generated from the table). A line placed in the wrong window biases an area or a shift silently,
so the layout is checked here.
"""

from __future__ import annotations

from flowcell.simulate.simulator import ANTHRONE_LINES
from ingest.processing.lines import line, lines_for
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
    for lname, ppm in lines.items():
        for wname, (lo, hi) in win.items():
            if wname != lname:
                assert not lo <= ppm <= hi, f"{lname} at {ppm} ppm lies in the {wname} window {lo}-{hi}"


def test_default_windows_are_generated_from_the_line_table() -> None:
    from ingest.processing.calibrate import default_observables

    shipped = ObservablesConfig.default().nmr
    generated = default_observables("DHAQ", shipped)
    keys = ("name", "window_ppm", "n_h", "species", "ppm", "tol_ppm", "optional", "method")
    assert [tuple(getattr(p, k) for k in keys) for p in shipped.peaks] == \
        [tuple(getattr(p, k) for k in keys) for p in generated.peaks]
    assert shipped.follow == "hdo" and shipped.follow_ppm == line("hdo").ppm


def test_model_and_simulator_read_the_line_table() -> None:
    from flowcell.simulate.settings import IMPURITY_LINES

    for pk in DHAQ_PEAKS.values():
        assert pk.delta_O_ppm == line(pk.name_O).ppm and pk.delta_H_ppm == line(pk.name_H).ppm
    for name, (ppm, nh) in ANTHRONE_LINES.items():
        assert (ppm, nh) == (line(name).ppm, line(name).n_h)
    for name, (ppm, nh, _c) in IMPURITY_LINES.items():
        assert (ppm, nh) == (line(name).ppm, line(name).n_h)


def test_every_table_line_sits_in_its_own_window_only() -> None:
    win = _windows()
    for ln in lines_for("DHAQ"):
        lo, hi = win[ln.name]
        assert lo < ln.ppm < hi
        for other, (a, b) in win.items():
            if other not in (ln.name, "hdo"):
                assert not a <= ln.ppm <= b or other == ln.name, (ln.name, other)
