"""Freeze, digest, export and lineage of immutable dataset versions."""
