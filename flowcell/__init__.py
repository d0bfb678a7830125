"""flowcell: the in-line experiment, simulator, live state of charge and command line."""
