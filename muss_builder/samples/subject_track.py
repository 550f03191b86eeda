"""The subject track: a montage sample's twin centred on one subject, with reference crops
taken from other shots of the film (or, failing that, other shots of the sample)."""

from __future__ import annotations

from muss_builder.config import PipelineConfig
from muss_builder.samples.records import Reference, Sample
from muss_builder.subjects.references import choose_references, focus_subject
from muss_builder.subjects.stage import Detection, subject_order


def subject_sample(
    montage: Sample, key: str, by_subject: dict[str, list[Detection]], config: PipelineConfig
) -> tuple[Sample, dict[str, bytes]] | None:
    """The subject-track twin of a montage sample, as sample ``key``: same clip, centred on
    the subject seen in most of its shots that has references, with ``ref{k}.jpg`` crops from
    other shots; None when no subject of the sample has a reference."""
    params = config.subjects.references
    sample_shots = [s.film_shot_index for s in montage.shots]
    present: dict[str, int] = {}
    for shot in montage.shots:
        for entry in shot.subjects:
            present[entry.id] = present.get(entry.id, 0) + 1
    chosen = {}
    for sid in present:
        refs = choose_references(sid, by_subject[sid], sample_shots, params)
        if refs:
            chosen[sid] = refs
    focus = focus_subject({sid: present[sid] for sid in chosen})
    if focus is None:
        return None
    others = sorted(
        (s for s in chosen if s != focus), key=lambda s: (-present[s], subject_order(s))
    )
    members: dict[str, bytes] = {}
    references: list[Reference] = []
    for sid in [focus, *others][: params.max_subjects]:
        for ref in chosen[sid]:
            name = f"ref{len(members)}.jpg"
            members[name] = ref.detection.crop or b""
            references.append(Reference.model_validate({"member": name} | ref.provenance()))
    # validated whole, as the montage sample was: a copy made with ``model_copy(update=)``
    # would carry the new fields unchecked
    twin = Sample.model_validate(
        montage.model_dump()
        | {"key": key, "track": "subject", "focus_subject": focus, "references": references}
    )
    return twin, members
