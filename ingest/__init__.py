"""ingest: read NMR and EPR instrument files and turn spectra into observables."""
