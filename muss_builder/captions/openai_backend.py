"""An OpenAI-compatible server as a caption backend (``"openai"``).

Any chat-completions endpoint (vLLM, TGI, a llama.cpp server, OpenAI itself) over the
standard library only: ``urllib`` and ``json`` in a thread pool. That keeps the dependency
list as it is, and the whole protocol is one POST, so a client library would add little
beyond its own retry policy, which this module needs to control anyway (what is retried, how
long to wait, what is recorded).
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from muss_builder.captions.backends import (
    CaptionBackend,
    CaptionReply,
    CaptionRequest,
    describe_error,
    shrink,
)
from muss_builder.captions.video import VideoClip, encode_mp4

log = logging.getLogger(__name__)

# HTTP statuses worth asking again: a timeout, a conflict (openai-python retries 408 and 409
# too), rate limiting and server errors. Any other 4xx is the request's own fault.
_RETRY_STATUSES = frozenset({408, 409, 429})
_MAX_WAIT_S = 30.0  # the longest back-off or Retry-After honoured between two attempts


class _Retry(Exception):
    """A failure worth another attempt; ``wait_s`` is the server's Retry-After, if any."""

    def __init__(self, message: str, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class _Fatal(Exception):
    """A failure another attempt would repeat (a 4xx other than 408/409/429)."""


class OpenAIBackend(CaptionBackend):
    """Any OpenAI-compatible ``/chat/completions`` endpoint: vLLM, TGI, llama.cpp, OpenAI.

    Each request is one POST of ``model``, ``messages`` (the keyframes as base64 JPEG data
    URLs, shrunk to ``max_image_side``, before the prompt), ``max_tokens`` and
    ``temperature`` (0 by default: as deterministic as the server allows). ``concurrency``
    requests are in flight at once, which is what keeps a vLLM server's continuous batching
    busy without queueing a whole film on it; replies come back in request order.

    Each HTTP request has ``timeout_s`` (per socket operation, as urllib does it). A timeout, a
    connection error, HTTP 408/409/429/5xx, or a reply without text (not JSON, no
    ``choices[0].message.content``, empty content) is retried up to ``max_retries`` times,
    ``backoff_s * 2**k`` apart plus a small deterministic jitter (so concurrent requests do not
    come back in lockstep, yet reruns wait alike), or the server's ``Retry-After`` when it sends
    one; both capped at 30 s. Other 4xx answers are final at once. The API key comes from the
    environment variable ``api_key_env`` when it is set (a local vLLM needs none).

    ``video`` says what a request's clip becomes (``off``: its keyframes go instead):
    ``mp4`` one ``video_url`` part, a data URL of an H.264 mp4 encoded from the clip's frames
    at its mean rate (vLLM serves Qwen2.5-VL / Qwen3-VL this way and samples it again at its
    own fps); ``frames`` the frames as ``image_url`` parts, each after a ``<t s>`` text part
    with its time, for servers that take several images but no video. Either way the prompt
    ends with the clip's timing in words.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "http://localhost:8000/v1",
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        concurrency: int = 4,
        max_image_side: int = 768,
        temperature: float = 0.0,
        video: str = "off",
    ) -> None:
        if not model:
            raise ValueError("the openai caption backend needs the served model's name")
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError(
                "concurrency must be >= 1, max_retries >= 0 and timeout_s > 0, got "
                f"{concurrency}, {max_retries} and {timeout_s}"
            )
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self.max_image_side = max_image_side
        self.temperature = temperature
        if video not in ("off", "mp4", "frames"):
            raise ValueError(f"video must be off, mp4 or frames, got {video!r}")
        self.video = video
        self.url = f"{self.base_url}/chat/completions"
        self._headers: dict[str, str] | None = None
        self._opener: urllib.request.OpenerDirector | None = None

    def setup(self) -> None:
        """Read the API key and build the HTTP opener (proxies from the environment, as
        urllib does), once, rather than per request."""
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._headers = headers
        self._opener = urllib.request.build_opener()

    def sends_video(self) -> bool:
        return self.video != "off"

    def generate(self, requests: list[CaptionRequest]) -> list[CaptionReply]:
        if self._opener is None:
            self.setup()
        if not requests:
            return []
        workers = min(self.concurrency, len(requests))
        with ThreadPoolExecutor(workers, thread_name_prefix="caption-http") as pool:
            return list(pool.map(self._ask, range(len(requests)), requests))

    def _ask(self, index: int, request: CaptionRequest) -> CaptionReply:
        """One request to the end: attempts, waits, and a reply that never raises."""
        started = time.perf_counter()
        attempts = 0
        try:
            body = json.dumps(self._body(request)).encode()
        except Exception as err:  # an unusable keyframe: nothing was sent
            return self._failed(f"request not sent: {describe_error(err)}", started, attempts)
        last = ""
        while attempts <= self.max_retries:
            attempts += 1
            try:
                text, model, n_prompt, n_completion = self._post(body)
            except _Fatal as err:
                return self._failed(f"{err} (not retried)", started, attempts)
            except _Retry as err:
                last = str(err)
                if attempts <= self.max_retries:
                    time.sleep(self._wait(index, attempts, err.wait_s))
                continue
            except Exception as err:  # a bug or an odd failure: record it, never raise
                return self._failed(describe_error(err), started, attempts)
            seconds = time.perf_counter() - started
            return CaptionReply(text, model, n_prompt, n_completion, seconds, attempts)
        return self._failed(f"no reply after {attempts} attempts; last: {last}", started, attempts)

    def _failed(self, why: str, started: float, attempts: int) -> CaptionReply:
        error = f"{self.url}: {why}"
        log.warning("caption request failed: %s", error)
        return CaptionReply(None, self.model, 0, 0, time.perf_counter() - started, attempts, error)

    def _wait(self, index: int, attempt: int, retry_after: float | None) -> float:
        """Seconds before attempt ``attempt + 1``: the server's Retry-After when given, else
        exponential back-off with up to 25 % jitter fixed by (request, attempt)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), _MAX_WAIT_S)
        delay = min(self.backoff_s * 2 ** (attempt - 1), _MAX_WAIT_S)
        jitter = (zlib.crc32(f"{index}:{attempt}".encode()) % 1000) / 4000
        return delay * (1.0 + jitter)

    def _body(self, request: CaptionRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        if request.video is not None and self.video != "off":
            content = self._clip_parts(request.video)
            prompt = f"{request.prompt}\n{request.video.note()}"
            messages.append({"role": "user", "content": [*content, _text(prompt)]})
        elif request.images:
            content = [
                {"type": "image_url", "image_url": {"url": self._data_url(image)}}
                for image in request.images
            ]
            messages.append({"role": "user", "content": [*content, _text(request.prompt)]})
        else:  # plain string content: what every server, multimodal or not, accepts
            messages.append({"role": "user", "content": request.prompt})
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_new_tokens,
            "temperature": self.temperature,
        }

    def _clip_parts(self, clip: VideoClip) -> list[dict[str, Any]]:
        if not clip.frames or len(clip.times) != len(clip.frames):
            raise ValueError("a clip needs frames and one time per frame")
        if self.video == "mp4":
            # frames already within the pixel budget (the collector's): not shrunk again
            url = "data:video/mp4;base64," + base64.b64encode(encode_mp4(clip)).decode("ascii")
            return [{"type": "video_url", "video_url": {"url": url}}]
        parts: list[dict[str, Any]] = []
        for frame, t in zip(clip.frames, clip.times, strict=True):
            parts.append(_text(f"<{t:.2f} s>"))
            parts.append({"type": "image_url", "image_url": {"url": self._data_url(frame)}})
        return parts

    def _data_url(self, image_bgr: np.ndarray) -> str:
        ok, jpeg = cv2.imencode(
            ".jpg", shrink(image_bgr, self.max_image_side), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        if not ok:
            raise ValueError("a keyframe could not be encoded as JPEG")
        return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")

    def _post(self, body: bytes) -> tuple[str, str, int, int]:
        """(text, model, prompt tokens, completion tokens) of one HTTP attempt, or _Retry /
        _Fatal saying why not."""
        assert self._opener is not None and self._headers is not None
        req = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            status = f"HTTP {err.code} {err.reason}: {_snippet(err)}"
            if err.code in _RETRY_STATUSES or err.code >= 500:
                raise _Retry(status, _retry_after(err.headers)) from err
            raise _Fatal(status) from err
        except urllib.error.URLError as err:  # connection refused, DNS, a timeout on connect
            if isinstance(err.reason, TimeoutError):
                raise _Retry(f"timed out after {self.timeout_s:g} s") from err
            raise _Retry(f"connection failed: {err.reason}") from err
        except TimeoutError as err:  # no answer within timeout_s (socket.timeout too)
            raise _Retry(f"timed out after {self.timeout_s:g} s") from err
        except (ConnectionError, http.client.HTTPException, OSError) as err:
            raise _Retry(f"connection failed: {describe_error(err)}") from err
        return self._parse(raw)

    def _parse(self, raw: bytes) -> tuple[str, str, int, int]:
        try:
            reply = json.loads(raw)
        except ValueError as err:
            raise _Retry(f"malformed reply (not JSON): {raw[:200]!r}") from err
        try:
            message = reply["choices"][0]["message"]
            content = message["content"]
        except (KeyError, IndexError, TypeError) as err:
            detail = reply.get("error") if isinstance(reply, dict) else None
            found = f"error {detail}" if detail else f"{str(reply)[:200]}"
            raise _Retry(f"malformed reply (no choices[0].message.content): {found}") from err
        if isinstance(content, list):  # some servers answer in parts, like the request
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str) or not content.strip():
            raise _Retry(f"malformed reply (empty content): {str(reply)[:200]}")
        usage = reply.get("usage") or {}
        model = reply.get("model")
        return (
            content.strip(),
            model if isinstance(model, str) and model else self.model,
            _count(usage, "prompt_tokens"),
            _count(usage, "completion_tokens"),
        )


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _count(usage: Any, key: str) -> int:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


def _snippet(err: urllib.error.HTTPError) -> str:
    """The start of an error body, where servers say what was wrong."""
    try:
        text = err.read(300).decode("utf-8", "replace")
    except Exception:
        return "(no body)"
    return " ".join(text.split()) or "(no body)"


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds, from either form (seconds or an HTTP date), else None."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
