"""kind = "gemini-image": Gemini image models through google-genai's generate_content."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.genai import types

from routes.capabilities import resolve_size
from routes.config import ConfigError
from routes.config import GeminiImageRoute as GeminiConfig
from routes.errors import EmptyResultError, ModerationError, RouteError
from routes.google_common import (
    GOOGLE_CALL_ERRORS,
    GoogleRoute,
    check_auth_keys,
    image_from_bytes,
    image_size_to_send,
    map_google_error,
    request_id_from,
    seen_responses,
)
from routes.model import GeneratedImage, ImageRequest, ImageResult, TokenCount, Usage
from routes.pacing import Stopwatch

# Finish reasons that mean a safety or policy system withheld the image (HTTP 200 all the same).
MODERATION_FINISH = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
_TEXT_SNIPPET = 300


def _name(value: Any) -> str | None:
    """An SDK enum or string as its plain name."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _tokens_by_modality(details: list[types.ModalityTokenCount] | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in details or []:
        modality = _name(item.modality) or "UNSPECIFIED"
        counts[modality] = counts.get(modality, 0) + (item.token_count or 0)
    return counts


def gemini_tokens(
    model: str, usage: types.GenerateContentResponseUsageMetadata | None
) -> TokenCount | None:
    """Token classes from usage_metadata: prompt tokens by modality (cached ones apart),
    candidate tokens by modality, thinking tokens (billed as text output). None when the
    answer reports no output tokens, so the list price per image applies instead."""
    if usage is None or not usage.candidates_token_count:
        return None
    prompt = _tokens_by_modality(usage.prompt_tokens_details)
    image_in = prompt.get("IMAGE", 0)
    text_in = max((usage.prompt_token_count or 0) - image_in, 0)
    cached = min(usage.cached_content_token_count or 0, text_in)
    out = _tokens_by_modality(usage.candidates_tokens_details)
    # Without a per-modality split every output token is taken as image output.
    image_out = out.get("IMAGE", usage.candidates_token_count or 0)
    text_out = (usage.candidates_token_count or 0) - image_out + (usage.thoughts_token_count or 0)
    return TokenCount(
        model=model,
        text_in=text_in - cached,
        cached_text_in=cached,
        image_in=image_in,
        text_out=max(text_out, 0),
        image_out=image_out,
    )


def _flagged(candidate: types.Candidate | None) -> list[str]:
    """Safety categories Gemini rated above negligible or blocked, e.g. 'HARM_CATEGORY_X:
    MEDIUM' (empty for a clean answer)."""
    out: list[str] = []
    for rating in (candidate.safety_ratings if candidate else None) or []:
        level = _name(rating.probability)
        if rating.blocked or level not in (None, "NEGLIGIBLE", "HARM_PROBABILITY_UNSPECIFIED"):
            label = f"{_name(rating.category)}: {level or 'unknown'}"
            out.append(label + (" (blocked)" if rating.blocked else ""))
    return out


