"""Encoders, the embedding cache, zero-shot and classifier heads, calibration."""
