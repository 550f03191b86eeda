"""Video-input captioning through the real code paths: tiny random Qwen2.5-VL and Qwen3-VL
models built from their configs (their real processor classes, video processors and chat
templates), the clip frames the keyframe pass collects, the captioner, a whole build, and the
OpenAI backend's video_url / timestamped-frames content against the scripted endpoint.
Random weights write gibberish: these tests check what reaches the model and where its text
goes, not the words."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from muss_builder.captions.backends import CaptionRequest
from muss_builder.captions.captioner import Captioner, CaptionItem
from muss_builder.captions.collector import ShotPixelCollector, VideoSampling
from muss_builder.captions.openai_backend import OpenAIBackend
from muss_builder.captions.transformers_backend import TransformersBackend
from muss_builder.captions.video import VideoClip, clip_frames, model_reads_video
from muss_builder.config import CaptionsConfig, PipelineConfig
from muss_builder.media.tools import binary
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe


def frames(n: int, height: int = 48, width: int = 80, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), np.uint8) for _ in range(n)]


LONG = VideoClip(frames(4), [0.25, 0.75, 1.25, 1.75], 2.0)
SHORT = VideoClip(frames(2, seed=1), [0.1, 0.6], 0.8)


def requests() -> list[CaptionRequest]:
    """Two clips and a keyframe request in one batch, prompts of different lengths."""
    return [
        CaptionRequest("describe the shot", video=LONG, system="be brief", max_new_tokens=6),
        CaptionRequest("who is there", frames(1, 40, 60, seed=2), max_new_tokens=6),
        CaptionRequest("describe", video=SHORT, max_new_tokens=4),
    ]


class Spy:
    """Records the keyword arguments of the model's ``generate`` calls."""

    def __init__(self, backend: TransformersBackend) -> None:
        self.calls: list[dict[str, Any]] = []
        real = backend._model.generate

        def generate(**kwargs: Any) -> Any:
            self.calls.append(kwargs)
            return real(**kwargs)

        backend._model.generate = generate


@pytest.fixture(scope="module")
def qwen(qwen_vl_dir: Path) -> TransformersBackend:
    backend = TransformersBackend(str(qwen_vl_dir), device="cpu", batch_size=3)
    backend.setup()
    return backend


def test_qwen_vl_reads_clips_with_timestamps_in_a_left_padded_batch(
    qwen: TransformersBackend, qwen_vl_dir: Path
) -> None:
    family = json.loads((qwen_vl_dir / "config.json").read_text())["model_type"]
    assert qwen.reads_video
    spy = Spy(qwen)
    replies = qwen.generate(requests())
    (call,) = spy.calls  # one batch, one generate call
    for reply, budget in zip(replies, (6, 6, 4), strict=True):
        assert isinstance(reply.text, str) and reply.error is None and reply.attempts == 1
        assert 1 <= reply.completion_tokens <= budget
    # the two clips went as videos: 4 frames = 2 temporal patches, 2 frames = 1
    grid = call["video_grid_thw"]
    assert grid[:, 0].tolist() == [2, 1]
    assert call["pixel_values_videos"].shape[0] == int(grid.prod(dim=1).sum())
    assert call["image_grid_thw"].shape == (1, 3)  # the keyframe request, as an image
    tok = qwen._tokenizer
    video_pad, image_pad = tok.convert_tokens_to_ids(["<|video_pad|>", "<|image_pad|>"])
    ids, mask = call["input_ids"], call["attention_mask"]
    n_video = (ids == video_pad).sum(dim=1).tolist()
    assert n_video[0] == int(grid[0].prod()) // 4 and n_video[2] == int(grid[1].prod()) // 4
    assert n_video[1] == 0 and (ids[1] == image_pad).sum() > 0
    # left padding: every row ends at the last column, shorter rows start with pad tokens
    assert bool(mask[:, -1].all())
    lengths = mask.sum(dim=1).tolist()
    assert lengths[0] > lengths[2] and lengths[0] > lengths[1] and lengths[0] == ids.shape[1]
    for row in (1, 2):
        pad = ids.shape[1] - lengths[row]
        assert not mask[row, :pad].any() and bool((ids[row, :pad] == tok.pad_token_id).all())
    assert [r.prompt_tokens for r in replies] == lengths
    # the frames' times are in the prompt, in words for every model...
    first = tok.decode(ids[0][mask[0].bool()])
    assert "2.0 s long; its 4 frames are at 0.25, 0.75, 1.25, 1.75 s." in first
    assert "0.10, 0.60 s" in tok.decode(ids[2])
    # ...and natively: Qwen3-VL marks each 2-frame patch with its mean time; Qwen2.5-VL
    # turns the clip's rate into seconds per temporal patch for its time positions
    if family == "qwen3_vl":
        assert "<0.5 seconds>" in first and "<1.5 seconds>" in first
        assert "<0.3 seconds>" in tok.decode(ids[2])  # (0.1 + 0.6) / 2, one decimal
    else:
        assert call["second_per_grid_ts"].tolist() == pytest.approx([1.0, 0.8])
        assert "You are a helpful assistant." in tok.decode(ids[1])  # the real template's
    # left padding keeps each row's answer what it is alone
    alone = TransformersBackend(str(qwen_vl_dir), device="cpu", batch_size=1)
    assert [r.text for r in alone.generate(requests())] == [r.text for r in replies]


