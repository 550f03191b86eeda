"""The captioner in the build: facts of synthetic camera moves, re-asks against a scripted
endpoint, the cache, and a whole build whose captions come from a real (tiny) VLM."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import pytest
from conftest import FakeEndpoint

from muss_builder.captions.captioner import Captioner, CaptionItem
from muss_builder.config import CaptionsConfig, PipelineConfig
from muss_builder.media.tools import binary, run
from muss_builder.runtime.build import build
from muss_builder.shards.reader import iter_samples
from muss_builder.shards.validate import validate_dataset


def samples_of(out: Path) -> list[dict]:
    docs = []
    for shard in sorted((out / "shards").glob("*.tar")):
        docs += [json.loads(s.members["json"]) for s in iter_samples(shard)]
    return docs


@pytest.fixture(scope="module")
def camera_film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 2 s shots cut hard: a pan right (the view moves right over a still at 100 px/s),
    a static view elsewhere, and a zoom in; 384x216 at 24 fps."""
    from skimage import data

    root = tmp_path_factory.mktemp("camera")
    still = root / "still.png"
    big = cv2.resize(data.astronaut(), (1536, 1536), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(still), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    film = root / "camera.mp4"
    graph = (
        "[0]split=3[a][b][c];"
        "[a]crop=384:216:x='200+100*t':y=300,trim=duration=2,setpts=PTS-STARTPTS[pan];"
        "[b]crop=384:216:x=1000:y=1100,trim=duration=2,setpts=PTS-STARTPTS[still];"
        "[c]crop=768:432:x=600:y=500,zoompan=z='exp(0.15*it)':x='iw/2-iw/zoom/2'"
        ":y='ih/2-ih/zoom/2':d=1:s=384x216:fps=24,trim=duration=2,setpts=PTS-STARTPTS[zoom];"
        "[pan][still][zoom]concat=n=3:v=1:a=0,format=yuv420p[out]"
    )
    args = [binary("ffmpeg"), "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate", "24"]
    args += ["-i", str(still), "-filter_complex", graph, "-map", "[out]", "-r", "24"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(film)]
    run(args, what="camera test film")
    return film


def test_facts_of_a_pan_a_static_shot_and_a_zoom(
    camera_film: Path, tmp_path: Path, tiny_config: PipelineConfig
) -> None:
    summary = build([str(camera_film)], tmp_path / "out", tiny_config, executor="inline")
    assert validate_dataset(summary.out) == []
    docs = samples_of(summary.out)  # each clip once: a sample serves both tracks
    shots = [s for d in docs for s in d["shots"]]
    assert [s["facts"]["camera"]["kind"] for s in shots] == ["pan_right", "static", "zoom_in"]
    pan = shots[0]["facts"]["camera"]
    assert pan["magnitude"] == pytest.approx(100 / 384, rel=0.15)  # widths per second
    assert "the camera pans right" in shots[0]["caption"]
    assert "zooms in" in shots[2]["caption"]
    for doc in docs:  # every sample: per-shot captions, a global caption, the prompt
        assert doc["global_caption"] and all(s["caption"] for s in doc["shots"])
        assert doc["prompt"].splitlines()[0] == doc["global_caption"]
        assert doc["captioner"] == {
            "backend": "facts",
            "model": "",
            "sources": ["facts"],
            "attempts": 1,
        }
    stats = summary.stats["captions"]
    assert stats["captions"] == len(shots) + len(docs) and stats["caption_issue_rate"] == 0.0


class ScriptedVLM(FakeEndpoint):
    """A stand-in for an OpenAI-compatible VLM server. Shots of [S1] are first captioned
    without their tag and put right when re-asked; shots of [S2] always name a stranger;
    shots of [S3] always fail with a server error; global captions are fine."""

    def script(self, path: str, prompt: str, attempt: int) -> tuple[int, dict[str, str], bytes]:
        if "- [S3]" in prompt:
            return 500, {}, b'{"error": {"message": "engine down"}}'
        if "- [S2]" in prompt:
            text = "A wide shot of [S7] on a beach."
        elif "- [S1]" in prompt:
            fixed = "previous caption had these problems" in prompt
            text = "A close-up of [S1] smiling." if fixed else "A close-up of a man smiling."
        else:
            text = "[S1] and [S2] meet in a garden."
        return 200, {}, json.dumps(self.completion(text)).encode()


def shot_item(subject: str) -> CaptionItem:
    facts = {
        "scale": "close_up",
        "scale_basis": "face 0.4 of frame height",
        "camera": None,
        "lighting": None,
        "n_people": 1,
        "subjects": [{"id": subject, "kind": "face", "box": [0.2, 0.1, 0.5, 0.6]}],
        "transition_in": "cut",
    }
    return CaptionItem(["S1", "S2", "S3"], [], facts=facts)


@pytest.fixture
def vlm_server(monkeypatch: pytest.MonkeyPatch) -> Any:
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    server = ScriptedVLM()
    yield server
    server.close()


def test_reasks_fix_what_they_can_and_record_the_rest(vlm_server: Any, tmp_path: Path) -> None:
    config = CaptionsConfig(
        backend="openai",
        model="served-vlm",
        base_url=vlm_server.base_url,
        max_reasks=2,
        max_retries=1,
        timeout_s=5,
    )
    captioner = Captioner(config, tmp_path / "cache")
    s1, s2, s3 = captioner.caption_shots([shot_item("S1"), shot_item("S2"), shot_item("S3")])
    assert (s1.text, s1.source, s1.attempts, s1.issues) == (
        "A close-up of [S1] smiling.",
        "model",
        2,
        [],
    )
    assert s2.source == "model" and s2.attempts == 3  # asked, then re-asked twice
    assert "names [S7], not a subject of the sample" in s2.issues
    assert "leaves out [S2], who is in this shot" in s2.issues
    assert s3.source == "facts-fallback" and "[S3]" in s3.text
    (overall,) = captioner.caption_globals(
        [CaptionItem(["S1", "S2"], [], shot_captions=[s1.text, s2.text], shot_facts=[{}, {}])]
    )
    assert overall.text == "[S1] and [S2] meet in a garden." and overall.issues == []
    stats = captioner.stats
    assert stats.reasks == 3 and stats.failed_requests == 1
    assert stats.requests == 7 and stats.cache_hits == 0  # 3 + 2 re-asks + 1 + the global
    assert stats.prompt_tokens == 42 * (stats.requests - stats.failed_requests)
    assert stats.captions_with_issues == 2  # [S2]'s stranger, [S3]'s failed request
    # a rerun with the same cache asks the server nothing it already answered
    asked = len(vlm_server.seen)
    again = Captioner(config, tmp_path / "cache")
    assert [c.text for c in again.caption_shots([shot_item("S1"), shot_item("S2")])] == [
        s1.text,
        s2.text,
    ]
    assert again.stats.requests == 0 and again.stats.cache_hits == 5
    assert len(vlm_server.seen) == asked


def test_a_build_captioned_by_a_tiny_vlm(
    twelve_film: Any, llava_dir: Path, tmp_path: Path, tiny_config: PipelineConfig
) -> None:
    """The real transformers generation path inside a build: random weights write gibberish,
    but every sample gets model captions, a global caption and the prompt, and the stats
    count requests and tokens; a rebuild reuses the cache and asks the model nothing."""
    captions = CaptionsConfig(
        backend="transformers",
        model=str(llava_dir),
        device="cpu",
        max_new_tokens=12,
        image_side=64,
        max_reasks=1,
    )
    config = tiny_config.model_copy(update={"captions": captions})
    out = tmp_path / "out"
    summary = build([str(twelve_film.path)], out, config, executor="inline")
    assert validate_dataset(out) == []
    docs = samples_of(out)
    assert docs
    for doc in docs:
        assert doc["captioner"]["backend"] == "transformers"
        assert doc["captioner"]["sources"] == ["model"]
        assert all(isinstance(s["caption"], str) for s in doc["shots"])
        assert isinstance(doc["global_caption"], str)
    stats = summary.stats["captions"]
    assert stats["requests"] >= sum(d["n_shots"] for d in docs) + len(docs)
    assert stats["completion_tokens"] > 0 and stats["requests_per_second"] > 0
    assert 0.0 <= stats["caption_issue_rate"] <= 1.0
    shutil.rmtree(out / "films")  # forget the films, keep the caption cache
    again = build([str(twelve_film.path)], out, config, executor="inline")
    assert again.stats["captions"]["requests"] == 0
    assert again.stats["captions"]["cache_hits"] >= stats["captions"]
    assert samples_of(out) == docs
