"""A local vision-language model as a caption backend (``"transformers"``).

Any Hugging Face model with a chat template (Qwen2-VL / Qwen2.5-VL, LLaVA, SmolVLM, ...),
loaded through ``AutoProcessor`` and ``AutoModelForImageTextToText`` from a folder or the local
Hugging Face cache, never the network (``muss_builder.core.models``). ``setup()`` loads it once
so a Ray actor can hold it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import cv2

from muss_builder.captions.backends import (
    CaptionBackend,
    CaptionReply,
    CaptionRequest,
    describe_error,
    shrink,
)
from muss_builder.core.models import load_pretrained, pick_device

log = logging.getLogger(__name__)


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

        self._device = pick_device(self.device)
        dtype = self._torch_dtype(torch)
        processor = load_pretrained(AutoProcessor, self.model)
        network = load_pretrained(AutoModelForImageTextToText, self.model, dtype=dtype)
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
                    describe_error(err),
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
        log.warning("caption request failed with %s: %s", self.model, describe_error(err))
        return CaptionReply(None, self.model, 0, 0, seconds, attempts, describe_error(err))

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