def test_video_off_gives_a_video_model_the_keyframes(qwen_vl_dir: Path) -> None:
    keyframes = frames(2, seed=3)
    request = CaptionRequest("describe", keyframes, video=LONG, max_new_tokens=3)
    off = TransformersBackend(str(qwen_vl_dir), device="cpu", video="off")
    off.setup()
    spy = Spy(off)
    (reply,) = off.generate([request])
    assert not off.reads_video and reply.text is not None
    assert "pixel_values_videos" not in spy.calls[0]
    assert spy.calls[0]["image_grid_thw"].shape == (2, 3)  # the two keyframes instead
    assert "frames are at" not in off._tokenizer.decode(spy.calls[0]["input_ids"][0])
    # auto: decided from the checkpoint's config before any model is loaded
    make = CaptionsConfig.model_validate
    assert model_reads_video(make({"backend": "transformers", "model": str(qwen_vl_dir)}))
    assert not model_reads_video(
        make({"backend": "transformers", "model": str(qwen_vl_dir), "video_input": "off"})
    )


def test_image_only_models_keep_the_keyframes(llava_dir: Path) -> None:
    """LLaVA has no video processor: even with video input on, it is shown the keyframes,
    and with auto the keyframe pass keeps no clip for it."""
    keyframes = frames(2, seed=3)
    request = CaptionRequest("describe", keyframes, video=LONG, max_new_tokens=3)
    llava = TransformersBackend(str(llava_dir), device="cpu", video="on")
    llava.setup()
    assert not llava.reads_video and not llava.sends_video()
    (with_clip,) = llava.generate([request])
    (without,) = llava.generate([CaptionRequest("describe", keyframes, max_new_tokens=3)])
    assert (with_clip.text, with_clip.prompt_tokens) == (without.text, without.prompt_tokens)
    make = CaptionsConfig.model_validate
    assert not model_reads_video(make({"backend": "transformers", "model": str(llava_dir)}))
    assert not model_reads_video(
        make({"backend": "transformers", "model": "muss-builder-tests/not-a-cached-vlm"})
    )
    assert model_reads_video(make({"backend": "openai", "model": "Qwen/Qwen3-VL-8B-Instruct"}))
    assert not model_reads_video(make({"backend": "openai", "model": "gpt-4o-mini"}))
    assert model_reads_video(make({"backend": "openai", "model": "gpt-4o", "video_input": "on"}))
    assert not model_reads_video(make({"video_input": "on"}))  # the facts backend


def test_a_processor_that_needs_torchvision_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from muss_builder.captions import transformers_backend

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise ImportError("\nQwen3VLVideoProcessor requires the Torchvision library but it was")

    monkeypatch.setattr(transformers_backend, "load_pretrained", missing)
    with pytest.raises(ImportError, match=r"caption model 'Qwen/Qwen3-VL-8B-Instruct' .*Torch"):
        TransformersBackend("Qwen/Qwen3-VL-8B-Instruct", device="cpu").setup()


