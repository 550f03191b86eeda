"""Fixtures of the caption tests: tiny VLMs built offline (LLaVA for keyframes; Qwen2.5-VL
and Qwen3-VL for clips, when torchvision is there for their video processors), and a fake
OpenAI-compatible endpoint (a local HTTP server standing in for a real one such as vLLM)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from muss_builder.core.torchvision_compat import prepare_torchvision


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LLaVA: an image-only VLM (the keyframe path). Unlike every Qwen-VL processor in
    transformers 5 it needs no video processor, hence no torchvision."""
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


# at import, before any test imports transformers: with torchvision installed, transformers
# imports it for every image processor (LLaVA's CLIP one too), not only for video; a PyPI
# (CUDA) torchvision beside the CPU torch imports only through the compat step
TORCHVISION = prepare_torchvision() in ("native", "python-only")

# The real Qwen2-VL / Qwen2.5-VL chat template (the Qwen3-VL one differs in its tool-call
# branches, unused here, and in having no default system message): one
# <|vision_start|><|image_pad|> or <|video_pad|><|vision_end|> per part, which the processor
# expands to the patch count (and, for Qwen3-VL, to one "<t seconds>" block per frame pair).
QWEN2_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN3_TEMPLATE = QWEN2_TEMPLATE.replace(
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}",
    "",
)
QWEN_SPECIAL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip


def tiny_qwen_vl(folder: Path, family: str) -> Path:
    """A randomly initialised Qwen2.5-VL (``"qwen2_5"``) or Qwen3-VL (``"qwen3"``) saved to
    ``folder``, with the real processor classes (image processor, video processor, processor)
    and chat template over a byte-level BPE trained here. Patches of 14 (Qwen2.5) or 16
    (Qwen3) px merged 2x2 and 2 frames deep; pixel budgets of a few patches per frame."""
    import torch
    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=QWEN_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(
        ["a man walks his dog in the park at night", "describe the shot: who is there",
         "system user assistant seconds; the video is the whole shot, its frames are at"],
        trainer,
    )  # fmt: skip
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    ids = dict(zip(QWEN_SPECIAL, tokenizer.convert_tokens_to_ids(QWEN_SPECIAL), strict=True))
    patch = 14 if family == "qwen2_5" else 16
    unit = (2 * patch) ** 2  # one merged 2x2 patch, in pixels
    shared = {"patch_size": patch, "temporal_patch_size": 2, "merge_size": 2}
    budget = {"shortest_edge": unit * 4, "longest_edge": unit * 4 * 4}
    image_processor = tf.Qwen2VLImageProcessor(size=budget, **shared)
    text = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "max_position_embeddings": 1024, "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
    }  # fmt: skip
    vision = {
        "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
        "out_hidden_size": 64, "patch_size": patch, "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }  # fmt: skip
    tokens = {
        "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }  # fmt: skip
    if family == "qwen2_5":
        video_processor: Any = tf.Qwen2VLVideoProcessor(size=budget, **shared)
        processor: Any = tf.Qwen2_5_VLProcessor(
            image_processor, tokenizer, video_processor, chat_template=QWEN2_TEMPLATE
        )
        rope = {"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 1e4}
        config: Any = tf.Qwen2_5_VLConfig(
            vision_config={**vision, "window_size": 4 * patch, "fullatt_block_indexes": [0]},
            text_config={**text, "rope_parameters": rope},
            **tokens,
        )
        network: Any = tf.Qwen2_5_VLForConditionalGeneration
    else:
        video_processor = tf.Qwen3VLVideoProcessor(size=budget, **shared)
        processor = tf.Qwen3VLProcessor(
            image_processor, tokenizer, video_processor, chat_template=QWEN3_TEMPLATE
        )
        rope = {
            "rope_type": "default", "mrope_section": [6, 5, 5], "mrope_interleaved": True,
            "rope_theta": 1e4,
        }  # fmt: skip
        config = tf.Qwen3VLConfig(
            vision_config={
                **vision,
                "num_position_embeddings": 16,
                "deepstack_visual_indexes": [0],
            },
            text_config={**text, "head_dim": 32, "rope_parameters": rope},
            **tokens,
        )
        network = tf.Qwen3VLForConditionalGeneration
    torch.manual_seed(0)
    network(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session", params=["qwen2_5", "qwen3"])
def qwen_vl_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not TORCHVISION:
        pytest.skip("transformers' video processors need torchvision, not installed here")
    return tiny_qwen_vl(tmp_path_factory.mktemp(request.param), request.param)


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
