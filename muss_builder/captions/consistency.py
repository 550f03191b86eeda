"""Does a caption agree with the measured facts? Each problem is one short sentence.

Checked for a shot caption: every ``[tag]`` is a subject of the sample and of this shot, every
subject of the shot is named, and a shot scale the caption states is at most one step from
the measured one (a "close-up" of a long shot is a contradiction; "medium" for a medium
close-up is not). For a global caption: every tag is a subject of the sample.
"""

from __future__ import annotations

import re
from typing import Any

from muss_builder.captions.facts import SCALES

TAG = re.compile(r"\[([SO]\d+)\]")
# longest phrases first, so "extreme close-up" is not also read as "close-up"
_SCALE_PHRASES = (
    ("extreme close-up", "extreme_close_up"),
    ("extreme close up", "extreme_close_up"),
    ("medium close-up", "medium_close_up"),
    ("medium close up", "medium_close_up"),
    ("extreme long shot", "extreme_long"),
    ("extreme wide shot", "extreme_long"),
    ("medium long shot", "medium_long"),
    ("medium wide shot", "medium_long"),
    ("full shot", "medium_long"),
    ("close-up", "close_up"),
    ("close up", "close_up"),
    ("closeup", "close_up"),
    ("medium shot", "medium"),
    ("long shot", "long"),
    ("wide shot", "long"),
)


def tags_in(text: str) -> list[str]:
    return TAG.findall(text)


def stated_scales(text: str) -> list[str]:
    lowered = text.lower()
    found = []
    for phrase, scale in _SCALE_PHRASES:
        if phrase in lowered:
            found.append(scale)
            lowered = lowered.replace(phrase, " ")
    return found


def shot_caption_issues(
    caption: str, facts: dict[str, Any], sample_subjects: list[str]
) -> list[str]:
    issues = []
    in_shot = {s["id"] for s in facts["subjects"]}
    named = set(tags_in(caption))
    for t in sorted(named - set(sample_subjects)):
        issues.append(f"names [{t}], not a subject of the sample")
    for t in sorted((named & set(sample_subjects)) - in_shot):
        issues.append(f"names [{t}], who is not in this shot")
    for t in sorted(in_shot - named):
        issues.append(f"leaves out [{t}], who is in this shot")
    measured = SCALES.index(facts["scale"])
    if facts["subjects"]:  # without a subject the scale is a guess: nothing to contradict
        for scale in stated_scales(caption):
            if abs(SCALES.index(scale) - measured) > 1:
                issues.append(
                    f"says {scale.replace('_', ' ')} on a {facts['scale'].replace('_', ' ')} shot"
                )
    return issues


def global_caption_issues(caption: str, sample_subjects: list[str]) -> list[str]:
    return [
        f"names [{t}], not a subject of the sample"
        for t in sorted(set(tags_in(caption)) - set(sample_subjects))
    ]
