"""Potentiostat logs: readers, exact coulomb counting and live tailing.

Readers (every one returns the same table, see :func:`read_potentiostat`)
-------------------------------------------------------------------------
* :func:`read_potentiostat` -- any log, from the suffix.
* :func:`read_mpr` -- BioLogic EC-Lab binary ``.mpr`` (galvani; ``flowcell-rfb[eclab]``).
* :func:`read_mpt` -- BioLogic EC-Lab ``.mpt`` text export.
* :func:`read_potentiostat_csv` -- plain CSV with named columns and units.

Counting (:mod:`flowcell.potentiostat.coulomb`)
-----------------------------------------------
``I_A`` is the mean current over the interval ending at each row, so
``Q_k = Q_{k-1} + I_k (t_k - t_{k-1})`` is exact (:func:`coulomb_count`); which column of
a file gives that mean is in :mod:`flowcell.potentiostat.columns`.

Live (:mod:`flowcell.potentiostat.tail`)
----------------------------------------
:class:`PotentiostatTail` reads only what a growing log gained since the last call.
"""

from flowcell.potentiostat.coulomb import (
    charge_between,
    charge_throughput,
    coulomb_count,
    coulomb_soc,
    instrument_charge,
)
from flowcell.potentiostat.csvlog import read_potentiostat_csv
from flowcell.potentiostat.dispatch import (
    POTENTIOSTAT_SUFFIXES,
    is_potentiostat_log,
    read_potentiostat,
)
from flowcell.potentiostat.eclab import read_mpr, read_mpt
from flowcell.potentiostat.tail import PotentiostatTail

__all__ = [
    "POTENTIOSTAT_SUFFIXES",
    "PotentiostatTail",
    "charge_between",
    "charge_throughput",
    "coulomb_count",
    "coulomb_soc",
    "instrument_charge",
    "is_potentiostat_log",
    "read_mpr",
    "read_mpt",
    "read_potentiostat",
    "read_potentiostat_csv",
]
