"""The web service: `create_app(settings)` for ASGI servers and tests, `serve()` for the CLI."""

from digitlab.service.app import create_app
from digitlab.service.deps import get_predictor
from digitlab.service.server import serve
from digitlab.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app", "get_predictor", "serve"]
