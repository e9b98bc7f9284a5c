"""Assignment, overlap and submissions: annotators correct pre-labels."""
