"""Application layer: composition root, command line, run loops."""
