"""The OpenAI-compatible caption backend through its real path, with no real server: it talks
HTTP to ``FakeEndpoint``, a ``ThreadingHTTPServer`` on 127.0.0.1 standing in for a real
endpoint such as a vLLM server; the prompt text tells it how to misbehave (fail once with a
500, time out, ...).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import cv2
import numpy as np

from muss_builder.captions.backends import CaptionRequest
from muss_builder.captions.openai_backend import OpenAIBackend

# ---------------------------------------------------------------------------------------------
# An OpenAI-compatible endpoint, faked


def client(endpoint: Any, **kwargs: Any) -> OpenAIBackend:
    options: dict[str, Any] = {
        "base_url": endpoint.base_url,
        "api_key_env": "MUSS_TEST_CAPTION_KEY",
        "timeout_s": 0.3,
        "max_retries": 2,
        "backoff_s": 0.01,
        "concurrency": 4,
    }
    return OpenAIBackend("served-vlm", **{**options, **kwargs})


def test_server_replies_retries_and_failures(endpoint: Any, monkeypatch) -> None:
    monkeypatch.delenv("MUSS_TEST_CAPTION_KEY", raising=False)
    prompts = ["fine", "500 once", "429 once", "not json once", "no choices once", "empty once"]
    started = time.perf_counter()
    replies = client(endpoint, concurrency=3).generate(
        [CaptionRequest(p, max_new_tokens=20) for p in [*prompts, "slow", "400"]]
    )
    *answered, timed_out, refused = replies
    for prompt, reply, attempts in zip(prompts, answered, (1, 2, 2, 2, 2, 2), strict=True):
        assert reply.text == f"caption for {prompt}" and reply.error is None
        assert reply.attempts == attempts, prompt
        assert (reply.prompt_tokens, reply.completion_tokens) == (42, 7)
        assert reply.model == "served-vlm"
    # a server that never answers in time: retried, then given up on, saying where and why
    assert timed_out.text is None and timed_out.attempts == 3  # max_retries + 1
    assert endpoint.base_url in (timed_out.error or "") and "timed out" in (timed_out.error or "")
    assert (timed_out.prompt_tokens, timed_out.completion_tokens) == (0, 0)
    # a client error is the request's own fault: asked once
    assert refused.text is None and refused.attempts == 1
    assert "HTTP 400" in (refused.error or "") and "image too large" in (refused.error or "")
    assert endpoint.attempts["400"] == 1 and endpoint.attempts["slow"] == 3
    # what was sent: the chat-completions fields, no key when the variable is unset
    headers, body = endpoint.seen[0]
    assert "Authorization" not in headers
    assert body["model"] == "served-vlm" and body["max_tokens"] == 20
    assert body["temperature"] == 0.0
    assert time.perf_counter() - started < 5


def test_retry_after_is_honoured_and_bounded(endpoint: Any) -> None:
    # a back-off of 10 s would be waited without the server's "Retry-After: 0"
    (reply,) = client(endpoint, backoff_s=10.0).generate([CaptionRequest("429 once")])
    assert reply.text == "caption for 429 once" and reply.attempts == 2 and reply.seconds < 5
    backend = client(endpoint, backoff_s=1.0)
    assert backend._wait(0, 1, 3600.0) == 30.0  # a server cannot stall a film for an hour
    waits = [backend._wait(i, k, None) for i in range(4) for k in (1, 2, 3)]
    for (i, k), wait in zip([(i, k) for i in range(4) for k in (1, 2, 3)], waits, strict=True):
        assert 2 ** (k - 1) <= wait <= 1.25 * 2 ** (k - 1)  # exponential, jittered
        assert wait == backend._wait(i, k, None)  # the jitter is deterministic


def test_images_go_as_jpeg_data_urls_with_system_and_key(endpoint, monkeypatch) -> None:
    monkeypatch.setenv("MUSS_TEST_CAPTION_KEY", "sk-local-test")
    blue = np.zeros((200, 400, 3), np.uint8)
    blue[..., 0] = 255  # BGR: pure blue
    small = np.random.default_rng(3).integers(0, 256, (48, 64, 3), np.uint8)
    request = CaptionRequest("describe", [blue, small], system="You caption films.")
    (reply,) = client(endpoint, max_image_side=100).generate([request])
    assert reply.text == "caption for describe"
    headers, body = endpoint.seen[0]
    assert headers["Authorization"] == "Bearer sk-local-test"
    system, user = body["messages"]
    assert system == {"role": "system", "content": "You caption films."}
    *images, text = user["content"]
    assert text == {"type": "text", "text": "describe"}
    decoded = []
    for part in images:
        assert part["type"] == "image_url"
        url = part["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        jpeg = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
        decoded.append(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    assert decoded[0].shape == (50, 100, 3)  # long side shrunk to max_image_side
    assert decoded[1].shape == (48, 64, 3)  # already small enough: never enlarged
    b, g, r = decoded[0].reshape(-1, 3).mean(axis=0)
    assert b > 230 and g < 25 and r < 25  # the colours were not swapped on the way


def test_concurrency_is_bounded_and_order_kept(endpoint: Any) -> None:
    prompts = [f"sleep {0.05 + 0.03 * (5 - k):.2f} #{k}" for k in range(6)]  # first is slowest
    replies = client(endpoint, concurrency=2).generate([CaptionRequest(p) for p in prompts])
    assert [r.text for r in replies] == [f"caption for {p}" for p in prompts]
    assert endpoint.max_in_flight == 2


def test_unreachable_server_and_unusable_keyframe(endpoint: Any) -> None:
    port = endpoint.server.server_address[1]
    endpoint.close()  # nothing listens there any more
    unreachable = OpenAIBackend(
        "served-vlm", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01
    )
    bad_image = CaptionRequest("describe", [np.zeros((4, 4), np.float32)])
    refused, unsent = unreachable.generate([CaptionRequest("hello"), bad_image])
    assert refused.text is None and refused.attempts == 2
    assert f"127.0.0.1:{port}" in (refused.error or "") and "connection" in (refused.error or "")
    assert unsent.text is None and unsent.attempts == 0 and "keyframe" in (unsent.error or "")
