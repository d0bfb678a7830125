"""Writer for Bruker BES3T (.DSC/.DTA) CW EPR files, for simulation and round trips.

The layout follows what Xepr writes (docs/physics.md §5.4): a ``#DESC`` layer
(``BSEQ``, ``IKKF REAL``, ``IRFMT D``, ``XTYP IDX``, ``XPTS/XMIN/XWID`` in G),
a ``#SPL`` layer (``MWFQ`` Hz, ``MWPW`` W, ``B0MA`` T, ``RCAG`` dB, ``SPTP`` s,
``RCTC`` s, ``AVGS``, ``STMP`` K, ``DATE``/``TIME`` = end of acquisition,
MM/DD/YY, UTC) and a ``#DSL`` layer with the usual ``signalChannel``,
``mwBridge``, ``recorder`` devices plus a ``.DVC flowcell`` block holding the
exact ISO 8601 start and end (other BES3T readers ignore unknown devices).
A 2D set (``y_axis``: one sweep per row, time in s since ``start``) is written
with ``YTYP IGD`` and a ``.YGF`` file.

The .DSC is written first, then the .YGF (2D only), then the .DTA in one
``write`` call: a watcher that reacts to the .DTA finds a complete descriptor.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from ingest.types import as_utc

__all__ = ["write_bes3t"]




def write_bes3t(
    base_path: str | Path,
    field_T: np.ndarray,
    intensity: np.ndarray,
    *,
    mw_freq_hz: float,
    mw_power_W: float,
    mod_amp_T: float,
    receiver_gain_db: float,
    conversion_time_s: float,
    n_scans: int,
    temperature_K: float,
    start: datetime,
    end: datetime,
    time_constant_s: float | None = None,
    byte_order: str = "big",
    y_axis: np.ndarray | None = None,
    mod_freq_hz: float = 100e3,
    scans_normalised: bool = True,
    title: str = "flowcell simulated CW EPR",
) -> tuple[Path, Path]:
    """Write a CW EPR field sweep (or a time series of sweeps) as BES3T.

    Parameters
    ----------
    base_path : str or Path
        Path without extension (an extension .DSC/.DTA is stripped).
    field_T : ndarray, shape (n,)
        Field axis, T; must be evenly spaced (XTYP IDX).
    intensity : ndarray, shape (n,) or (m, n)
        First-harmonic signal, arbitrary units; 2D needs ``y_axis``.
    mw_freq_hz : float
        Microwave frequency, Hz.
    mw_power_W : float
        Microwave power, W.
    mod_amp_T : float
        Modulation amplitude, T.
    receiver_gain_db : float
        Receiver gain, dB (written as ``RCAG`` and DSL ``Gain .. dB``).
    conversion_time_s : float
        Conversion time per point, s.
    n_scans : int
        Number of scans (``AVGS``, ``NbScansDone``).
    temperature_K : float
        Sample temperature, K (``STMP``, DSL ``Temperature``).
    start, end : datetime
        Acquisition start and end (naive = UTC).
    time_constant_s : float, optional
        Time constant, s; default ``conversion_time_s / 4``.
    byte_order : {'big', 'little'}
        ``BSEQ BIG`` (Xepr) or ``LIT`` (ESR5000).
    y_axis : ndarray, shape (m,), optional
        Start time of each row, s since ``start`` (2D sets).
    mod_freq_hz : float
        Modulation frequency, Hz.
    scans_normalised : bool
        Value of DSL ``SctNorm`` (True: the data are scan averages).
    title : str

    Returns
    -------
    (dsc_path, dta_path) : tuple of Path
    """
    base = Path(base_path)
    if base.suffix.lower() in (".dsc", ".dta"):
        base = base.with_suffix("")
    field_T = np.asarray(field_T, float)
    data = np.asarray(intensity, float)
    if field_T.ndim != 1 or field_T.size < 2:
        raise ValueError("field_T must be 1D with at least 2 points")
    n = field_T.size
    if data.ndim == 1:
        if data.size != n:
            raise ValueError(f"intensity has {data.size} points, field_T {n}")
        m = 1
    elif data.ndim == 2:
        if data.shape[1] != n:
            raise ValueError(f"intensity rows have {data.shape[1]} points, field_T {n}")
        if y_axis is None or len(y_axis) != data.shape[0]:
            raise ValueError("a 2D intensity needs y_axis with one value per row")
        m = data.shape[0]
    else:
        raise ValueError("intensity must be 1D or 2D")
    step = np.diff(field_T)
    if not np.allclose(step, step[0], rtol=1e-9, atol=1e-15):
        raise ValueError("field_T must be evenly spaced (BES3T XTYP IDX)")
    if byte_order not in ("big", "little"):
        raise ValueError("byte_order must be 'big' or 'little'")
    order = ">" if byte_order == "big" else "<"
    tc = conversion_time_s / 4.0 if time_constant_s is None else time_constant_s
    start_u, end_u = as_utc(start), as_utc(end)
    xmin_G = field_T[0] * 1e4
    xwid_G = (field_T[-1] - field_T[0]) * 1e4
    power_mW = mw_power_W * 1e3

    desc = [
        "#DESC\t1.2 * DESCRIPTOR INFORMATION ***********************",
        "*",
        "*\tDataset Type and Format:",
        "*",
        "DSRC\tEXP",
        f"BSEQ\t{'BIG' if byte_order == 'big' else 'LIT'}",
        "IKKF\tREAL",
        "XTYP\tIDX",
        f"YTYP\t{'IGD' if m > 1 or data.ndim == 2 else 'NODATA'}",
        "ZTYP\tNODATA",
        "*",
        "*\tItem Formats:",
        "*",
        "IRFMT\tD",
    ]
    if data.ndim == 2:
        desc.append("YFMT\tD")
    desc += [
        "*",
        "*\tData Ranges and Resolutions:",
        "*",
        f"XPTS\t{n}",
        f"XMIN\t{xmin_G:.9f}",
        f"XWID\t{xwid_G:.9f}",
    ]
    if data.ndim == 2:
        y = np.asarray(y_axis, float)
        desc += [f"YPTS\t{m}", f"YMIN\t{y[0]:.9f}", f"YWID\t{y[-1] - y[0]:.9f}"]
    desc += [
        "*",
        "*\tDocumentational Text:",
        "*",
        f"TITL\t'{title}'",
        "IRNAM\t'1st Harm Absorption'",
        "XNAM\t'Field'",
        "IRUNI\t''",
        "XUNI\t'G'",
    ]
    if data.ndim == 2:
        desc += ["YNAM\t'Time'", "YUNI\t's'"]
    desc += ["*", "************************************************************", "*"]
    spl = [
        "#SPL\t1.2 * STANDARD PARAMETER LAYER",
        "*",
        "OPER    flowcell",
        f"DATE    {end_u:%m/%d/%y}",
        f"TIME    {end_u:%H:%M:%S}",
        "CMNT    ",
        "SAMP    ",
        "SFOR    ",
        "STAG    C",
        "EXPT    CW",
        "OXS1    IADC",
        "AXS1    B0VL",
        f"AXS2    {'ETIM' if data.ndim == 2 else 'NONE'}",
        "AXS3    ",
        f"A1CT    {(field_T[0] + field_T[-1]) / 2:.9g}",
        f"A1SW    {field_T[-1] - field_T[0]:.9g}",
        f"MWFQ    {mw_freq_hz:.10g}",
        f"MWPW    {mw_power_W:.6g}",
        f"AVGS    {int(n_scans)}",
        f"SPTP    {conversion_time_s:.9g}",
        f"RCAG    {receiver_gain_db:.6g}",
        "RCHM    1",
        f"B0MA    {mod_amp_T:.9g}",
        f"B0MF    {mod_freq_hz:.9g}",
        "RCPH    0.0",
        "RCOF    0.0",
        f"A1RS    {n}",
        f"RCTC    {tc:.9g}",
        f"STMP    {temperature_K:.6g}",
        "*",
        "************************************************************",
        "*",
    ]
    dsl = [
        "#DSL\t1.0 * DEVICE SPECIFIC LAYER",
        "*",
        "",
        ".DVC     acqStart, 1.0",
        "",
        "",
        ".DVC     fieldCtrl, 1.0",
        "",
        f"CenterField        {(xmin_G + xwid_G / 2):.3f} G",
        "SweepDirection     Up",
        f"SweepWidth         {xwid_G:.3f} G",
        "",
        ".DVC     mwBridge, 1.0",
        "",
        f"Power              {power_mW:.6g} mW",
        "",
        ".DVC     recorder, 1.0",
        "",
        f"NbScansAcc         {int(n_scans)}",
        f"NbScansDone        {int(n_scans)}",
        f"NbScansToDo        {int(n_scans)}",
        "",
        ".DVC     signalChannel, 1.0",
        "",
        f"ConvTime           {conversion_time_s * 1e3:.6g} ms",
        f"Gain               {receiver_gain_db:.6g} dB",
        "Harmonic           1",
        f"ModAmp             {mod_amp_T * 1e4:.6g} G",
        f"ModFreq            {mod_freq_hz / 1e3:.6g} kHz",
        f"Resolution         {n}",
        f"SctNorm            {'True' if scans_normalised else 'False'}",
        f"SweepTime          {conversion_time_s * n:.6g} s",
        f"TimeConst          {tc * 1e3:.6g} ms",
        "",
        ".DVC     tempCtrl, 1.0",
        "",
        f"Temperature        {temperature_K:.6g} K",
        "",
        ".DVC     flowcell, 1.0",
        "",
        f"AcqStart           {start_u.isoformat()}",
        f"AcqEnd             {end_u.isoformat()}",
        "",
        "*",
        "************************************************************",
        "",
    ]
    dsc_path = base.with_name(base.name + ".DSC")
    dta_path = base.with_name(base.name + ".DTA")
    dsc_path.parent.mkdir(parents=True, exist_ok=True)
    dsc_path.write_bytes("\n".join(desc + spl + dsl).encode("latin-1"))
    if data.ndim == 2:
        ygf = base.with_name(base.name + ".YGF")
        ygf.write_bytes(np.asarray(y_axis, dtype=order + "f8").tobytes())
    with open(dta_path, "wb") as fh:
        fh.write(np.ascontiguousarray(data, dtype=order + "f8").tobytes())
    return dsc_path, dta_path
