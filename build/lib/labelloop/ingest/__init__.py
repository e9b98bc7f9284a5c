"""Readers (JSONL, CSV, Parquet, HF datasets), row checks, dedup and provenance."""
