"""The hub's HTTP API (FastAPI). Build it with :func:`hub.api.app.create_app`."""
