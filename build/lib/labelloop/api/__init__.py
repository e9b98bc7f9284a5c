"""The FastAPI service: thin routers over the same service functions as the CLI."""
