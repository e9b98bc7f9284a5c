"""The ASGI app made from the environment's settings: ``uvicorn labelloop.api.asgi:app``
(what ``labelloop serve --workers N`` runs in each worker process)."""

from labelloop.api.app import create_app

app = create_app()
