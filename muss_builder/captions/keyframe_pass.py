"""The subject stage's one full-quality decode of a film's keyframes, feeding the subject
models and, riding along, the captioner's pixel collector.

It lives in captions/ rather than subjects/ because it builds the captioner's collector, and
captions already build on subjects (shot facts name film subjects): subjects never import
captions, so the packages stay layered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from muss_builder.captions.collector import ShotPixelCollector, ShotPixels, VideoSampling
from muss_builder.captions.video import model_reads_video
from muss_builder.config import PipelineConfig
from muss_builder.media.probe import FilmProbe
from muss_builder.shots.segment import ShotDetection
from muss_builder.subjects.stage import FilmSubjects, FrameCollector, find_subjects


def keyframe_pass(
    path: str,
    probe: FilmProbe,
    detection: ShotDetection,
    config: PipelineConfig,
    collectors: Sequence[FrameCollector] = (),
    crops: Mapping[int, Sequence[int]] | None = None,
) -> tuple[FilmSubjects | None, dict[int, ShotPixels]]:
    """One full-quality decode of the keyframes that feeds the subject models and, riding
    along, the captioner's pixel facts (camera motion, lighting, VLM images) and any other
    ``collectors`` (curation's); ``crops`` cuts each shot's frames to its active picture
    (keyframe pixels, see ``find_subjects``). The caller finishes its own collectors."""
    if not (config.subjects.enabled or config.captions.enabled or collectors):
        return None, {}
    sub = config.subjects
    if not sub.enabled:  # keyframes for the captioner only: no face or object model
        sub = sub.model_copy(
            update={
                "faces": sub.faces.model_copy(update={"enabled": False}),
                "objects": sub.objects.model_copy(update={"enabled": False}),
            }
        )
    collector = None
    if config.captions.enabled:
        cap = config.captions
        video = None
        if model_reads_video(cap):  # the clip frames ride the same decode as the keyframes
            video = VideoSampling(cap.video_fps, cap.video_max_frames, cap.video_max_pixels)
        collector = ShotPixelCollector(
            detection.shots,
            detection.frame_pts,
            cap.motion_frames_per_shot,
            cap.images_per_shot,
            cap.image_side,
            video,
        )
    riders = [*([collector] if collector else []), *collectors]
    subjects = find_subjects(path, probe, detection, sub, riders, crops)
    pixels = collector.finish() if collector else {}
    return (subjects if config.subjects.enabled else None), pixels
