"""Importers of external data sets into a graph store."""
