"""Progressive captioning of a film's samples: shot captions first, then one global caption.

1. Every shot of every sample gets a caption grounded in its facts and subject tags. The
   ``facts`` backend writes it from the facts; a model backend is asked with the keyframes,
   or, for a model that reads video, with the shot as a clip and its frames' times
   (``video.py``), and its answer is checked (``consistency.py``): a caption that fails is
   asked again with its problems listed, at most ``max_reasks`` times, then kept with its
   problems recorded.
2. Each sample then gets a global caption written by a second, text-led pass (MuSS's
   stage-2 aggregation) from its (checked) shot captions, its measured shot facts and its
   subject tags, so the two levels cannot disagree, with the same check on subject tags.

A model reply is cached on disk by (backend, model, prompt, image and clip hashes, token
budget), so a
rerun or a resumed film asks nothing twice. A request that fails outright falls back to the
facts sentence, labelled as such, so no sample is left without captions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from muss_builder.captions.consistency import global_caption_issues, shot_caption_issues
from muss_builder.captions.text import (
    GLOBAL_SYSTEM,
    SHOT_SYSTEM,
    facts_global_caption,
    facts_shot_caption,
    global_prompt,
    shot_prompt,
)
from muss_builder.captions.video import VideoClip, model_reads_video
from muss_builder.config import CaptionsConfig
from muss_builder.core.models import loaded_model
from muss_builder.core.storage import write_atomic


@dataclass
class Caption:
    text: str
    source: str  # "facts", "model" or "facts-fallback"
    attempts: int
    issues: list[str] = field(default_factory=list)


@dataclass
class CaptionItem:
    """One caption to write: a shot (facts set) or a sample's global caption (shots set)."""

    sample_subjects: list[str]
    images: list[bytes]
    facts: dict[str, Any] | None = None
    shot_captions: list[str] | None = None
    shot_facts: list[dict[str, Any]] | None = None
    video: list[bytes] = field(default_factory=list)  # JPEG clip frames (video input)
    video_times: list[float] = field(default_factory=list)  # their seconds in the shot
    duration: float = 0.0  # the shot's seconds


@dataclass
class CaptionStats:
    backend: str
    model: str | None
    requests: int = 0
    video_requests: int = 0  # requests whose shot reached the model as a clip
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    reasks: int = 0
    failed_requests: int = 0
    captions: int = 0
    captions_with_issues: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"model_seconds": round(self.model_seconds, 4)}


def make_backend(config: CaptionsConfig) -> Any:
    """The backend of ``config``, set up; one per worker process, reused across films."""
    return loaded_model(f"captions:{config.model_dump_json()}", lambda: _new_backend(config))


def _new_backend(config: CaptionsConfig) -> Any:
    from muss_builder.captions.openai_backend import OpenAIBackend
    from muss_builder.captions.transformers_backend import TransformersBackend

    backend: Any
    if config.backend == "transformers":
        backend = TransformersBackend(
            str(config.model), device=config.device, batch_size=config.batch_size,
            max_image_side=config.image_side, video=config.video_input,
        )  # fmt: skip
    else:
        backend = OpenAIBackend(
            str(config.model), base_url=config.base_url, api_key_env=config.api_key_env,
            timeout_s=config.timeout_s, max_retries=config.max_retries,
            concurrency=config.concurrency, max_image_side=config.image_side,
            video=config.openai_video if model_reads_video(config) else "off",
        )  # fmt: skip
    backend.setup()
    return backend


