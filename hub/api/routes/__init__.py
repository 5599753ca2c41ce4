"""Route modules; each exposes ``router: APIRouter`` (see ``hub.api.app.ROUTE_MODULES``)."""
