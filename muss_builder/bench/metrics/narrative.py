"""Narrative coherence: a VLM judge answers yes/no questions about consecutive shots.

For every pair of consecutive shots ``(i, i + 1)`` the judge sees one middle frame of each
(through the captioner's backends, ``muss_builder/captions/backends.py``) with both requested
captions and is asked four questions, one request each:

- scene: do both shots take place in the same location, at the same time of day?
- subject: do the people or objects that appear in both shots look like the same ones?
- action: does the second shot plausibly continue the action of the first?
- spatial: are the positions of the subjects and the screen direction consistent?

An answer counts as yes (1) or no (0) when its first word is yes/no, else when exactly one of
the words appears in it; anything else is unanswered and left out (and noted). Per aspect,
``narrative_<aspect>`` = yes answers / answered questions; ``narrative_coherence`` = yes / answered
over all four. In [0, 1], higher is more coherent. ``None`` (and a note) without a judge,
with a single shot, or when no answer could be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

QUESTIONS: dict[str, str] = {
    "scene": "Do both shots take place in the same location, at the same time of day?",
    "subject": (
        "Do the people or objects that appear in both shots look like the same ones "
        "(same face, clothes, colours)?"
    ),
    "action": "Does the second shot plausibly continue the action of the first shot?",
    "spatial": (
        "Are the positions of the subjects and the screen direction consistent between "
        "the two shots?"
    ),
}
SYSTEM = "You judge the continuity of film shots. Answer with a single word: yes or no."
_WORD = re.compile(r"[a-z]+")


def parse_yes_no(text: str | None) -> bool | None:
    """True for yes, False for no, None when the answer says neither (or both)."""
    if not text:
        return None
    words = _WORD.findall(text.lower())
    if not words:
        return None
    if words[0] in ("yes", "no"):
        return words[0] == "yes"
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes != has_no:
        return has_yes
    return None


def prompt(caption_a: str, caption_b: str, question: str) -> str:
    return (
        "The first image is a frame of shot A, the second a frame of the next shot, B.\n"
        f"Shot A was asked to show: {caption_a}\nShot B was asked to show: {caption_b}\n"
        f"{question} Answer yes or no."
    )


@dataclass
class NarrativeResult:
    metrics: dict[str, float | None]
    answers: list[dict[str, Any]]  # one per question: pair, aspect, answer text, parsed
    note: str | None
    notes: dict[str, str] = field(default_factory=dict)  # metric -> why it is None


def narrative_coherence(
    judge: Any,
    middle_frames_rgb: list[np.ndarray],
    captions: list[str],
    max_new_tokens: int = 8,
) -> NarrativeResult:
    """Ask ``judge`` (a caption backend) the four questions for every consecutive shot pair."""
    from muss_builder.captions.backends import CaptionRequest

    keys = ["narrative_coherence", *(f"narrative_{a}" for a in QUESTIONS)]
    if judge is None or len(middle_frames_rgb) < 2:
        note = (
            "no VLM judge configured (BenchModelsConfig.judge): narrative coherence skipped"
            if judge is None
            else "a single shot has no narrative pair"
        )
        return NarrativeResult(dict.fromkeys(keys), [], note, dict.fromkeys(keys, note))
    bgr = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR) for f in middle_frames_rgb]
    asked: list[tuple[int, str]] = []
    requests = []
    for i in range(len(bgr) - 1):
        for aspect, question in QUESTIONS.items():
            asked.append((i, aspect))
            text = prompt(captions[i], captions[i + 1], question)
            requests.append(CaptionRequest(text, [bgr[i], bgr[i + 1]], SYSTEM, max_new_tokens))
    replies = judge.generate(requests)
    answers = []
    for (pair, aspect), reply in zip(asked, replies, strict=True):
        parsed = parse_yes_no(reply.text)
        answers.append(
            {"pair": pair, "aspect": aspect, "answer": reply.text, "error": reply.error,
             "yes": parsed}
        )  # fmt: skip
    metrics: dict[str, float | None] = {}
    for aspect in QUESTIONS:
        read = [a["yes"] for a in answers if a["aspect"] == aspect and a["yes"] is not None]
        metrics[f"narrative_{aspect}"] = float(np.mean(read)) if read else None
    read = [a["yes"] for a in answers if a["yes"] is not None]
    metrics = {"narrative_coherence": float(np.mean(read)) if read else None, **metrics}
    unread = len(answers) - len(read)
    note = f"{unread} of {len(answers)} judge answers unreadable or failed" if unread else None
    notes = {key: note for key, value in metrics.items() if value is None and note}
    for aspect in QUESTIONS:  # an aspect can be unreadable while others are read
        if metrics[f"narrative_{aspect}"] is None:
            asked_n = sum(a["aspect"] == aspect for a in answers)
            notes[f"narrative_{aspect}"] = (
                f"none of the {asked_n} judge answers about {aspect} was readable (or all failed)"
            )
    return NarrativeResult(metrics, answers, note, notes)
