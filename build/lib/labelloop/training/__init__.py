"""Train on a dataset version, evaluate, log to MLflow and its model registry."""