def test_clip_frames_ride_the_keyframe_pass() -> None:
    """The collector picks each shot's clip frames at video_fps inside its clean span, asks
    the keyframe pass for them with the motion frames, and keeps them within the pixel
    budget with their times in the shot."""
    fps = 24.0
    shots = [
        Shot(0, 0, 48, 0.0, 2.0, "start"),  # 2 s: 4 frames at 2 fps
        Shot(1, 48, 60, 2.0, 2.5, "cut"),  # 0.5 s: at least 2
        Shot(2, 60, 300, 2.5, 12.5, "dissolve", (56, 64)),  # 10 s: capped at 6
    ]
    chosen = clip_frames(shots, fps=2.0, max_frames=6)
    assert chosen[0] == [6, 18, 30, 42] and len(chosen[1]) == 2 and len(chosen[2]) == 6
    assert min(chosen[2]) > 64  # after the incoming dissolve
    pts = np.arange(300) / fps + 10.0  # a stream whose first frame is at 10 s
    collector = ShotPixelCollector(
        shots, pts, motion_per_shot=3, images_per_shot=1, image_side=64,
        video=VideoSampling(fps=2.0, max_frames=6, max_pixels=64 * 48),
    )  # fmt: skip
    wanted = collector.wanted()
    for shot in shots:
        assert set(chosen[shot.index]) <= set(wanted[shot.index])
        assert set(collector.motion[shot.index]) <= set(wanted[shot.index])
    big = np.full((360, 640, 3), 128, np.uint8)
    for shot in shots:
        for frame in wanted[shot.index]:
            collector.add(Keyframe(shot.index, frame, big), frame == wanted[shot.index][0])
    pixels = collector.finish()
    assert pixels[0].video_times == [0.25, 0.75, 1.25, 1.75] and pixels[0].duration == 2.0
    assert pixels[2].video_times[0] > (64 - 60) / fps
    jpeg = cv2.imdecode(np.frombuffer(pixels[0].video[0], np.uint8), cv2.IMREAD_COLOR)
    assert jpeg.shape[0] * jpeg.shape[1] <= 64 * 48 and jpeg.shape[1] > jpeg.shape[0]
    assert all(len(p.video) == len(p.video_times) for p in pixels.values())
    # video off: the pass is asked for the motion frames only, and no clip is kept
    plain = ShotPixelCollector(shots, pts, motion_per_shot=3)
    assert plain.wanted() == plain.motion


def test_the_captioner_sends_clips_and_keeps_the_model_text(
    qwen_vl_dir: Path, tmp_path: Path
) -> None:
    config = CaptionsConfig(
        backend="transformers", model=str(qwen_vl_dir), device="cpu", max_new_tokens=8,
        max_reasks=0, batch_size=2,
    )  # fmt: skip
    jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in LONG.frames]
    facts = {
        "scale": "medium", "scale_basis": "face", "camera": {"kind": "pan_left", "magnitude": 0.2},
        "lighting": None, "n_people": 1, "transition_in": "cut",
        "subjects": [{"id": "S1", "kind": "face", "box": [0.1, 0.1, 0.5, 0.6]}],
    }  # fmt: skip
    item = CaptionItem(["S1"], [], facts=facts, video=jpegs, video_times=LONG.times, duration=2.0)
    captioner = Captioner(config, tmp_path / "cache")
    (caption,) = captioner.caption_shots([item])
    # what the backend says for the same request is what the shot gets
    backend = TransformersBackend(str(qwen_vl_dir), device="cpu")
    spy_calls: list[dict[str, Any]] = []
    backend.setup()
    real = backend._model.generate
    backend._model.generate = lambda **kw: spy_calls.append(kw) or real(**kw)
    from muss_builder.captions.text import SHOT_SYSTEM, shot_prompt

    clip = VideoClip(
        [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in jpegs],
        LONG.times,
        2.0,
    )
    (direct,) = backend.generate([CaptionRequest(shot_prompt(facts), [], SHOT_SYSTEM, 8, clip)])
    assert spy_calls[0]["video_grid_thw"][0, 0] == 2
    expected = direct.text or ""
    if caption.source == "model":
        assert caption.text == expected.strip()
    else:  # gibberish that came back empty falls back to the facts sentence
        assert caption.source == "facts-fallback" and not expected.strip()
    assert captioner.stats.requests == 1 and captioner.stats.prompt_tokens > 0
    assert captioner.stats.video_requests == 1
    # the second pass: the shot captions with each shot's measured facts and the tags
    seen: list[CaptionRequest] = []
    original = TransformersBackend.generate

    def record(self: TransformersBackend, reqs: list[CaptionRequest]) -> Any:
        seen.extend(reqs)
        return original(self, reqs)

    TransformersBackend.generate = record  # type: ignore[method-assign]
    try:
        (overall,) = captioner.caption_globals(
            [CaptionItem(["S1"], [], shot_captions=[caption.text], shot_facts=[facts])]
        )
    finally:
        TransformersBackend.generate = original  # type: ignore[method-assign]
    assert overall.text
    assert "facts: scale medium; the camera pans left; subjects [S1]" in seen[0].prompt
    assert "Subjects of this clip: [S1]" in seen[0].prompt and seen[0].video is None