class GeminiImageRoute(GoogleRoute):
    """Generation and edits via POST .../models/{model}:generateContent with image output, on
    the Gemini API (api_key) or Vertex AI (project + location, or api_key in express mode)."""

    config: GeminiConfig
    default_location = "global"  # Gemini image models are served from the global endpoint

    def __init__(self, config: GeminiConfig) -> None:
        super().__init__(config)
        key = config.api_key.get_secret_value() if config.api_key else None
        project = config.project or None  # "${GOOGLE_CLOUD_PROJECT:-}" may expand to ""
        self.vertexai = config.vertexai if config.vertexai is not None else bool(project)
        if self.vertexai:
            check_auth_keys(config.id, api_key=key, project=project, location=config.location)
        elif not key:
            raise ConfigError(
                f"route '{config.id}': missing api_key: the Gemini API needs one (or set "
                "vertexai = true to use Vertex AI with project + location)"
            )
        # With vertexai = false, project and location are Vertex settings and are not used.
        self.project = project if self.vertexai else None
        self.image_size = image_size_to_send(
            config.id, self.model, config.image_size, self._caps.extra.get("image_sizes", ())
        )
        self._client = None

    def content_config(self, request: ImageRequest) -> types.GenerateContentConfig:
        image: dict[str, Any] = {}
        if request.size is not None:
            # Only an explicit size is sent: left alone, edits keep the input's aspect ratio.
            image["aspect_ratio"] = resolve_size(request.size, self._caps).aspect_ratio
        if self.image_size:
            image["image_size"] = self.image_size
        return types.GenerateContentConfig(
            # TEXT too, so a refusal comes back with the model's own explanation.
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(**image) if image else None,
        )

    @staticmethod
    def contents(request: ImageRequest) -> types.Content:
        parts = [types.Part.from_text(text=request.prompt)]
        parts += [
            types.Part.from_bytes(data=img.data, mime_type=img.mime) for img in request.input_images
        ]
        return types.Content(role="user", parts=parts)

    async def generate(self, request: ImageRequest) -> ImageResult:
        config = self.content_config(request)
        client = self.client
        clock = Stopwatch()
        with seen_responses() as seen:
            try:
                response = await client.genai.aio.models.generate_content(
                    model=self.model, contents=self.contents(request), config=config
                )
            except GOOGLE_CALL_ERRORS as exc:
                raise map_google_error(exc, provider=client.provider) from None
        latency = clock()
        header_id = request_id_from(seen)
        response_id = response.response_id or header_id
        _raise_if_prompt_blocked(response.prompt_feedback, response_id)
        candidate = response.candidates[0] if response.candidates else None
        answer = _Answer.read(candidate)
        if not answer.images:
            raise answer.no_image_error(response_id)

        usage = response.usage_metadata
        metadata: dict[str, Any] = {"api": client.mode, "finish_reason": answer.finish}
        if self.location:
            metadata["location"] = self.location
        if header_id and header_id != response_id:
            metadata["request_id"] = header_id
        if config.image_config is not None:
            metadata.update(config.image_config.model_dump(exclude_none=True))
        if request.is_edit:
            metadata["input_images"] = len(request.input_images)
        metadata.update(answer.notes())
        return ImageResult(
            images=tuple(answer.images),
            requested_model=self.model,
            model=response.model_version,
            response_id=response_id,
            latency_s=latency,
            metered=Usage(
                images=len(answer.images),
                tokens=tuple(t for t in [gemini_tokens(self.model, usage)] if t),
            ),
            usage=usage.model_dump(mode="json", exclude_none=True) if usage else None,
            metadata=metadata,
        )


def _raise_if_prompt_blocked(
    feedback: types.GenerateContentResponsePromptFeedback | None, response_id: str | None
) -> None:
    """A prompt Gemini refused outright (prompt_feedback.block_reason, on HTTP 200)."""
    if feedback is None or feedback.block_reason is None:
        return
    text = f"Gemini blocked the prompt ({_name(feedback.block_reason)})"
    if feedback.block_reason_message:
        text += f": {feedback.block_reason_message}"
    raise ModerationError(text, request_id=response_id)


@dataclass
class _Answer:
    """What the first candidate holds: final images, the model's text, interim (thought)
    images, why it finished and the safety ratings above negligible."""

    candidate: types.Candidate | None
    images: list[GeneratedImage] = field(default_factory=list)
    reply: str | None = None
    thought_images: int = 0
    finish: str | None = None

    @classmethod
    def read(cls, candidate: types.Candidate | None) -> _Answer:
        answer = cls(candidate, finish=_name(candidate.finish_reason) if candidate else None)
        texts: list[str] = []
        for part in (candidate.content.parts if candidate and candidate.content else None) or []:
            if part.thought:
                # Thinking models draw interim images; only the final ones are the answer.
                answer.thought_images += 1 if part.inline_data else 0
                continue
            if part.inline_data is not None:
                image = image_from_bytes(part.inline_data.data, part.inline_data.mime_type)
                if image is not None:
                    answer.images.append(image)
            elif part.text:
                texts.append(part.text.strip())
        answer.reply = " ".join(t for t in texts if t)[:_TEXT_SNIPPET] or None
        return answer

    def no_image_error(self, response_id: str | None) -> RouteError:
        """An answer without an image: withheld by safety (moderation) or simply empty."""
        candidate = self.candidate
        said = candidate.finish_message if candidate and candidate.finish_message else self.reply
        detail = f": {said}" if said else ""
        if self.finish in MODERATION_FINISH:
            return ModerationError(
                f"Gemini withheld the image (finish reason {self.finish}){detail}",
                request_id=response_id,
            )
        return EmptyResultError(
            f"Gemini answered without an image (finish reason {self.finish or 'none'}){detail}",
            request_id=response_id,
        )

    def notes(self) -> dict[str, Any]:
        """What the run log keeps besides the images: the text, thought images, safety flags."""
        notes: dict[str, Any] = {}
        if self.reply:
            notes["text"] = self.reply
        if self.thought_images:
            notes["thought_images"] = self.thought_images
        flagged = _flagged(self.candidate)
        if flagged:
            notes["safety_flags"] = flagged
        return notes
