"""Hardware side of dse: the overlay's register map and its PYNQ driver."""
