"""Checks of the tree and its artefacts: linters, type checks, stubs, distributions, the bench
report."""
