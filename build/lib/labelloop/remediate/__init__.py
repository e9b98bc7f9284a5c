"""Evaluation findings become targets for the next labeling batch."""