class Captioner:
    def __init__(self, config: CaptionsConfig, cache_dir: Path | None = None) -> None:
        self.config = config
        self.cache_dir = cache_dir if config.cache else None
        self.stats = CaptionStats(config.backend, config.model)

    # ------------------------------------------------------------------ public

    def caption_shots(self, items: list[CaptionItem]) -> list[Caption]:
        if self.config.backend == "facts":
            return self._facts(items, lambda it: facts_shot_caption(it.facts))
        return self._ask(
            items,
            SHOT_SYSTEM,
            lambda it: shot_prompt(it.facts),
            lambda it, text: shot_caption_issues(text, it.facts, it.sample_subjects),
            lambda it: facts_shot_caption(it.facts),
        )

    def caption_globals(self, items: list[CaptionItem]) -> list[Caption]:
        if self.config.backend == "facts":
            return self._facts(
                items, lambda it: facts_global_caption(it.shot_facts, it.shot_captions)
            )
        return self._ask(
            items,
            GLOBAL_SYSTEM,
            lambda it: global_prompt(it.shot_captions, it.sample_subjects, it.shot_facts),
            lambda it, text: global_caption_issues(text, it.sample_subjects),
            lambda it: facts_global_caption(it.shot_facts, it.shot_captions),
        )

    # ------------------------------------------------------------------ internals

    def _facts(self, items: list[CaptionItem], write: Any) -> list[Caption]:
        out = []
        for item in items:
            text = write(item)
            issues = (
                shot_caption_issues(text, item.facts, item.sample_subjects)
                if item.facts is not None
                else global_caption_issues(text, item.sample_subjects)
            )
            out.append(Caption(text, "facts", 1, issues))
        self._count(out)
        return out

    def _ask(self, items, system, prompt_of, issues_of, fallback_of) -> list[Caption]:  # type: ignore[no-untyped-def]
        from muss_builder.captions.backends import CaptionRequest

        results: list[Caption | None] = [None] * len(items)
        feedback: dict[int, list[str]] = {}
        pending = list(range(len(items)))
        for attempt in range(1, self.config.max_reasks + 2):
            if not pending:
                break
            if attempt > 1:
                self.stats.reasks += len(pending)
            requests = []
            for i in pending:
                prompt = prompt_of(items[i])
                if feedback.get(i):
                    # the attempt number keeps a second re-ask from being the first one again
                    # (same prompt: same greedy answer, or a cache hit)
                    prompt += (
                        f"\nAttempt {attempt}. Your previous caption had these problems; "
                        "fix them: " + "; ".join(feedback[i])
                    )
                images = [_decode(b) for b in items[i].images]
                request = CaptionRequest(
                    prompt, images, system, self.config.max_new_tokens, _clip(items[i])
                )
                requests.append((request, items[i]))
            replies = self._generate(requests)
            still = []
            for i, reply in zip(pending, replies, strict=True):
                if reply is None:  # failed after the backend's own retries: no re-ask
                    results[i] = Caption(
                        fallback_of(items[i]), "facts-fallback", attempt,
                        ["model request failed; facts caption used"],
                    )  # fmt: skip
                    continue
                problems = issues_of(items[i], reply)
                results[i] = Caption(reply, "model", attempt, problems)
                if problems:
                    feedback[i] = problems
                    still.append(i)
            pending = still
        final = [r for r in results if r is not None]
        self._count(final)
        return final

    def _generate(self, requests: list[tuple[Any, CaptionItem]]) -> list[str | None]:
        """Texts for the requests (None = failed), through the cache."""
        texts: list[str | None] = [None] * len(requests)
        todo, keys = [], []
        for n, (request, item) in enumerate(requests):
            key = self._key(request, item)
            cached = self._cache_get(key)
            if cached is not None:
                texts[n] = cached
                self.stats.cache_hits += 1
            else:
                todo.append(n)
                keys.append(key)
        if todo:
            backend = make_backend(self.config)
            started = time.perf_counter()
            replies = backend.generate([requests[n][0] for n in todo])
            self.stats.model_seconds += time.perf_counter() - started
            clips = backend.sends_video()
            for n, key, reply in zip(todo, keys, replies, strict=True):
                self.stats.requests += 1
                self.stats.video_requests += int(clips and requests[n][0].video is not None)
                self.stats.prompt_tokens += reply.prompt_tokens
                self.stats.completion_tokens += reply.completion_tokens
                if reply.text is None or not reply.text.strip():
                    self.stats.failed_requests += 1
                    continue
                texts[n] = reply.text.strip()
                self._cache_put(key, texts[n])
        return texts

    def _key(self, request: Any, item: CaptionItem) -> str:
        payload: dict[str, Any] = {
            "backend": self.config.backend,
            "model": self.config.model,
            "system": request.system,
            "prompt": request.prompt,
            "images": [hashlib.sha256(b).hexdigest() for b in item.images],
            "max_new_tokens": request.max_new_tokens,
        }
        if item.video:  # only then: keyframe-only requests keep the keys they always had
            payload["video"] = [hashlib.sha256(b).hexdigest() for b in item.video]
            payload["video_times"] = item.video_times
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def _cache_get(self, key: str) -> str | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / key[:2] / f"{key}.json"
        try:
            return json.loads(path.read_text())["text"]
        except (OSError, ValueError, KeyError):
            return None

    def _cache_put(self, key: str, text: str) -> None:
        if self.cache_dir is None:
            return
        path = self.cache_dir / key[:2] / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"text": text}).encode())

    def _count(self, captions: list[Caption]) -> None:
        self.stats.captions += len(captions)
        self.stats.captions_with_issues += sum(bool(c.issues) for c in captions)


def _decode(jpeg: bytes) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def _clip(item: CaptionItem) -> VideoClip | None:
    """The shot's clip, when the keyframe pass kept one (video input on)."""
    if not item.video:
        return None
    return VideoClip([_decode(b) for b in item.video], list(item.video_times), item.duration)
