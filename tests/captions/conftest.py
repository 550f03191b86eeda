"""Fixtures of the caption tests: a tiny VLM built offline, and a fake OpenAI-compatible
endpoint (a local HTTP server standing in for a real one such as vLLM)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LLaVA rather than Qwen2-VL: in transformers 5 every Qwen2-VL processor needs a video
    processor, which needs torchvision, which this environment does not have."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    special = ["<pad>", "<s>", "</s>", "<image>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sentences = ["a man walks his dog in the park at night", "describe the shot: who is there"]
    bpe.train_from_iterator(sentences, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    ids = dict(zip(special, tokenizer.convert_tokens_to_ids(special), strict=True))
    # the LLaVA-1.5 chat layout: "ROLE: ..." turns, one <image> per image part
    chat_template = (
        "{% for message in messages %}{{ message['role'] | upper }}: "
        "{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}<image>\n"
        "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        "{% endfor %}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        ),
        tokenizer=tokenizer,
        chat_template=chat_template,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by "default"
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=512,
            bos_token_id=ids["<s>"],
            eos_token_id=ids["</s>"],
            pad_token_id=ids["<pad>"],
        ),
        image_token_id=ids["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("llava")
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


class FakeEndpoint:
    """A stand-in for a real OpenAI-compatible endpoint such as a vLLM server: it answers
    ``POST /v1/chat/completions`` as vLLM does, or fails as the prompt asks, and records each
    request's headers and body, and how many requests were in flight at most.

    Prompts: ``"500 once"``, ``"429 once"``, ``"not json once"``, ``"no choices once"``,
    ``"empty once"`` fail their first attempt that way, then answer; ``"slow"`` always sleeps
    ``slow_s``; ``"400"`` is a client error; ``"sleep <s> <tag>"`` answers after ``s`` seconds.
    Anything else is answered at once with ``"caption for <prompt>"``.
    """

    slow_s = 0.6

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.attempts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                endpoint.handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        content = body["messages"][-1]["content"]
        prompt = content if isinstance(content, str) else content[-1]["text"]
        with self.lock:
            self.seen.append((dict(h.headers), body))
            self.attempts[prompt] += 1
            attempt = self.attempts[prompt]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        status, headers, payload = self.script(h.path, prompt, attempt)
        with self.lock:  # before answering, so a client's next request cannot overlap this
            self.in_flight -= 1
        try:
            h.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                h.send_header(key, value)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except OSError:  # the client gave up (timed out) before the answer
            pass

    def script(self, path: str, prompt: str, attempt: int) -> tuple[int, dict[str, str], bytes]:
        if path != "/v1/chat/completions":
            return 404, {}, b'{"error": {"message": "not found"}}'
        first = attempt == 1
        if prompt == "500 once" and first:
            return 500, {}, b'{"error": {"message": "engine hiccup"}}'
        if prompt == "429 once" and first:
            return 429, {"Retry-After": "0"}, b'{"error": {"message": "slow down"}}'
        if prompt == "not json once" and first:
            return 200, {}, b"<html>502 bad gateway</html>"
        if prompt == "no choices once" and first:
            return 200, {}, b'{"object": "error", "message": "overloaded"}'
        if prompt == "empty once" and first:
            return 200, {}, json.dumps(self.completion("")).encode()
        if prompt == "slow":
            time.sleep(self.slow_s)
        if prompt == "400":
            return 400, {}, b'{"error": {"message": "image too large"}}'
        if prompt.startswith("sleep "):
            time.sleep(float(prompt.split()[1]))
        return 200, {}, json.dumps(self.completion(f"caption for {prompt}")).encode()

    @staticmethod
    def completion(text: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "served-vlm",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
        }


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch):
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)  # 127.0.0.1 is reached directly
    server = FakeEndpoint()
    yield server
    server.close()
