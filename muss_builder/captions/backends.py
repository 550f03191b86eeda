"""Caption backends: keyframes and a prompt in, a caption out, from a local VLM or a server.

The captioner (``captioner.py``) decides what to ask; a backend only answers, in bulk, in
order, and never raises for one bad request, so one broken keyframe or one flaky HTTP reply
costs one caption, not a film. Two interchangeable parts:

- ``TransformersBackend`` (``"transformers"``): any Hugging Face vision-language model with a
  chat template (Qwen2-VL / Qwen2.5-VL, LLaVA, SmolVLM, ...) loaded through ``AutoProcessor``
  and ``AutoModelForImageTextToText`` from a folder or the local Hugging Face cache, never the
  network (``resolve_model`` and the "never downloads models" error of
  ``muss_builder.subjects.objects``). ``setup()`` loads it once so a Ray actor can hold it.
- ``OpenAIBackend`` (``"openai"``): any OpenAI-compatible chat-completions endpoint (vLLM,
  TGI, a llama.cpp server, OpenAI itself) over the standard library only: ``urllib`` and
  ``json`` in a thread pool. That keeps the dependency list as it is, and the whole protocol
  is one POST, so a client library would add little beyond its own retry policy, which this
  module needs to control anyway (what is retried, how long to wait, what is recorded).

Both return a ``CaptionReply`` per request with the token counts and time it cost, and, when
it failed, ``text=None`` with a readable ``error``, so the caller can fall back and report.
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
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from muss_builder.subjects.objects import _missing_model, resolve_model, torch_device

log = logging.getLogger(__name__)


@dataclass
class CaptionRequest:
    prompt: str  # user message text
    images: list[np.ndarray] = field(default_factory=list)  # BGR uint8 keyframes, may be empty
    system: str | None = None
    max_new_tokens: int = 160


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


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# ---------------------------------------------------------------------------------------------
# A local vision-language model


class TransformersBackend(CaptionBackend):
    """Any ``AutoModelForImageTextToText`` checkpoint with a chat template, on disk.

    Requests go in batches of ``batch_size``: each becomes a standard chat (an optional
    system message, then one user message with an image part per keyframe followed by the
    prompt), rendered by the processor's own template with the generation prompt, and the
    keyframes go in as PIL RGB images, shrunk to ``max_image_side``. Batches are left-padded,
    so every row's new tokens start at the same column, and decoded greedily by default, so a
    rerun gives the same captions (on a CPU, in float32, the same whatever the batch size; on
    a GPU, in bfloat16, batched kernels may round differently, which can change a word).

    A request whose keyframes are unusable fails alone before the batch runs; a batch that
    throws (e.g. out of GPU memory) is retried one request at a time, so only the request at
    fault is lost. A request without keyframes is a text-only chat through the same model.
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        batch_size: int = 4,
        max_image_side: int = 448,
        dtype: str = "auto",
        do_sample: bool = False,
    ) -> None:
        if not model:
            raise ValueError(
                "the transformers caption backend needs a model: a checkpoint folder or a hub "
                "id already in the local Hugging Face cache (e.g. Qwen/Qwen2.5-VL-3B-Instruct)"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_image_side = max_image_side
        self.dtype = dtype
        self.do_sample = do_sample
        self._processor: Any = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._device = "cpu"
        self._stop_ids: set[int] = set()

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source, described = resolve_model(self.model)
        self._device = torch_device(self.device)
        dtype = self._torch_dtype(torch)
        try:
            processor = AutoProcessor.from_pretrained(source, local_files_only=True)
            network = AutoModelForImageTextToText.from_pretrained(
                source, local_files_only=True, dtype=dtype
            )
        except OSError as err:  # transformers' "not found / could not connect" errors
            raise _missing_model(self.model, described, err) from err
        tokenizer = getattr(processor, "tokenizer", processor)
        # Left padding: generate appends after the last column, so right padding would put
        # pad tokens between a short prompt and its answer.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:  # Llama-style tokenizers have none; batches need one
            tokenizer.pad_token = tokenizer.eos_token
        self._model = network.to(device=self._device, dtype=dtype).eval()
        self._processor, self._tokenizer = processor, tokenizer
        eos = self._model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if tokenizer.eos_token_id is not None:
            eos.append(tokenizer.eos_token_id)
        self._stop_ids = {int(i) for i in eos}

    def _torch_dtype(self, torch: Any) -> Any:
        """``"auto"``: bfloat16 on a GPU (half the memory, the precision VLMs are trained in),
        float32 on a CPU (where bfloat16 matmuls are slow and round the most)."""
        if self.dtype == "auto":
            return torch.bfloat16 if self._device.startswith("cuda") else torch.float32
        dtype = getattr(torch, self.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown dtype {self.dtype!r}: use auto, bfloat16, float16, ...")
        return dtype

    def generate(self, requests: list[CaptionRequest]) -> list[CaptionReply]:
        if self._model is None:
            self.setup()
        replies: list[CaptionReply | None] = [None] * len(requests)
        ready: list[tuple[int, list[dict[str, Any]], list[Any]]] = []
        for i, request in enumerate(requests):
            started = time.perf_counter()
            try:
                ready.append((i, *self._chat(request)))
            except Exception as err:
                replies[i] = self._failed(err, time.perf_counter() - started, attempts=1)
        for start in range(0, len(ready), self.batch_size):
            batch = ready[start : start + self.batch_size]
            started = time.perf_counter()
            try:
                answers = self._run([requests[i] for i, _, _ in batch], batch)
            except Exception as err:
                batch_seconds = time.perf_counter() - started
                self._free_memory()
                if len(batch) == 1:
                    replies[batch[0][0]] = self._failed(err, batch_seconds, attempts=1)
                    continue
                log.warning(
                    "caption batch of %d failed (%s): retrying one by one",
                    len(batch),
                    _describe(err),
                )
                for item in batch:
                    replies[item[0]] = self._alone(requests[item[0]], item, batch_seconds)
                continue
            seconds = time.perf_counter() - started
            for (i, _, _), (text, n_prompt, n_completion) in zip(batch, answers, strict=True):
                replies[i] = CaptionReply(text, self.model, n_prompt, n_completion, seconds, 1)
        assert all(reply is not None for reply in replies)
        return replies  # type: ignore[return-value]

    def _alone(
        self,
        request: CaptionRequest,
        item: tuple[int, list[dict[str, Any]], list[Any]],
        batch_seconds: float,
    ) -> CaptionReply:
        """A request of a failed batch, asked again on its own (its second attempt)."""
        started = time.perf_counter()
        try:
            ((text, n_prompt, n_completion),) = self._run([request], [item])
        except Exception as err:
            self._free_memory()
            return self._failed(err, batch_seconds + time.perf_counter() - started, attempts=2)
        seconds = batch_seconds + time.perf_counter() - started
        return CaptionReply(text, self.model, n_prompt, n_completion, seconds, 2)

    def _failed(self, err: Exception, seconds: float, attempts: int) -> CaptionReply:
        log.warning("caption request failed with %s: %s", self.model, _describe(err))
        return CaptionReply(None, self.model, 0, 0, seconds, attempts, _describe(err))

    def _chat(self, request: CaptionRequest) -> tuple[list[dict[str, Any]], list[Any]]:
        """(the standard chat messages, the keyframes as PIL RGB images, in the same order)."""
        from PIL import Image

        images = [
            Image.fromarray(cv2.cvtColor(shrink(image, self.max_image_side), cv2.COLOR_BGR2RGB))
            for image in request.images
        ]
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append(
                {"role": "system", "content": [{"type": "text", "text": request.system}]}
            )
        content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": content})
        return messages, images

    def _run(
        self,
        requests: list[CaptionRequest],
        batch: list[tuple[int, list[dict[str, Any]], list[Any]]],
    ) -> list[tuple[str, int, int]]:
        """(text, prompt tokens, completion tokens) per request, one ``generate`` call."""
        import torch

        prompts = [
            self._processor.apply_chat_template(messages, add_generation_prompt=True)
            for _, messages, _ in batch
        ]
        # Images go per conversation (nested), the one layout every processor accepts; a
        # batch with none goes text-only.
        images = [pictures for _, _, pictures in batch]
        bos = self._tokenizer.bos_token
        inputs = self._processor(
            text=prompts,
            images=images if any(images) else None,
            padding=True,
            return_tensors="pt",
            # a template that writes the BOS itself must not get a second one
            add_special_tokens=not (bos and prompts[0].startswith(bos)),
        )
        inputs = inputs.to(self._device, dtype=self._model.dtype)
        n_new = max(request.max_new_tokens for request in requests)
        pad_id = self._model.generation_config.pad_token_id
        with torch.inference_mode():
            out = self._model.generate(
                **inputs,
                max_new_tokens=n_new,
                do_sample=self.do_sample,
                pad_token_id=self._tokenizer.pad_token_id if pad_id is None else pad_id,
            )
        n_prompt = inputs["attention_mask"].sum(dim=1).tolist()
        new_tokens = out[:, inputs["input_ids"].shape[1] :].tolist()
        answers = []
        for request, tokens, prompt_len in zip(requests, new_tokens, n_prompt, strict=True):
            # every row runs as long as the longest budget; decoding goes left to right, so
            # a shorter budget's answer is a prefix of the longer one: cut each row to its own
            tokens = tokens[: request.max_new_tokens]
            stop = next((k for k, t in enumerate(tokens) if t in self._stop_ids), None)
            n_completion = len(tokens) if stop is None else stop + 1
            text = self._tokenizer.decode(tokens[:n_completion], skip_special_tokens=True)
            answers.append((text.strip(), int(prompt_len), n_completion))
        return answers

    def _free_memory(self) -> None:
        """After a failed batch (often out of GPU memory), give the cached blocks back."""
        if self._device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# An OpenAI-compatible server

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
            return self._failed(f"request not sent: {_describe(err)}", started, attempts)
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
                return self._failed(_describe(err), started, attempts)
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
        if request.images:
            content: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": self._data_url(image)}}
                for image in request.images
            ]
            content.append({"type": "text", "text": request.prompt})
            messages.append({"role": "user", "content": content})
        else:  # plain string content: what every server, multimodal or not, accepts
            messages.append({"role": "user", "content": request.prompt})
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_new_tokens,
            "temperature": self.temperature,
        }

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
            raise _Retry(f"connection failed: {_describe(err)}") from err
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


BACKENDS: dict[str, type[CaptionBackend]] = {
    TransformersBackend.name: TransformersBackend,
    OpenAIBackend.name: OpenAIBackend,
}
