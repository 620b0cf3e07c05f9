"""The web service: `create_app(settings)` for ASGI servers and tests, `serve()` for the CLI."""

from digitlab.service.app import ServiceSettings, create_app, get_predictor, serve

__all__ = ["ServiceSettings", "create_app", "get_predictor", "serve"]
