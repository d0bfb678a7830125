"""Row helpers of the batch engine (:class:`ingest.processing.batch_nmr.BatchExtractor`).

* :func:`window_offsets`: the window offset of every spectrum of a batch (the followed line's
  measured position minus its expected one, ``[nmr] follow``), the numbers of
  :func:`ingest.processing.observables.window_offset`, one argmax for the batch;
* :func:`integral_baseline`: the local baseline the per-spectrum path gives an integral window
  (whether the batch's windowed integrals apply).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ingest.processing.lorentz_batch import window_slices
from ingest.processing.nmr import ProcessedNMR

__all__ = ["integral_baseline", "window_offsets"]


def integral_baseline(p: Any, proc: ProcessedNMR) -> str:
    """The local baseline :func:`ingest.processing.observables._peak_fit` gives an integral window."""
    if p.baseline != "auto":
        return str(p.baseline)
    full = proc.baseline is not None and proc.params.get("baseline") == f"poly{proc.params.get('order')}"
    return "none" if full else "linear"


def window_offsets(nmr: Any, procs: list[ProcessedNMR], real: np.ndarray, shared: bool) -> list[float]:
    """:func:`ingest.processing.observables.window_offset` of every spectrum of a batch (rows of
    ``real``) whose processed spectra are ``procs``, for the ``[nmr]`` configuration ``nmr``; with
    ``shared`` (one axis for all), one argmax over the batch."""
    if not nmr.follow:
        return [0.0] * len(procs)
    pk = nmr.peak(nmr.follow)
    exp = nmr.follow_ppm if nmr.follow_ppm is not None else pk.expected_ppm
    win = [tuple(sorted(pk.window_ppm))]
    out = []
    i0 = i1 = 0
    top = None  # shared: every spectrum's maximum by one argmax over the batch
    if shared and procs:
        (i0, i1), = window_slices(procs[0].ppm, win)
        if i1 - i0 >= 3:
            top = (real[:len(procs), i0:i1].argmax(axis=1) + i0).tolist()
    for j, pr in enumerate(procs):
        if not shared:
            (i0, i1), = window_slices(pr.ppm, win)
        if i1 - i0 < 3:
            out.append(0.0)
            continue
        y, x = real[j], pr.ppm
        i = top[j] if top is not None else i0 + int(y[i0:i1].argmax())
        if i <= 0 or i >= y.size - 1:
            found = float(x[i])
        else:
            a, b, c = y[i - 1], y[i], y[i + 1]
            den = a - 2 * b + c
            # np.clip's value (NaN stays NaN) without its call overhead (~5 us a spectrum)
            d = float(min(max(0.5 * (a - c) / den if den != 0 else 0.0, -0.5), 0.5))
            found = float(x[i] + d * (x[i + 1] - x[i - 1]) / 2.0)
        out.append(float(found - exp) if math.isfinite(found) else 0.0)
    return out
