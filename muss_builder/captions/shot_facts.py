"""The measured facts of one shot, the ground every caption of it stands on.

Facts come from the subject stage (who is in the shot, their boxes, how many people), from
the pixels of the keyframe pass (camera motion, lighting) and from the shot list (incoming
transition). Nothing here runs a language model.
"""

from __future__ import annotations

from muss_builder.captions.collector import ShotPixels
from muss_builder.captions.facts import shot_scale
from muss_builder.captions.records import FactCamera, FactLighting, FactSubject, ShotFacts
from muss_builder.shots.segment import Shot
from muss_builder.subjects.stage import FilmSubjects, subject_order


def shot_facts(
    shot: Shot, subjects: FilmSubjects | None, pixels: ShotPixels | None, scene: int = -1
) -> ShotFacts:
    """Facts of one film shot (stored per shot in the samples); ``scene``: its scene index."""
    detections = subjects.in_shot(shot.index) if subjects else []
    boxes = [(d.kind if d.kind == "face" else d.label, d.normalised_box()) for d in detections]
    scale, basis = shot_scale(boxes)
    per_frame: dict[int, int] = {}
    for d in detections:
        if d.kind == "face" or d.label == "person":
            per_frame[d.frame] = per_frame.get(d.frame, 0) + 1
    present: dict[str, FactSubject] = {}
    for d in sorted(detections, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1])):
        if d.subject and d.subject not in present:  # the subject's largest box in the shot
            present[d.subject] = FactSubject(id=d.subject, kind=d.kind, box=d.normalised_box())
    motion = pixels.motion if pixels else None
    light = pixels.lighting if pixels else None
    return ShotFacts(
        scale=scale,
        scale_basis=basis,
        camera=FactCamera.model_validate(motion.to_dict()) if motion else None,
        lighting=FactLighting.model_validate(light.to_dict()) if light else None,
        n_people=max(per_frame.values(), default=0),
        subjects=[present[k] for k in sorted(present, key=subject_order)],
        transition_in=shot.transition_in,
        scene=scene,
    )
