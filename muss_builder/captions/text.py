"""Words from facts: the ``facts`` captioner's sentences and the prompts given to VLMs/LLMs.

Subjects are always named by their film subject tag (``[S1]``), so captions of different
shots and the global caption talk about the same people with the same names.
"""

from __future__ import annotations

from typing import Any

SCALE_WORDS = {
    "extreme_close_up": "an extreme close-up",
    "close_up": "a close-up",
    "medium_close_up": "a medium close-up",
    "medium": "a medium shot",
    "medium_long": "a medium long shot",
    "long": "a long shot",
    "extreme_long": "an extreme long shot",
}
MOTION_WORDS = {
    "static": "the camera is static",
    "pan_left": "the camera pans left",
    "pan_right": "the camera pans right",
    "tilt_up": "the camera tilts up",
    "tilt_down": "the camera tilts down",
    "zoom_in": "the camera zooms in",
    "zoom_out": "the camera zooms out",
    "handheld": "the camera is handheld",
}
TRANSITION_WORDS = {
    "dissolve": "After a dissolve",
    "fade_black": "After a fade from black",
    "fade_white": "After a fade from white",
    "wipe": "After a wipe",
    "gradual": "After a gradual transition",
}


def tag(subject: str) -> str:
    return f"[{subject}]"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _speed(magnitude: float) -> str:
    return "slowly" if magnitude < 0.1 else ("quickly" if magnitude > 0.4 else "steadily")


def _light(lighting: dict[str, Any] | None) -> str:
    if not lighting:
        return ""
    parts = []
    key = {"low_key": "dark, low-key", "high_key": "bright, high-key"}.get(lighting["key"], "")
    parts.append(key or "evenly lit")
    if lighting["colour"] != "neutral":
        parts.append(lighting["colour"])
    when = {"day": " by day", "night": " at night"}.get(lighting["time_of_day"], "")
    return f"The light is {', '.join(parts)}{when}."


def facts_shot_caption(facts: dict[str, Any]) -> str:
    """A deterministic caption of one shot from its facts (the offline ``facts`` backend)."""
    ids = [tag(s["id"]) for s in facts["subjects"]]
    if ids:
        who = _join(ids)
    elif facts["n_people"]:
        who = f"{facts['n_people']} unidentified {'person' if facts['n_people'] == 1 else 'people'}"
    else:
        who = "no identified person"
    # without a subject the scale is only assumed: do not state a guess as a fact
    measured = not facts.get("scale_basis", "").startswith("no subject")
    scale = SCALE_WORDS[facts["scale"]] if measured else "a shot"
    opening = f"{scale.capitalize()} showing {who}"
    lead = TRANSITION_WORDS.get(facts["transition_in"])
    if lead:
        opening = f"{lead}, {opening[0].lower()}{opening[1:]}"
    camera = facts.get("camera")
    if camera:
        motion = MOTION_WORDS[camera["kind"]]
        if camera["kind"] not in ("static", "handheld"):
            motion += f" {_speed(camera['magnitude'])}"
        opening += f"; {motion}"
    sentences = [opening + "."]
    light = _light(facts.get("lighting"))
    if light:
        sentences.append(light)
    return " ".join(sentences)


def scene_changes(shot_facts: list[dict[str, Any]]) -> list[int]:
    """Shot numbers (from 1) that open another scene than the shot before (scenes known)."""
    scenes = [f.get("scene", -1) for f in shot_facts]
    return [
        i + 1
        for i in range(1, len(scenes))
        if min(scenes[i], scenes[i - 1]) >= 0 and scenes[i] != scenes[i - 1]
    ]


def facts_global_caption(shot_facts: list[dict[str, Any]], shot_captions: list[str]) -> str:
    """A deterministic global caption: subjects with the shots they appear in, the light, and
    the shots in order (the offline ``facts`` backend; a template, not a narrative)."""
    seen: dict[str, list[int]] = {}
    for i, facts in enumerate(shot_facts):
        for s in facts["subjects"]:
            seen.setdefault(s["id"], []).append(i + 1)
    subjects = [
        f"{tag(sid)}, a {'person' if sid.startswith('S') else 'subject'} seen in "
        f"shot{'s' if len(shots) > 1 else ''} {_join([str(n) for n in shots])}"
        for sid, shots in list(seen.items())[:4]
    ]
    lights = {f["lighting"]["time_of_day"] for f in shot_facts if f.get("lighting")}
    when = "by day" if lights == {"day"} else ("at night" if lights == {"night"} else "")
    parts = [f"Subjects: {'; '.join(subjects)}." if subjects else "No identified subject."]
    parts.append(f"{len(shot_facts)} shots{' ' + when if when else ''}.")
    changes = scene_changes(shot_facts)
    if changes:
        where = _join([str(n) for n in changes])
        parts.append(f"The scene changes before shot{'s' if len(changes) > 1 else ''} {where}.")
    parts += [f"Shot {i + 1}: {c}" for i, c in enumerate(shot_captions)]
    return " ".join(parts)


