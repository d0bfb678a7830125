"""The public API: curated ``__all__`` with real names, one version, ``ingest.process``.

Known truths: the vendor's own processed spectrum of a real Bruker acquisition
(``nmr/bruker-array/12/pdata/1/1r``, TopSpin's FT, phase and referencing): after
referencing our spectrum to the vendor's tallest line, the other strong lines must fall
where TopSpin put them; the package metadata's version; and the EPR double integral of
a real BES3T file computed by the documented function.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import find_peaks

import flowcell
import ingest
import kinetics
from ingest.processing.epr import double_integral

DIST = "flowcell-rfb"


@pytest.mark.parametrize("pkg", [flowcell, ingest, kinetics], ids=lambda m: m.__name__)
def test_every_public_name_exists_and_is_listed(pkg):
    assert pkg.__all__ and len(set(pkg.__all__)) == len(pkg.__all__)
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None, name
        assert name in dir(pkg), name


def test_required_names():
    assert callable(ingest.read) and callable(ingest.process) and callable(flowcell.read_potentiostat)
    assert flowcell.read_potentiostat.__module__.startswith("flowcell.potentiostat")


def test_one_version_from_the_metadata():
    v = importlib.metadata.version(DIST)
    assert flowcell.__version__ == ingest.__version__ == kinetics.__version__ == v
    out = subprocess.run([sys.executable, "-m", "flowcell", "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"flowcell {v}"


def test_import_flowcell_and_its_cli_stays_light():
    code = ("import sys, flowcell, flowcell.cli; heavy = [m for m in ('numpy', 'pandas', 'scipy', 'sympy') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _strong_lines(ppm: np.ndarray, y: np.ndarray, n: int = 4) -> np.ndarray:
    pk, _ = find_peaks(y, height=0.05 * y.max(), distance=50)
    return np.sort(ppm[pk[np.argsort(y[pk])[::-1][:n]]])


def test_process_nmr_lands_on_the_vendors_lines(shared_data):
    spec = ingest.read(shared_data / "nmr" / "bruker-array" / "12")
    assert spec.processed is not None
    vendor = _strong_lines(spec.processed_ppm, spec.processed)
    top = spec.processed_ppm[np.argmax(spec.processed)]
    proc = ingest.process(spec, reference={"window": (top - 0.05, top + 0.05), "ppm": float(top)})
    assert proc.ppm.shape == proc.real.shape and np.all(np.diff(proc.ppm) < 0)
    ours = _strong_lines(proc.ppm, proc.real)
    step = abs(proc.ppm[1] - proc.ppm[0])
    np.testing.assert_allclose(ours, vendor, atol=2 * step)  # four lines, TopSpin's positions
    plain = ingest.process(spec)  # no referencing: the raw axis, shifted by exactly the offset
    np.testing.assert_allclose(proc.ppm, plain.ppm + proc.reference_offset_ppm, atol=1e-9)


def test_process_epr_is_the_double_integral(shared_data):
    spec = ingest.read(shared_data / "epr" / "bes3t-BDPA-1DFieldSweep.DTA")
    di = ingest.process(spec, baseline_fraction=0.15)
    ref = double_integral(spec.field_T, spec.intensity, baseline_fraction=0.15)
    assert di.value == ref.value and di.value > 0
    assert np.all(np.diff(di.field_mT) > 0)


def test_process_rejects_what_it_cannot_process():
    with pytest.raises(ingest.IngestError, match="NMRSpectrum or EPRSpectrum"):
        ingest.process(np.zeros(4))
