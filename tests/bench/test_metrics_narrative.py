"""Narrative coherence through the captioner's OpenAI-compatible backend.

``ScriptedJudge`` is a named fake of a remote API: a local HTTP server standing in for an
OpenAI-compatible VLM endpoint (a vLLM server, say), answering each question with a scripted
yes or no, so the parsing and scoring are checked against known answers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from muss_builder.bench.metrics import MetricModels, load_bench_models, score_video
from muss_builder.bench.metrics.narrative import QUESTIONS
from muss_builder.train.script import Script, ScriptShot

# what the fake judge answers to each question (found by its text in the prompt)
ANSWERS = {"scene": "Yes.", "subject": "No, the faces differ.", "action": "yes", "spatial": "Hmm"}


class ScriptedJudge:
    """A fake OpenAI-compatible ``/v1/chat/completions`` endpoint with scripted answers."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                judge.bodies.append(body)
                prompt = body["messages"][-1]["content"][-1]["text"]
                aspect = next(a for a, q in QUESTIONS.items() if q in prompt)
                reply = {
                    "model": "judge-vlm",
                    "choices": [{"message": {"role": "assistant", "content": ANSWERS[aspect]}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 2},
                }
                payload = json.dumps(reply).encode()
                self.send_response(judge.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedJudge]:
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)  # 127.0.0.1 is reached directly
    server = ScriptedJudge()
    yield server
    server.close()


def three_shots() -> tuple[np.ndarray, Script]:
    frames = np.concatenate([np.full((12, 64, 96, 3), value, np.uint8) for value in (30, 120, 220)])
    captions = ["[S1] opens the door.", "[S1] walks in.", "[S1] sits down."]
    shots = [ScriptShot(c, 12, "start" if i == 0 else "cut") for i, c in enumerate(captions)]
    return frames, Script("n", "[S1] comes home", shots, fps=24.0, width=96, height=64)


def models_with(judge: ScriptedJudge | None, **judge_cfg: Any) -> MetricModels:
    cfg: dict[str, Any] = {
        "face_pack": None,
        "text_embedder": None,
        "device": "cpu",
        "frames_per_shot": 1,
    }
    if judge is not None:
        cfg["judge"] = {"model": "judge-vlm", "base_url": judge.base_url, **judge_cfg}
    return load_bench_models(cfg)


def test_without_a_judge_narrative_coherence_is_skipped_with_a_note(tmp_path: Path) -> None:
    frames, script = three_shots()
    score = score_video(frames, script, tmp_path, models_with(None))
    assert score.metrics["narrative_coherence"] is None
    assert "no VLM judge configured" in score.notes["narrative_coherence"]
    assert score.judge_answers == []


def test_the_judges_yes_no_answers_become_the_score(judge: ScriptedJudge, tmp_path: Path) -> None:
    frames, script = three_shots()
    score = score_video(frames, script, tmp_path, models_with(judge))
    # 2 shot pairs x 4 questions; "Hmm" (spatial) is unreadable and left out:
    # scene yes, subject no, action yes -> 4 yes of 6 read
    assert score.metrics["narrative_coherence"] == pytest.approx(4 / 6)
    assert score.metrics["narrative_scene"] == 1.0
    assert score.metrics["narrative_subject"] == 0.0
    assert score.metrics["narrative_action"] == 1.0
    assert score.metrics["narrative_spatial"] is None
    assert "2 of 8 judge answers unreadable" in score.notes["narrative_coherence"]
    assert len(score.judge_answers) == 8
    # each question shows the judge both shots' frames and both requested captions
    assert len(judge.bodies) == 8
    for body in judge.bodies:
        content = body["messages"][-1]["content"]
        assert [part["type"] for part in content] == ["image_url", "image_url", "text"]
    prompts = [b["messages"][-1]["content"][-1]["text"] for b in judge.bodies]
    assert sum("[S1] opens the door." in p and "[S1] walks in." in p for p in prompts) == 4
    assert sum("[S1] walks in." in p and "[S1] sits down." in p for p in prompts) == 4


def test_a_failing_judge_leaves_the_score_unknown_and_says_so(
    judge: ScriptedJudge, tmp_path: Path
) -> None:
    judge.status = 400  # a client error: not retried
    frames, script = three_shots()
    score = score_video(frames, script, tmp_path, models_with(judge, max_retries=0))
    assert score.metrics["narrative_coherence"] is None
    assert "8 of 8 judge answers unreadable or failed" in score.notes["narrative_coherence"]
    assert all(a["error"] and "HTTP 400" in a["error"] for a in score.judge_answers)