SHOT_SYSTEM = (
    "You write precise captions of single film shots for a video dataset. Describe only what "
    "is visible: actions, background and camera. Refer to people only by their tags."
)


def shot_prompt(facts: dict[str, Any]) -> str:
    """The user prompt for one shot: its measured facts and its subject tags with boxes."""
    lines = [
        "Caption this film shot in one or two sentences: what the subjects do, the background, "
        "and the camera.",
    ]
    if facts.get("scale_basis", "").startswith("no subject"):
        lines.append("Measured facts (trust them): no subject found, so the scale is unknown.")
    else:
        lines.append(f"Measured facts (trust them): shot scale {facts['scale'].replace('_', ' ')}.")
    if facts.get("camera"):
        lines.append(f"Camera: {MOTION_WORDS[facts['camera']['kind']]}.")
    light = _light(facts.get("lighting"))
    if light:
        lines.append(light)
    if facts["subjects"]:
        lines.append("Subjects in this shot (box as x0, y0, x1, y1 fractions of the frame):")
        lines += [f"- {tag(s['id'])}: {s['kind']} at {s['box']}" for s in facts["subjects"]]
        lines.append("Name every subject by its tag, e.g. [S1], and use no other tags.")
    else:
        lines.append("No identified subject: use no tags.")
    return "\n".join(lines)


GLOBAL_SYSTEM = (
    "You write the global description of a multi-shot film clip for a video dataset, "
    "consistent with the per-shot captions you are given."
)


def global_prompt(
    shot_captions: list[str],
    subjects: list[str],
    shot_facts: list[dict[str, Any]] | None = None,
) -> str:
    """The second pass's prompt (MuSS's stage-2 aggregation): the sample's subject tags, then
    each shot's caption with its measured facts (scale, camera, light, who), so the global
    caption stands on what was measured as well as on what the shot captions say."""
    lines = [
        "Write one paragraph: first the subjects (at most 4, each as its tag followed by a short "
        "appearance description), then the environment, then what happens across the shots.",
        f"Subjects of this clip: {', '.join(tag(s) for s in subjects) or 'none'}. Use only these "
        "tags.",
    ]
    changes = scene_changes(shot_facts) if shot_facts else []
    if changes:
        lines.append(
            "The clip crosses a change of scene (another place or time) before shot "
            f"{_join([str(n) for n in changes])}: say so."
        )
    with_facts = ", each with its measured facts (trust them):" if shot_facts else ":"
    lines.append(f"Shot captions in order{with_facts}")
    for i, caption in enumerate(shot_captions):
        lines.append(f"[shot {i + 1}] {caption}")
        if shot_facts and i < len(shot_facts) and shot_facts[i]:
            lines.append(f"  facts: {_fact_line(shot_facts[i])}")
    return "\n".join(lines)


def _fact_line(facts: dict[str, Any]) -> str:
    measured = facts.get("scale") and not facts.get("scale_basis", "").startswith("no subject")
    parts = [f"scale {facts['scale'].replace('_', ' ')}" if measured else "scale unknown"]
    if facts.get("camera"):
        parts.append(MOTION_WORDS[facts["camera"]["kind"]])
    light = facts.get("lighting")
    if light:
        parts.append(f"{light['key'].replace('_', '-')}, {light['time_of_day']}")
    who = [tag(s["id"]) for s in facts.get("subjects", [])]
    parts.append(f"subjects {', '.join(who)}" if who else "no identified subject")
    return "; ".join(parts)


def hierarchical_prompt(global_caption: str, shot_captions: list[str]) -> str:
    """The trainer's prompt string: the global caption, then ``[shot i]`` captions."""
    return "\n".join(
        [global_caption, *(f"[shot {i + 1}] {c}" for i, c in enumerate(shot_captions))]
    )
