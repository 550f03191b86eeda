"""A local vision-language model as a caption backend (``"transformers"``).

Any Hugging Face model with a chat template (Qwen2-VL / Qwen2.5-VL, LLaVA, SmolVLM, ...),
loaded through ``AutoProcessor`` and ``AutoModelForImageTextToText`` from a folder or the local
Hugging Face cache, never the network (``muss_builder.core.models``). ``setup()`` loads it once
so a Ray actor can hold it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
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
from muss_builder.captions.video import VIDEO_MODEL_TYPES, VideoClip
from muss_builder.core.models import load_pretrained, pick_device
from muss_builder.core.torchvision_compat import prepare_torchvision

log = logging.getLogger(__name__)


@dataclass
class _Chat:
    """One request made ready for the processor: its chat and the pixels it refers to."""

    index: int
    messages: list[dict[str, Any]]
    images: list[Any]  # PIL RGB keyframes, one per image part
    clip: VideoClip | None = None  # the video part's clip, when the model reads video


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

    Video (``video``: auto/on/off): a model whose processor has a video processor and that
    reads clips natively (Qwen2-VL, Qwen2.5-VL, Qwen3-VL; any model with a video processor
    when ``on``) gets a request's ``video`` as one video part instead of its keyframes, with
    the frames' times in the prompt and in the processor's video metadata (Qwen3-VL writes
    them into the prompt as ``<t seconds>`` markers; Qwen2.5-VL turns the clip's frame rate
    into the time positions of its rotary embedding). Image-only models keep the keyframes.
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
        video: str = "auto",
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
        self.video = video
        self.reads_video = False  # decided in setup(), from the loaded processor and model
        self._processor: Any = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._device = "cpu"
        self._stop_ids: set[int] = set()

    def setup(self) -> None:
        import torch

        prepare_torchvision()  # before transformers builds a processor
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self._device = pick_device(self.device)
        dtype = self._torch_dtype(torch)
        try:
            processor = load_pretrained(AutoProcessor, self.model)
        except ImportError as err:  # e.g. the Qwen-VL video processors need torchvision
            raise ImportError(
                f"the processor of caption model {self.model!r} needs a library that is not "
                f"installed: {str(err).strip().splitlines()[0]} Install it (for torchvision, "
                "the build matching your torch) and run again."
            ) from err
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
        self.reads_video = self._reads_video(processor, network)

    def sends_video(self) -> bool:
        return self.reads_video

    def _reads_video(self, processor: Any, network: Any) -> bool:
        if self.video == "off":
            return False
        has_video_processor = getattr(processor, "video_processor", None) is not None
        native = network.config.model_type in VIDEO_MODEL_TYPES
        if self.video == "on" and not has_video_processor:
            log.warning(
                "captions.video_input is on but %s (%s) has no video processor: shots go to it "
                "as keyframes",
                self.model,
                network.config.model_type,
            )
        return has_video_processor and (native or self.video == "on")

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
        ready: list[_Chat] = []
        for i, request in enumerate(requests):
            started = time.perf_counter()
            try:
                ready.append(self._chat(i, request))
            except Exception as err:
                replies[i] = self._failed(err, time.perf_counter() - started, attempts=1)
        for start in range(0, len(ready), self.batch_size):
            batch = ready[start : start + self.batch_size]
            started = time.perf_counter()
            try:
                answers = self._run([requests[chat.index] for chat in batch], batch)
            except Exception as err:
                batch_seconds = time.perf_counter() - started
                self._free_memory()
                if len(batch) == 1:
                    replies[batch[0].index] = self._failed(err, batch_seconds, attempts=1)
                    continue
                log.warning(
                    "caption batch of %d failed (%s): retrying one by one",
                    len(batch),
                    describe_error(err),
                )
                for chat in batch:
                    replies[chat.index] = self._alone(requests[chat.index], chat, batch_seconds)
                continue
            seconds = time.perf_counter() - started
            for chat, (text, n_prompt, n_done) in zip(batch, answers, strict=True):
                replies[chat.index] = CaptionReply(text, self.model, n_prompt, n_done, seconds, 1)
        assert all(reply is not None for reply in replies)
        return replies  # type: ignore[return-value]

    def _alone(
        self,
        request: CaptionRequest,
        item: _Chat,
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

    def _chat(self, index: int, request: CaptionRequest) -> _Chat:
        """The standard chat messages of a request, and its pixels in the same order: the
        clip as one video part when the model reads video, else a part per keyframe."""
        from PIL import Image

        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append(
                {"role": "system", "content": [{"type": "text", "text": request.system}]}
            )
        clip = request.video if self.reads_video and request.video else None
        if clip is not None:
            _check_clip(clip)
            content: list[dict[str, Any]] = [{"type": "video"}]
            content.append({"type": "text", "text": f"{request.prompt}\n{clip.note()}"})
            messages.append({"role": "user", "content": content})
            return _Chat(index, messages, [], clip)
        images = [
            Image.fromarray(cv2.cvtColor(shrink(image, self.max_image_side), cv2.COLOR_BGR2RGB))
            for image in request.images
        ]
        content = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": content})
        return _Chat(index, messages, images)

    def _run(
        self,
        requests: list[CaptionRequest],
        batch: list[_Chat],
    ) -> list[tuple[str, int, int]]:
        """(text, prompt tokens, completion tokens) per request, one ``generate`` call."""
        import torch

        prompts = [
            self._processor.apply_chat_template(chat.messages, add_generation_prompt=True)
            for chat in batch
        ]
        # Images go per conversation (nested), the one layout every processor accepts; a
        # batch with none goes text-only. Clips go flat, in the order of their video parts.
        images = [chat.images for chat in batch]
        clips = [chat.clip for chat in batch if chat.clip is not None]
        bos = self._tokenizer.bos_token
        inputs = self._processor(
            text=prompts,
            images=images if any(images) else None,
            padding=True,
            return_tensors="pt",
            # a template that writes the BOS itself must not get a second one
            add_special_tokens=not (bos and prompts[0].startswith(bos)),
            **(_video_inputs(clips) if clips else {}),
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


def _check_clip(clip: VideoClip) -> None:
    """A clip the processor can take: 2+ same-sized uint8 colour frames, a time for each."""
    shapes = {np.asarray(f).shape for f in clip.frames}
    frame = np.asarray(clip.frames[0]) if clip.frames else np.zeros(0)
    if len(clip.frames) < 1 or len(shapes) != 1 or frame.dtype != np.uint8 or frame.ndim != 3:
        raise ValueError(
            f"a clip needs same-sized uint8 BGR frames, got shapes {sorted(shapes)} of "
            f"dtype {frame.dtype}"
        )
    if len(clip.times) != len(clip.frames):
        raise ValueError(f"a clip has {len(clip.frames)} frames but {len(clip.times)} times")


def _video_inputs(clips: list[VideoClip]) -> dict[str, Any]:
    """The processor's video arguments: each clip as a (T, H, W, 3) RGB array, and metadata
    that gives its frames' real times. The frames were sampled already (by the keyframe
    pass), so the processor must not sample again; times go as frame indices of a 1 kHz
    clock, which keeps millisecond times exact whatever the film's frame rate."""
    from transformers.video_utils import VideoMetadata

    videos, metadata = [], []
    for clip in clips:
        rgb = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in clip.frames])
        videos.append(rgb)
        ticks = [round(t * 1000) for t in clip.times]
        metadata.append(
            VideoMetadata(
                total_num_frames=max(round(clip.duration * 1000), ticks[-1] + 1),
                fps=1000.0,
                width=rgb.shape[2],
                height=rgb.shape[1],
                duration=clip.duration,
                frames_indices=ticks,
            )
        )
    return {"videos": videos, "video_metadata": metadata, "do_sample_frames": False}
