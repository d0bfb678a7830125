"""CW EPR readers, one module per vendor format (this module gathers their names).

========================  ====================================================
module                    format
========================  ====================================================
:mod:`.bes3t`             Bruker Xepr/Xenon BES3T (.DSC + .DTA), also ESR5000 exports
:mod:`.esp`               Bruker ESP / WinEPR (.par + .spc)
:mod:`.magnettech`        Magnettech / Bruker ESR5000 XML
:mod:`.csv_epr`           two-column CSV/TXT exports
:mod:`.epr_common`        unit tables, :func:`split_rows`, :func:`gain_db_to_linear`
========================  ====================================================

Every reader returns an :class:`ingest.types.EPRSpectrum` (field in T,
intensity as stored, meta in SI) and keeps the contract of
:mod:`ingest.readers.checks`.  Formats: docs/physics.md §5.4-5.6.
"""

from __future__ import annotations

from ingest.readers.bes3t import parse_dsc, read_bes3t
from ingest.readers.csv_epr import read_epr_csv
from ingest.readers.epr_common import gain_db_to_linear, split_rows
from ingest.readers.esp import read_esp
from ingest.readers.magnettech import read_magnettech

__all__ = [
    "gain_db_to_linear",
    "parse_dsc",
    "read_bes3t",
    "read_epr_csv",
    "read_esp",
    "read_magnettech",
    "split_rows",
]
