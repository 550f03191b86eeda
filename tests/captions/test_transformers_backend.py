"""The transformers caption backend through its real path, with nothing downloaded: a tiny
randomly initialised LLaVA (a CLIP vision tower and a Llama text model, a BPE tokenizer
trained here on a few sentences) saved to and loaded from a tmp folder. Its captions are
gibberish, but batching, padding, images, token counts and failures go through the same code
a real checkpoint does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from muss_builder.captions.backends import CaptionRequest
from muss_builder.captions.transformers_backend import TransformersBackend

# ---------------------------------------------------------------------------------------------
# A tiny LLaVA, built offline


def keyframe(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


@pytest.fixture(scope="module")
def vlm(llava_dir: Path) -> TransformersBackend:
    backend = TransformersBackend(str(llava_dir), device="cpu", batch_size=3, max_image_side=40)
    backend.setup()
    return backend


def vlm_requests() -> list[CaptionRequest]:
    return [
        CaptionRequest(
            "describe the shot", [keyframe(60, 40, 0), keyframe(30, 50, 1)], "be brief", 12
        ),
        CaptionRequest("who is there in the park at night?", max_new_tokens=12),
        CaptionRequest("describe the shot", [keyframe(200, 100, 2)], max_new_tokens=5),
    ]


def test_a_tiny_vlm_captions_a_mixed_batch_deterministically(
    vlm: TransformersBackend, llava_dir: Path
) -> None:
    replies = vlm.generate(vlm_requests())
    assert len(replies) == 3
    for reply, budget in zip(replies, (12, 12, 5), strict=True):
        assert isinstance(reply.text, str) and reply.error is None
        assert reply.model == str(llava_dir) and reply.attempts == 1
        assert reply.prompt_tokens > 0 and 1 <= reply.completion_tokens <= budget
        assert reply.seconds > 0
    # the keyframes reach the model: 4 placeholder tokens per 28 px image (2x2 patches)
    with_image, text_only = vlm.generate(
        [
            CaptionRequest("describe the shot", [keyframe(60, 40, 0)]),
            CaptionRequest("describe the shot"),
        ]
    )
    assert with_image.prompt_tokens >= text_only.prompt_tokens + 4
    # greedy decoding: the same captions again, and, in float32 on a CPU with left padding,
    # whether the requests share a batch or not (the padded positions are masked out and
    # position ids follow the mask, so every row computes the same logits as alone; with
    # right padding the padded rows' captions do change)
    again = vlm.generate(vlm_requests())
    one_by_one = TransformersBackend(str(llava_dir), device="cpu", batch_size=1).generate(
        vlm_requests()
    )
    for other in (again, one_by_one):
        assert [r.text for r in other] == [r.text for r in replies]
        assert [r.completion_tokens for r in other] == [r.completion_tokens for r in replies]
        assert [r.prompt_tokens for r in other] == [r.prompt_tokens for r in replies]


def test_a_bad_request_costs_only_its_own_caption(vlm: TransformersBackend, monkeypatch) -> None:
    expected = [r.text for r in vlm.generate(vlm_requests())]
    # an unusable keyframe fails alone, before the batch runs
    broken = CaptionRequest("describe the shot", [np.zeros((0, 0, 3), np.uint8)])
    first, bad, *rest = vlm.generate([vlm_requests()[0], broken, *vlm_requests()[1:]])
    assert bad.text is None and "keyframe" in (bad.error or "") and bad.attempts == 1
    assert [first.text, *(r.text for r in rest)] == expected
    assert all(r.attempts == 1 for r in (first, *rest))

    # a batch that throws is asked again one request at a time: only the culprit is lost
    real_run = vlm._run

    def run_failing_on_poison(requests: list[CaptionRequest], batch: list[Any]) -> Any:
        if any(r.prompt == "poison" for r in requests):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_run(requests, batch)

    monkeypatch.setattr(vlm, "_run", run_failing_on_poison)
    first, bad, last = vlm.generate(
        [vlm_requests()[0], CaptionRequest("poison"), vlm_requests()[1]]
    )
    assert bad.text is None and "out of memory" in (bad.error or "") and bad.attempts == 2
    assert (first.text, last.text) == (expected[0], expected[1])
    assert first.attempts == last.attempts == 2


def test_a_missing_model_is_never_downloaded(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads models"):
        TransformersBackend(str(tmp_path / "no-such-vlm")).setup()
    # a hub id that is not in the local cache: looked up there only, never fetched
    with pytest.raises(FileNotFoundError, match="never downloads models"):
        TransformersBackend("muss-builder-tests/not-a-cached-vlm", device="cpu").setup()
