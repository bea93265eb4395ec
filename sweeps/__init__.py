"""Sweeps as data (one file per figure or table of the paper), their registry, and the `lop` command."""
