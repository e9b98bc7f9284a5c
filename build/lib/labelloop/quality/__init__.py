"""Quality: agreement, gold, aggregation, label errors, gates and drift."""
