"""Pure domain of the Cirrus persistent worker and controller: stdlib only, no I/O."""
