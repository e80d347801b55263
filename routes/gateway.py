"""kind = "gateway": any OpenAI-compatible images endpoint (an LLM/image gateway or proxy).

The run log keeps both the gateway route and the model behind it: from the response when the
gateway reports one (body `model`, or a header such as x-model / x-litellm-model-id), else from
the route's `underlying_model`. Cost comes from the route's own `pricing` or stays unknown:
a gateway's markup is not the provider's list price.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from routes.config import GatewayRoute as GatewayConfig
from routes.model import ImageRequest, ImageResult
from routes.openai_common import make_client
from routes.openai_images import OpenAICompatibleRoute

if TYPE_CHECKING:
    import openai


class GatewayImagesRoute(OpenAICompatibleRoute[GatewayConfig]):
    provider_name = "the gateway"

    def build_client(self) -> openai.AsyncOpenAI:
        # No organization header: that is an OpenAI account setting, not a gateway's.
        key = self.config.api_key.get_secret_value() if self.config.api_key else None
        return make_client(
            api_key=key,
            base_url=self.config.base_url,
            timeout=self.config.timeout_seconds,
            headers={k: v.get_secret_value() for k, v in self.config.headers.items()},
        )

    def describe(self) -> dict[str, Any]:
        facts = super().describe()
        if self.config.underlying_model:
            facts["underlying_model"] = self.config.underlying_model
        return facts

    @property
    def credentials(self) -> dict[str, str]:
        """The key and the configured headers (a gateway's own auth often lives in them)."""
        headers = {k: v.get_secret_value() for k, v in self.config.headers.items()}
        return {**super().credentials, **headers}

    async def generate(self, request: ImageRequest) -> ImageResult:
        result = await super().generate(request)
        underlying = (
            result.model or result.metadata.get("served_model") or self.config.underlying_model
        )
        return dataclasses.replace(
            result,
            underlying_model=str(underlying) if underlying else None,
            metadata={**result.metadata, "gateway": self.config.base_url},
        )
