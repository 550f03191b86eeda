"""Caption backends: keyframes (or a shot's clip) and a prompt in, a caption out, from a
local VLM or a server.

The captioner (``captioner.py``) decides what to ask; a backend only answers, in bulk, in
order, and never raises for one bad request, so one broken keyframe or one flaky HTTP reply
costs one caption, not a film. This module holds what they share (the request, the reply,
the interface, keyframe shrinking); two interchangeable backends implement it:

- ``TransformersBackend`` (``"transformers"``, ``transformers_backend.py``): any Hugging Face
  vision-language model with a chat template (Qwen2-VL / Qwen2.5-VL, LLaVA, SmolVLM, ...)
  from a folder or the local Hugging Face cache, never the network (``core.models``).
- ``OpenAIBackend`` (``"openai"``, ``openai_backend.py``): any OpenAI-compatible
  chat-completions endpoint (vLLM, TGI, a llama.cpp server, OpenAI itself) over the standard
  library only.

Both return a ``CaptionReply`` per request with the token counts and time it cost, and, when
it failed, ``text=None`` with a readable ``error``, so the caller can fall back and report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from muss_builder.captions.video import VideoClip


@dataclass
class CaptionRequest:
    prompt: str  # user message text
    images: list[np.ndarray] = field(default_factory=list)  # BGR uint8 keyframes, may be empty
    system: str | None = None
    max_new_tokens: int = 160
    # the shot as a clip, for a backend whose model reads video; it then goes instead of the
    # keyframes, with its timing added to the prompt; other backends use ``images``
    video: VideoClip | None = None


@dataclass
class CaptionReply:
    text: str | None  # None when the request failed after all retries
    model: str
    prompt_tokens: int  # what the model read, image placeholder tokens included
    completion_tokens: int  # what it wrote, the end-of-sequence token included
    # wall time of the call(s) that produced the reply: shared by all requests of a local
    # batch (so summing over a batch overcounts), retries and back-off included for a server
    seconds: float
    attempts: int  # model calls / HTTP requests that carried this request
    error: str | None = None  # readable reason when text is None


class CaptionBackend:
    """The backend interface: ``setup()`` once, then ``generate`` as often as needed.

    ``generate`` answers in the order asked and turns the failure of one request into a
    reply with ``text=None`` and ``error`` set; only a backend that cannot work at all (a
    missing model) raises, from ``setup()``, which ``generate`` calls if nobody did.
    """

    name: ClassVar[str]
    model: str

    def setup(self) -> None:
        """Load whatever the backend needs."""

    def generate(self, requests: list[CaptionRequest]) -> list[CaptionReply]:
        raise NotImplementedError

    def sends_video(self) -> bool:
        """Whether a request's clip reaches the model (else its keyframes do)."""
        return False


def shrink(image_bgr: np.ndarray, max_side: int) -> np.ndarray:
    """The keyframe as 3-channel BGR uint8, its long side at most ``max_side`` (never enlarged).

    Shrinking here, not in the model's processor, bounds what is sent over the wire or
    through the processor's own resizing, and rejects what is not an image with a readable
    error before any model time is spent on the batch it came in.
    """
    image = np.asarray(image_bgr)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2], default=0) < 1:
        raise ValueError(
            f"a keyframe must be a non-empty uint8 BGR (or grey) image, got dtype {image.dtype} "
            f"and shape {image.shape}"
        )
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] != 3:
        raise ValueError(f"a keyframe must have 1, 3 or 4 channels, got shape {image.shape}")
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def describe_error(err: BaseException) -> str:
    """An exception as one line: its type and message."""
    return f"{type(err).__name__}: {err}"
