"""Simulator, cycling protocol and synthetic spectra (flowcell.simulate.simulator/protocol/spectra).

Truths used: the constant-current coulomb relation SOC(t) = SOC0 + I t/(2 F C V)
(docs/physics.md §2.3), the Nernst cell voltage at the cut-off (§1.2), the Lorentzian FID
area and position, the exact EPR double integral B_m x area for any modulation
(§1.5, §4b row 7), and round trips through the real vendor writers and readers.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pytest

from flowcell.simulate.protocol import (
    F,
    CellVoltageModel,
    Protocol,
    ProtocolError,
    Step,
    radical_fraction,
)
from flowcell.simulate.spectra import (
    NMRLine,
    epr_first_harmonic,
    epr_resonance_field_T,
    epr_sweep,
    lorentzian_absorption,
    nmr_fid,
)

C, V = 0.1, 0.01  # mol/L, L
CAP = 2 * F * C * V  # C per unit SOC


# ----------------------------------------------------------------------------- protocol
def test_parse_protocol_text_units_and_limits():
    p = Protocol.parse("rest 5 min; cc +30 mA until 1.45 V max 2 h; cc -0.03 A until soc 0.1")
    assert [s.kind for s in p.steps] == ["rest", "cc", "cc"]
    assert p.steps[0].duration_s == 300.0
    assert p.steps[1].current_A == pytest.approx(0.03)
    assert p.steps[1].v_limit_V == 1.45 and p.steps[1].duration_s == 7200.0
    assert p.steps[2].soc_limit == 0.1 and p.steps[2].current_A == -0.03
    # describe() is parseable and gives the same steps
    assert Protocol.parse(p.describe()).steps == p.steps


@pytest.mark.parametrize("bad", ["", "charge 3 A", "cc 3 parsecs", "rest five min", "cc 0 A"])
def test_protocol_errors_name_the_step(bad):
    with pytest.raises(ProtocolError):
        Protocol.parse(bad)


def test_soc_limit_time_is_coulombic():
    """cc until SOC 0.8 ends at t = 0.8 * 2FCV / I exactly (docs/physics.md §2.3)."""
    I = 0.05
    sched = Protocol([Step("cc", I, 1e5, soc_limit=0.8), Step("rest", 0.0, 600)]).resolve(
        C_tot_M=C, volume_L=V, Kc=0.1)
    assert sched.t_edges_s[1] == pytest.approx(0.8 * CAP / I, rel=1e-12)
    assert sched.end_reason == ["soc", "duration"]
    # exact charge integral of the piecewise-constant current
    assert sched.charge_C(sched.total_s) == pytest.approx(0.8 * CAP, rel=1e-12)
    assert sched(sched.t_edges_s[1] + 1) == 0.0


def test_voltage_cutoff_hits_the_nernst_limit():
    """The charge stops where E_pos - E_mid - RT/2F ln(O/H) + IR equals the limit (§1.2)."""
    vm = CellVoltageModel()
    I, K, vlim = 0.04, 0.1, 1.30
    p = Protocol([Step("cc", I, 1e5, v_limit_V=vlim)], vm)
    sched = p.resolve(C_tot_M=C, volume_L=V, Kc=K)
    assert sched.end_reason == ["voltage"]
    x = I * sched.t_edges_s[1] / CAP
    fR = radical_fraction(x, K)
    O, H = C * (1 - x - fR / 2), C * (x - fR / 2)
    e = vm.E_pos_V - (vm.E_mid_V + 8.314462618 * vm.T_K / (2 * F) * math.log(O / H)) + I * vm.R_cell_ohm
    assert e == pytest.approx(vlim, abs=2e-5)  # brentq xtol 1e-3 s


def test_eps_H_lengthens_the_charge():
    sched = Protocol([Step("cc", 0.05, 1e5, soc_limit=0.5)]).resolve(C_tot_M=C, volume_L=V, eps_H=0.1)
    assert sched.t_edges_s[1] == pytest.approx(0.5 * CAP / (0.05 * 0.9), rel=1e-12)


# ----------------------------------------------------------------------------- spectra
def test_nmr_fid_line_position_and_area():
    """One Lorentzian: FFT peak at the right ppm (Bruker sign), DFT sum = amplitude * n."""
    sw, sfo1, car, n = 5000.0, 400.13e6, 4.7, 8192
    fid = nmr_fid([NMRLine(7.3, 2.0, 3.0)], n=n, sw_hz=sw, sfo1_hz=sfo1, carrier_ppm=car)
    spec = np.fft.fftshift(np.fft.fft(fid))
    freq = (np.arange(n) - n // 2) * sw / n
    ppm = car + freq / (sfo1 * 1e-6)
    assert ppm[np.argmax(spec.real)] == pytest.approx(7.3, abs=sw / n / (sfo1 * 1e-6))
    # area of a line = sum over the DFT points / n * ... : sum(spec) = n * fid[0]
    assert spec.sum().real / n == pytest.approx(3.0, rel=1e-12)


def test_nmr_fid_noise_is_seeded_and_scaled():
    a = nmr_fid([], n=4096, sw_hz=4000, sfo1_hz=4e8, carrier_ppm=4.7, noise_sd=2.0,
                rng=np.random.default_rng(5))
    b = nmr_fid([], n=4096, sw_hz=4000, sfo1_hz=4e8, carrier_ppm=4.7, noise_sd=2.0,
                rng=np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert a.real.std() == pytest.approx(2.0, rel=0.05)  # 4096 samples: ~1.1 % sd of the sd


@pytest.mark.parametrize("mod_over_dbpp", [0.05, 1.0, 3.0])
def test_epr_double_integral_is_mod_amp_times_area(mod_over_dbpp):
    """docs/physics.md §1.5 / §4b row 7: the DI is B_m x area for any modulation amplitude."""
    g, nu = 2.0046, 9.4e9
    B0 = epr_resonance_field_T(g, nu)
    dbpp = 1.0e-4
    hw = math.sqrt(3) / 2 * dbpp
    B = epr_sweep(B0, 400 * hw, 40001)  # +-200 HWHM: the wings outside hold 0.32 %
    bm = mod_over_dbpp * dbpp
    y = epr_first_harmonic(B, B0, dbpp, 2.5, bm)
    dB = B[1] - B[0]
    di = np.sum(np.cumsum(y) * dB) * dB
    # +-n HWHM (n = 200) keeps (2/pi) arctan(n) of the area (docs/physics.md §1.5 caveat 3); integrating
    # from the sweep start also subtracts the absorption there times the width, 2n/(pi (n^2+1))
    n = 200
    expect = 2 / math.pi * math.atan(n) - 2 * n / (math.pi * (n * n + 1))
    assert di / (bm * 2.5) == pytest.approx(expect, rel=1e-4)
    if mod_over_dbpp <= 0.05:  # small modulation: the derivative of the absorption
        deriv = np.gradient(lorentzian_absorption(B, B0, hw, 2.5), B) * bm
        assert np.max(np.abs(y - deriv)) / np.max(np.abs(deriv)) < 2e-3


def test_resonance_field_g_value():
    B = epr_resonance_field_T(2.0023, 9.5e9)
    assert 6.62607015e-34 * 9.5e9 / (9.2740100783e-24 * B) == pytest.approx(2.0023, rel=1e-12)


# ----------------------------------------------------------------------------- simulator
@pytest.fixture(scope="module")
def small_sim(tmp_path_factory):
    """A 40-min rest/charge/rest experiment, 4k-point FIDs, written at once."""
    pytest.importorskip("kinetics.library")
    from kinetics import library

    from flowcell.demo import load_demo_config
    from flowcell.simulate.simulator import ExperimentSimulator, NMRSettings
    cfg = load_demo_config()
    model = library.dhaq().compile()
    I = 0.04
    prot = Protocol([Step("rest", 0.0, 360), Step("cc", I, 1500), Step("rest", 0.0, 600)])
    out = tmp_path_factory.mktemp("sim")
    sim = ExperimentSimulator(cfg, prot, model, out, params={"k_dec": 0.0, "J_e": 0.0, "eps_H": 0.0},
                              interval_s=240.0, seed=3,
                              nmr=NMRSettings(td=4096, sw_hz=6410.0, ns=1),
                              start=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    tr = sim.prepare()
    sim.write()
    return sim, tr, out, I


def test_truth_soc_follows_coulomb_counting(small_sim):
    """No side reactions: the model SOC equals SOC0 + I t/(2FCV) (docs/physics.md §2.3)."""
    sim, tr, out, I = small_sim
    t = tr.t_s
    expect = np.clip(t - 360, 0, 1500) * I / CAP
    assert np.max(np.abs(tr.soc - expect)) < 1e-6
    assert np.max(np.abs(tr.soc_coulomb - expect)) < 1e-12


def test_files_written_and_readable(small_sim):
    from ingest.readers.dispatch import read_rows
    from flowcell.potentiostat import read_potentiostat
    sim, tr, out, I = small_sim
    nmr = sorted((out / "nmr").iterdir(), key=lambda p: int(p.name))
    epr = sorted((out / "epr").glob("*.DTA"))
    assert len(nmr) == (tr.spectra.kind == "nmr").sum() and len(epr) == (tr.spectra.kind == "epr").sum()
    s = read_rows(nmr[0])[0]
    assert s.meta.sfo1_hz == pytest.approx(400.13e6) and s.meta.td == 4096
    assert s.meta.start == tr.spectra[tr.spectra.kind == "nmr"].time_start.iloc[0].to_pydatetime()
    e = read_rows(epr[0])[0]
    assert e.meta.mw_freq_hz == pytest.approx(9.4e9) and e.meta.mod_amp_T == pytest.approx(5e-5)
    pot = read_potentiostat(out / "potentiostat.csv")
    assert pot.attrs["start"] == tr.start
    assert pot["t_s"].iloc[-1] == pytest.approx(tr.schedule.total_s)
    # the log's current is the protocol's
    # ... as the mean over the interval ending at each row (exact right-hand coulomb count)
    tp = pot["t_s"].to_numpy()
    assert np.all(np.diff(tp) > 0), "a potentiostat logs strictly increasing times"
    assert np.allclose(pot["I_A"][1:], np.diff(tr.schedule.charge_C(tp)) / np.diff(tp))
    assert np.allclose(pot["Q_C"], tr.schedule.charge_C(tp) - tr.schedule.charge_C(tp[0]), rtol=1e-6, atol=1e-9)
    assert (out / "experiment.toml").exists() and (out / "truth" / "truth.json").exists()


def test_observables_recovered_through_ingest(small_sim):
    """Water shift within 2e-4 ppm and EPR [R] within 2 % (+0.05 mM) of the truth, via the
    real readers, the Extractor and the EPR calibration the simulator measured on its standard."""
    from ingest.processing.observables import Extractor
    from ingest.readers.dispatch import read_rows

    from flowcell.config import ExperimentConfig
    from flowcell.fit.pipeline import observables_config
    sim, tr, out, I = small_sim
    cfg = ExperimentConfig.from_toml(out / "experiment.toml")
    assert cfg.epr_calibration is not None and cfg.epr_calibration.di_norm > 0
    ex = Extractor(observables_config(cfg))
    for _, r in tr.spectra.iterrows():
        row = ex(read_rows(r["path"])[0])
        if r["kind"] == "nmr":
            assert row["hdo_shift_ppm"] == pytest.approx(r["hdo_shift_ppm"], abs=2e-4)
        else:
            assert row["epr_spin_conc_M"] == pytest.approx(r["R_M"], rel=0.02, abs=5e-5)


def test_outlet_leads_the_tank_by_one_pass(small_sim):
    """During the charge the fluid seen is ahead of the tank by I/(2FCQ) (docs/physics.md §1.1)."""
    sim, tr, out, I = small_sim
    Q = sim.cfg.flow.rate_mL_min / 60e3
    sp = tr.spectra
    on = sp[(sp.current_A > 0)]
    assert len(on) >= 2
    tank_at_fluid = np.interp(on.t_fluid_s, tr.t_s, tr.soc)
    assert np.allclose(on.soc_seen - tank_at_fluid, I / (2 * F * C * Q), atol=1e-6)


def test_realtime_writing_keeps_the_clock(tmp_path):
    pytest.importorskip("kinetics.library")
    import time

    from kinetics import library

    from flowcell.demo import load_demo_config
    from flowcell.simulate.simulator import ExperimentSimulator, NMRSettings
    cfg = load_demo_config()
    prot = Protocol([Step("rest", 0.0, 300), Step("cc", 0.03, 300)])
    sim = ExperimentSimulator(cfg, prot, library.dhaq().compile(), tmp_path, interval_s=120, seed=1,
                              nmr=NMRSettings(td=2048, ns=1))
    tr = sim.prepare()
    seen = []
    t0 = time.monotonic()
    sim.write(realtime_speedup=300.0, on_file=lambda k, p: seen.append((time.monotonic() - t0, k)))
    ends = tr.spectra.t_end_s.to_numpy() / 300.0
    got = np.array([s[0] for s in seen])
    assert [s[1] for s in seen] == list(tr.spectra.kind)
    assert np.all(got >= ends - 0.05)  # never early
    assert got[-1] < ends[-1] + 5.0  # and not much late (generous: shared CI machines)


def test_potentiostat_rows_strictly_increasing_at_step_boundary():
    """A step boundary held twice on the truth grid (old step's last point, new step's first,
    equal to the written millisecond) gives one row, and the right-hand count is unchanged."""
    from flowcell.simulate.files import potentiostat_rows

    t = np.array([0.0, 10.0, 20.0, 20.0 + 1e-9, 30.0])
    current = np.array([0.0, 0.0, 0.0, -0.5, -0.5])
    text = potentiostat_rows(t, current, np.ones(5), -1.0, 30.0)
    rows = np.array([[float(x) for x in line.split(",")] for line in text.splitlines()])
    assert rows[:, 0].tolist() == [0.0, 10.0, 20.0, 30.0]
    assert np.sum(rows[1:, 1] * np.diff(rows[:, 0])) == pytest.approx(-5.0)
