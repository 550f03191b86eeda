"""The subject view of a window's sample: the subjects it centres on and their reference
crops, taken from other shots of the film (or, failing that, other shots of the sample).

One clip serves both tracks (issue 17, docs/layout.md): a window whose subjects have
references gets them in the same sample as its montage view, laid side by side in the
``refs.jpg`` strip, and ``tracks`` lists "subject" too; the clip is never stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from muss_builder.config import PipelineConfig
from muss_builder.samples.records import NO_POSE_DELTA, Reference, SampleShot
from muss_builder.samples.ref_strip import build_strip, placeholder_strip
from muss_builder.samples.verdicts import FilmCuration
from muss_builder.subjects.references import choose_references, focus_subject
from muss_builder.subjects.stage import Detection, FilmSubjects, subject_order


@dataclass
class SubjectView:
    """What a sample carries for the subject track: empty (and the placeholder strip) when it
    serves the montage track only."""

    focus_subjects: list[str] = field(default_factory=list)  # main focus first
    references: list[Reference] = field(default_factory=list)  # in strip order
    strip: bytes = field(default_factory=placeholder_strip)  # the ``refs.jpg`` member

    def tracks(self, subject_window: bool = False) -> list[str]:
        """The tracks a sample with this view serves: a window chosen around a subject
        serves the subject track only (it is not a story unit of its own)."""
        if subject_window:
            return ["subject"]
        return ["montage", "subject"] if self.references else ["montage"]


def reference_pool(
    subjects: FilmSubjects | None, curation: FilmCuration | None
) -> dict[str, list[Detection]]:
    """Detections a reference crop may come from: none of a dropped shot (a black, blurred,
    text-covered or copied shot makes a poor reference, and no sample shows it)."""
    if subjects is None:
        return {}
    groups = subjects.by_subject()
    if curation is None:
        return groups
    gone = curation.dropped()
    return {sid: [d for d in dets if d.shot not in gone] for sid, dets in groups.items()}


def subject_view(
    shots: list[SampleShot],
    by_subject: dict[str, list[Detection]],
    config: PipelineConfig,
    focus: str = "",
) -> SubjectView:
    """Centre on ``focus`` (a subject window's subject) or else the subject seen in most of
    the sample's shots that has references (then on up to ``max_subjects`` others), with
    crops from other shots; an empty view when no subject of the sample has a reference."""
    params = config.subjects.references
    sample_shots = [s.film_shot_index for s in shots]
    present: dict[str, int] = {}
    for shot in shots:
        for entry in shot.subjects:
            present[entry.id] = present.get(entry.id, 0) + 1
    chosen = {}
    for sid in present:
        refs = choose_references(sid, by_subject.get(sid, []), sample_shots, params)
        if refs:
            chosen[sid] = refs
    if focus not in chosen:
        focus = focus_subject({sid: present[sid] for sid in chosen})
    if focus is None:
        return SubjectView()
    others = sorted(
        (s for s in chosen if s != focus), key=lambda s: (-present[s], subject_order(s))
    )
    focus_subjects = [focus, *others][: params.max_subjects]
    picked = [ref for sid in focus_subjects for ref in chosen[sid]]
    strip, boxes = build_strip([ref.detection.crop or b"" for ref in picked])
    references = []
    for ref, box in zip(picked, boxes, strict=True):
        provenance = ref.provenance()
        if provenance["pose_delta"] is None:  # an object: a number in every sample, not null
            provenance["pose_delta"] = NO_POSE_DELTA
        references.append(Reference.model_validate({"strip_box": box} | provenance))
    return SubjectView(focus_subjects, references, strip)