def test_openai_sends_clips_as_mp4_video_url_or_timestamped_frames(endpoint: Any) -> None:
    def client(video: str) -> OpenAIBackend:
        return OpenAIBackend("served-vlm", base_url=endpoint.base_url, video=video, max_retries=0)

    request = CaptionRequest("describe", frames(1, seed=4), video=LONG, max_new_tokens=9)
    (reply,) = client("mp4").generate([request])
    assert reply.text and reply.text.startswith("caption for describe\nThe video is")
    _, body = endpoint.seen[-1]
    video, text = body["messages"][-1]["content"]
    assert text["text"].endswith("its 4 frames are at 0.25, 0.75, 1.25, 1.75 s.")
    assert video["type"] == "video_url"
    url = video["video_url"]["url"]
    assert url.startswith("data:video/mp4;base64,")
    probe = subprocess.run(
        [binary("ffprobe"), "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames:format=duration", "-of", "json", "-"],
        input=base64.b64decode(url.split(",", 1)[1]), capture_output=True, check=True,
    ).stdout  # fmt: skip
    info = json.loads(probe)
    stream = info["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 80, 48)
    assert int(stream["nb_read_frames"]) == 4  # every sampled frame, none added
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.05)  # the shot's pace

    (reply,) = client("frames").generate([request])
    _, body = endpoint.seen[-1]
    *parts, text = body["messages"][-1]["content"]
    assert [p["text"] for p in parts[::2]] == ["<0.25 s>", "<0.75 s>", "<1.25 s>", "<1.75 s>"]
    assert all(p["type"] == "image_url" for p in parts[1::2]) and len(parts) == 8
    # video off (an image-only server): the keyframes, as before
    (reply,) = client("off").generate([request])
    _, body = endpoint.seen[-1]
    image, text = body["messages"][-1]["content"]
    assert image["type"] == "image_url" and text["text"] == "describe"


def test_a_build_captions_shots_from_clips(
    twelve_film: Any, qwen_vl_dir: Path, tmp_path: Path, tiny_config: PipelineConfig, monkeypatch
) -> None:
    """Inside a whole build: the keyframe pass collects the clips, the Qwen-VL model gets
    each shot as a video, and its text becomes the samples' captions."""
    sent: list[int] = []
    real_run = TransformersBackend._run

    def run(self: TransformersBackend, reqs: list[CaptionRequest], batch: list[Any]) -> Any:
        sent.extend(len(chat.clip.frames) for chat in batch if chat.clip is not None)
        return real_run(self, reqs, batch)

    monkeypatch.setattr(TransformersBackend, "_run", run)
    captions = CaptionsConfig(
        backend="transformers", model=str(qwen_vl_dir), device="cpu", max_new_tokens=8,
        max_reasks=0, video_fps=2.0, video_max_frames=4, video_max_pixels=64 * 64,
    )  # fmt: skip
    config = tiny_config.model_copy(update={"captions": captions})
    from muss_builder.runtime.build import build
    from muss_builder.shards.reader import iter_samples

    summary = build([str(twelve_film.path)], tmp_path / "out", config, executor="inline")
    docs = [
        json.loads(s.members["json"])
        for shard in sorted((tmp_path / "out" / "shards").glob("*.tar"))
        for s in iter_samples(shard)
    ]
    assert docs and sent and all(2 <= n <= 4 for n in sent)
    stats = summary.stats["captions"]
    assert stats["video_requests"] == len(sent) and stats["requests"] > len(sent)  # + globals
    for doc in docs:
        assert doc["captioner"]["backend"] == "transformers"
        assert all(isinstance(s["caption"], str) for s in doc["shots"])
        assert isinstance(doc["global_caption"], str)


def test_video_fields_enter_the_config_hash_only_for_model_captions() -> None:
    """A build's films are rebuilt when what makes their captions changes, not otherwise:
    the facts backend ignores the video fields, so outputs built before them still resume."""
    from muss_builder.config import load_pipeline

    base = load_pipeline("tiny")

    def with_captions(**update: Any) -> str:
        captions = base.captions.model_copy(update=update)
        return base.model_copy(update={"captions": captions}).fingerprint()

    assert with_captions(video_fps=8.0, video_input="off") == base.fingerprint()
    qwen = {"backend": "transformers", "model": "Qwen/Qwen3-VL-8B-Instruct"}
    assert with_captions(**qwen) != with_captions(**qwen, video_fps=8.0)
