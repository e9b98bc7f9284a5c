"""Long work as jobs: queued, run in committed chunks by workers, readable, resumable."""
