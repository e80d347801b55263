"""Builds the adapter for a configured route. Adapter modules are imported only when used, so
the CLI starts fast and a kind's SDK is loaded only if a route of that kind is configured."""

from __future__ import annotations

import importlib

from routes.base import Route
from routes.config import ConfigError, RouteConfigBase
from routes.errors import RouteError

# kind -> "module:Class"; adding a provider = one adapter file + one line here.
ADAPTERS: dict[str, str] = {
    "demo": "routes.demo:DemoRoute",
    "openai": "routes.openai_images:OpenAIImagesRoute",
    "openai-responses": "routes.openai_responses:OpenAIResponsesRoute",
    "gateway": "routes.gateway:GatewayImagesRoute",
    "google-imagen": "routes.google_imagen:GoogleImagenRoute",
    "gemini-image": "routes.gemini_image:GeminiImageRoute",
    "bfl": "routes.bfl:BflRoute",
    "bedrock": "routes.bedrock:BedrockRoute",
    "self-hosted": "routes.self_hosted:SelfHostedRoute",
}


def build_route(config: RouteConfigBase) -> Route:
    """The adapter instance for one route config."""
    target = ADAPTERS.get(config.kind)
    if target is None:
        raise ValueError(f"no adapter for route kind {config.kind!r}")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        route: Route = cls(config)
    except (RouteError, ValueError, OSError) as exc:
        # A route that cannot be built (unknown model family, unreadable workflow...) is a
        # configuration problem: one line naming the route, at start-up.
        message = exc.message if isinstance(exc, RouteError) else str(exc)
        raise ConfigError(f"route '{config.id}': {message}") from None
    return route
