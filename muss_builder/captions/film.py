"""The captions of a film's sample windows: shot captions, then one global caption each."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from muss_builder.captions.captioner import Captioner, CaptionItem
from muss_builder.captions.collector import ShotPixels
from muss_builder.captions.records import FilmCaptions, WindowCaptions
from muss_builder.captions.shot_facts import shot_facts
from muss_builder.config import PipelineConfig
from muss_builder.shots.segment import Shot
from muss_builder.subjects.stage import FilmSubjects, subject_order


def caption_windows(
    windows: list[list[Shot]],
    subjects: FilmSubjects | None,
    pixels: dict[int, ShotPixels],
    config: PipelineConfig,
    cache_dir: Path,
    scene_of: Mapping[int, int] | None = None,
) -> FilmCaptions:
    """Every window's facts and captions (None each when captions are off), and the
    captioner's counters. All shots of the film go to the backend together, then all
    globals; answers are cached in ``cache_dir``."""
    if not config.captions.enabled:
        return FilmCaptions([None] * len(windows))
    captioner = Captioner(config.captions, cache_dir)
    scene_of = scene_of or {}
    facts = [
        [shot_facts(s, subjects, pixels.get(s.index), scene_of.get(s.index, -1)) for s in w]
        for w in windows
    ]
    # the captioner's prompts and consistency checks read the facts as the JSON they are stored as
    plain = [[f.model_dump(mode="json") for f in window_facts] for window_facts in facts]
    present = [
        sorted({x.id for f in window_facts for x in f.subjects}, key=subject_order)
        for window_facts in facts
    ]
    shot_items = [
        _shot_item(present[n], pixels.get(s.index, ShotPixels()), f)
        for n, w in enumerate(windows)
        for s, f in zip(w, plain[n], strict=True)
    ]
    flat = iter(captioner.caption_shots(shot_items))
    shot_captions = [[next(flat) for _ in w] for w in windows]
    global_items = [
        CaptionItem(
            present[n],
            [
                pixels[s.index].images[0]
                for s in w
                if pixels.get(s.index) and pixels[s.index].images
            ][:4],
            shot_captions=[c.text for c in shot_captions[n]],
            shot_facts=plain[n],
        )
        for n, w in enumerate(windows)
    ]
    globals_ = captioner.caption_globals(global_items)
    return FilmCaptions(
        [WindowCaptions(f, s, g) for f, s, g in zip(facts, shot_captions, globals_, strict=True)],
        captioner.stats.to_dict(),
    )


def _shot_item(present: list[str], pixels: ShotPixels, facts: dict[str, Any]) -> CaptionItem:
    """A shot to caption: keyframes, and its clip when video input kept one."""
    return CaptionItem(
        present, pixels.images, facts=facts, video=pixels.video,
        video_times=pixels.video_times, duration=pixels.duration,
    )  # fmt: skip
