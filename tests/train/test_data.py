"""The shard loader on shards built by the real pipeline: shot boundaries, 4k+1 shots, crops,
references, rank/worker split, exact resume, and malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from muss_builder.samples.metadata import UNKNOWN_CAMERA, UNKNOWN_LIGHTING
from muss_builder.shards.reader import ShardFormatError, ShardSample, iter_samples
from muss_builder.shards.writer import FilmShardWriter
from muss_builder.testing.face_film import encode_stills
from muss_builder.train.data import DataConfig, ShardClipDataset
from muss_builder.train.loader import ResumableLoader
from muss_builder.train.shot_plan import Crop, resampled_frames
from muss_builder.train.stream import ShardStream, skip_and_log

SMALL = [(64, 112), (64, 64)]


def config(**changes) -> DataConfig:
    base = dict(fps=12, buckets=SMALL, frames_per_shot_max=17, ref_size=32, shuffle_buffer=0)
    return DataConfig(**{**base, **changes})


def frame_diffs(video: torch.Tensor) -> np.ndarray:
    """Mean absolute change from each frame to the next (index i: between i and i + 1)."""
    return (video[1:] - video[:-1]).abs().mean(dim=(1, 2, 3)).numpy()


def test_shot_boundaries_survive_resampling(built_dataset, one_sample_shards) -> None:
    examples = list(ShardClipDataset(built_dataset.out, config()))
    assert len(examples) == 5
    for ex in examples:
        doc = one_sample_shards.docs[ex.key]
        assert len(ex.shot_frames) == doc["n_shots"]
        starts = [s for s, _ in ex.shot_frames]
        assert starts[0] == 0 and ex.shot_frames[-1][1] == len(ex.video)
        assert all(a[1] == b[0] for a, b in zip(ex.shot_frames, ex.shot_frames[1:], strict=False))
        for (start, end), shot in zip(ex.shot_frames, doc["shots"], strict=True):
            # 24 fps clips at 12 fps: every other frame, then the largest 4k+1 up to 17
            n = len(resampled_frames(shot["clip_start_frame"], shot["clip_end_frame"], 24, 12))
            assert end - start == min(17, (n - 1) // 4 * 4 + 1)
            assert (end - start) % 4 == 1 and 5 <= end - start <= 17
        # every cut of the synthetic film (each shot has its own colours) sits exactly on a
        # shot start, and nothing inside a shot changes as much as a cut
        diffs = frame_diffs(ex.video)
        cut_diffs = [diffs[s - 1] for s in starts[1:]]
        inside = np.delete(diffs, [s - 1 for s in starts[1:]])
        assert min(cut_diffs) > 2 * inside.max(), (ex.key, cut_diffs, inside.max())


def test_resampling_keeps_each_shot_inside_its_frames() -> None:
    assert resampled_frames(10, 34, 24, 12) == list(range(10, 34, 2))
    assert resampled_frames(0, 3, 24, 48) == [0, 0, 1, 1, 2, 2]  # upsampling repeats
    frames = resampled_frames(5, 29, 30, 16)
    assert frames[0] == 5 and frames[-1] < 29 and len(frames) == 13


def test_short_shots_dropped_and_samples_skipped_are_counted(built_dataset) -> None:
    two = ShardClipDataset(built_dataset.out, config(max_shots=2))
    lengths = [len(ex.shot_frames) for ex in two]
    assert lengths == [2] * 5 and two.stats["shots_dropped_beyond_max"] == 10
    # at 12 fps only shots of 42+ clip frames give 21+ frames: the 24 fps film has one such
    # shot in each of its three samples, the 30 fps film none in its two
    strict = config(min_frames_per_shot=21, frames_per_shot_max=25)
    stream = ShardClipDataset(built_dataset.out, strict)
    kept = list(ResumableLoader(stream, num_workers=2))  # counted in workers, summed here
    assert [len(ex.shot_frames) for ex in kept] == [1, 1, 1]
    assert stream.stats["skipped_too_few_shots"] == 2
    assert stream.stats["shots_dropped_short"] == 5 * 4 - 3


def test_config_is_strict_and_checks_4k1_and_buckets() -> None:
    assert DataConfig(buckets=["480x832", "512x512"]).buckets == [(480, 832), (512, 512)]
    with pytest.raises(ValidationError, match="4k\\+1"):
        DataConfig(frames_per_shot_max=16)
    with pytest.raises(ValidationError, match="multiples of 16"):
        DataConfig(buckets=[(480, 830)])
    with pytest.raises(ValidationError, match="extra"):
        DataConfig(fsp=16)
    with pytest.raises(ValidationError, match="min_shots 3 > max_shots 2"):
        DataConfig(min_shots=3, max_shots=2)


def _whole_sample(width: int, height: int, shots: list[dict]) -> dict:
    """A whole sample record around ``shots`` (48 frames at 24 fps), as the trainer reads
    only valid ones."""
    return {
        "schema_version": "2.1",
        "key": "00000000000000aa_00000",
        "film_id": "00000000000000aa",
        "tracks": ["montage"],
        "window": {
            "kind": "scene",
            "scenes": [],
            "start_point": "film_edge",
            "end_point": "film_edge",
            "subject": "",
            "reason": "",
            "shot_uses": [1, 1],
        },
        "source": {
            "file_name": "boxes.mp4",
            "fps": 24.0,
            "width": width,
            "height": height,
            "n_frames": 48,
            "variable_frame_rate": False,
        },
        "span": {"start_frame": 0, "end_frame": 48, "start_seconds": 0.0, "end_seconds": 2.0},
        "clip": {
            "fps": 24.0,
            "width": width,
            "height": height,
            "n_frames": 48,
            "duration_seconds": 2.0,
            "codec": "h264",
            "pix_fmt": "yuv420p",
        },
        "crop": [0, 0, width, height],
        "shots": shots,
        "n_shots": 2,
        "duration_seconds": 2.0,
        "subjects": ["S1", "S2"],
        "focus_subjects": [],
        "references": [],
        "global_caption": "a box",
        "prompt": "",
        "caption_issues": [],
        "captioner": {"backend": "none", "model": "", "sources": [], "attempts": 0},
        "pipeline": {"name": "test", "config_hash": "x", "version": "0", "shot_detector": "none"},
    }


def _white_box_shard(tmp_path: Path) -> tuple[Path, dict]:
    """A hand-made sample: two shots of a white rectangle on black at known boxes."""
    width, height = 160, 96
    boxes = [(0.55, 0.2, 0.85, 0.7), (0.3, 0.1, 0.5, 0.9)]
    stills = []
    for x0, y0, x1, y1 in boxes:
        still = np.zeros((height, width, 3), np.uint8)
        still[round(y0 * height) : round(y1 * height), round(x0 * width) : round(x1 * width)] = 255
        stills.append(still)
    encode_stills(tmp_path / "clip.mp4", stills, shot_frames=24, fps=24)
    shots = [
        {
            "film_shot_index": i,
            "source_start_frame": 24 * i,
            "source_end_frame": 24 * (i + 1),
            "start_seconds": float(i),
            "end_seconds": float(i + 1),
            "clip_start_frame": 24 * i,
            "clip_end_frame": 24 * (i + 1),
            "clip_start_seconds": float(i),
            "clip_end_seconds": float(i + 1),
            "transition_in": "start" if i == 0 else "cut",
            "transition_in_frames": [],
            "transition_in_clip_frames": [],
            "caption": f"shot {i}",
            "facts": {
                "scale": "medium",
                "scale_basis": "no subject",
                "camera": UNKNOWN_CAMERA,
                "lighting": UNKNOWN_LIGHTING,
                "n_people": 0,
                "subjects": [],
                "transition_in": "start" if i == 0 else "cut",
            },
            "subjects": [
                {
                    "id": "S1",
                    "kind": "object",
                    "label": "box",
                    "boxes": [
                        {"source_frame": 24 * i + 12, "clip_frame": 24 * i + 12, "box": list(box)}
                    ],
                },
                # wholly left of the centre crop: must not survive it
                {
                    "id": "S2",
                    "kind": "object",
                    "label": "x",
                    "boxes": [
                        {"source_frame": 24 * i, "clip_frame": 24 * i, "box": [0.0, 0.0, 0.1, 0.1]}
                    ],
                },
            ],
        }
        for i, box in enumerate(boxes)
    ]
    doc = _whole_sample(width, height, shots)
    writer = FilmShardWriter(tmp_path, "00000000000000aa", max_bytes=10**9)
    members = {"json": json.dumps(doc).encode(), "mp4": (tmp_path / "clip.mp4").read_bytes()}
    writer.write(doc["key"], members)
    (info,) = writer.close()
    return tmp_path / info.name, doc


def test_boxes_are_mapped_through_the_same_crop_as_the_pixels(tmp_path: Path) -> None:
    shard, _ = _white_box_shard(tmp_path)
    (ex,) = ShardClipDataset(shard, config(buckets=[(64, 64)]))
    assert tuple(ex.video.shape[1:]) == (3, 64, 64)
    crop = Crop.plan(160, 96, (64, 64))
    assert crop.scaled == (107, 64) and crop.offset == (21, 0)
    for (start, _), boxes in zip(ex.shot_frames, ex.subject_boxes, strict=True):
        (box,) = boxes  # S2's box lies outside the crop and is gone
        white = ex.video[start + 3].mean(dim=0) > 0
        rows, cols = torch.nonzero(white, as_tuple=True)
        seen = (cols.min() / 64, rows.min() / 64, (cols.max() + 1) / 64, (rows.max() + 1) / 64)
        assert np.allclose(seen, box, atol=2 / 64), (seen, box)
    assert ex.subject_boxes[0][0][2] == 1.0  # the first box is cut by the crop's right edge


def test_references_point_into_other_shots_at_their_subject(face_dataset) -> None:
    cfg = config(tracks=["subject"], max_references=8)
    examples = list(ShardClipDataset(face_dataset.out, cfg))
    docs = {}
    for shard in (face_dataset.out / "shards").glob("*.tar"):
        docs |= {s.key: json.loads(s.members["json"]) for s in iter_samples(shard)}
    assert examples and all(ex.references for ex in examples)
    for ex in examples:
        doc = docs[ex.key]
        for ref in ex.references:
            entry = next(
                r
                for r in doc["references"]
                if r["subject"] == ref.subject
                and doc["shots"][ref.shot]["film_shot_index"] in r["target_shots"]
            )
            target = doc["shots"][ref.shot]
            assert target["film_shot_index"] != entry["source_shot"]
            start, end = ex.shot_frames[ref.shot]
            assert start <= ref.frame < end
            assert tuple(ref.image.shape) == (3, 32, 32)
            assert ref.image.min() >= -1 and ref.image.max() <= 1 and ref.image.std() > 0.05
            (subject,) = [s for s in target["subjects"] if s["id"] == ref.subject]
            crop = Crop.plan(doc["clip"]["width"], doc["clip"]["height"], (64, 112))
            assert ref.box in [crop.box(b["box"]) for b in subject["boxes"]]


def test_tracks_select_the_view_of_one_sample(face_dataset, built_dataset) -> None:
    """One sample serves both tracks (docs/layout.md): the subject track reads the samples
    whose json lists it, with references; the montage track reads every sample without."""
    montage = list(ShardClipDataset(face_dataset.out, config(tracks=["montage"])))
    subject = list(ShardClipDataset(face_dataset.out, config(tracks=["subject"])))
    both = list(ShardClipDataset(face_dataset.out, config()))
    assert [ex.key for ex in montage] == [ex.key for ex in subject] == [ex.key for ex in both]
    assert all(not ex.references for ex in montage)
    assert all(ex.references for ex in subject) and all(ex.references for ex in both)
    # a build without faces serves the montage track only
    none = ShardClipDataset(built_dataset.out, config(tracks=["subject"]))
    assert list(none) == [] and none.stats["skipped_track"] == 5


class KeyStream(ShardStream):
    """The real stream machinery with a decode that only reads the key (fast); keys ending
    in 0 or 3 are skipped, like samples with too few usable shots."""

    def decode(self, sample: ShardSample) -> str | None:
        return None if sample.key.endswith(("0", "3")) else sample.key

    def shape_key(self, item: str) -> str:
        return item[0]  # film id's first hex digit: a few shape groups


def _all(stream: ShardStream, workers: int) -> list:
    return list(ResumableLoader(stream, num_workers=workers))


@pytest.mark.parametrize("workers", [0, 2])
def test_rank_and_worker_split_covers_every_sample_once(one_sample_shards, workers) -> None:
    paths = one_sample_shards.paths
    expected = sorted(k for k in one_sample_shards.docs if not k.endswith(("0", "3")))
    got = []
    for rank in range(2):
        got += _all(KeyStream(paths, shuffle_buffer=3, rank=rank, world_size=2), workers)
    assert sorted(got) == expected  # no sample twice, none missing


def test_split_of_real_clips_over_ranks_and_workers(one_sample_shards) -> None:
    cfg = config(buckets=[(32, 32)], fps=8, frames_per_shot_max=5, shuffle_buffer=2)
    keys = []
    for rank in range(2):
        stream = ShardClipDataset(one_sample_shards.paths, cfg, rank=rank, world_size=2)
        keys += [ex.key for ex in ResumableLoader(stream, num_workers=2)]
    assert sorted(keys) == sorted(one_sample_shards.docs)  # all usable at 8 fps


@pytest.mark.parametrize(("workers", "batch"), [(0, None), (2, None), (2, 2), (2, 3)])
def test_resume_yields_exactly_the_uninterrupted_continuation(
    one_sample_shards, workers, batch
) -> None:
    def stream() -> KeyStream:
        return KeyStream(one_sample_shards.paths, seed=7, shuffle_buffer=4, batch_size=batch)

    full = _all(stream(), workers)
    assert len(full) >= 2
    for stop in sorted({1, len(full) // 2, len(full) - 1}):
        first, loader = [], ResumableLoader(stream(), num_workers=workers)
        for item in loader:
            first.append(item)
            if len(first) == stop:
                break
        state = json.loads(json.dumps(loader.state_dict()))  # what a checkpoint stores
        resumed = ResumableLoader(stream(), num_workers=workers)
        resumed.load_state_dict(state)
        assert first + list(resumed) == full, (stop, state)


def test_epochs_reshuffle_and_resume_needs_the_same_workers(one_sample_shards) -> None:
    stream = KeyStream(one_sample_shards.paths, seed=1, shuffle_buffer=4)
    loader = ResumableLoader(stream, num_workers=2)
    epoch0, epoch1 = list(loader), list(loader)
    assert sorted(epoch0) == sorted(epoch1) and epoch0 != epoch1
    assert stream.state_dict()["epoch"] == 2
    again = KeyStream(one_sample_shards.paths, seed=1, shuffle_buffer=4)
    assert list(ResumableLoader(again, num_workers=2)) == epoch0  # deterministic
    partial = ResumableLoader(KeyStream(one_sample_shards.paths), num_workers=2)
    assert next(iter(partial))
    other = ResumableLoader(KeyStream(one_sample_shards.paths), num_workers=3)
    other.load_state_dict(partial.state_dict())
    with pytest.raises(ValueError, match="same num_workers"):
        next(iter(other))
    with pytest.raises(ValueError, match="different shard list"):
        KeyStream(one_sample_shards.paths[1:]).load_state_dict(partial.state_dict())
    with pytest.raises(ValueError, match="rank"):
        KeyStream(one_sample_shards.paths, rank=1, world_size=2).load_state_dict(
            partial.state_dict()
        )


def test_real_clip_resume_with_workers(one_sample_shards) -> None:
    paths = one_sample_shards.paths[:5]
    cfg = config(buckets=[(32, 32)], fps=8, frames_per_shot_max=5, shuffle_buffer=3, seed=3)
    full = [ex.key for ex in ResumableLoader(ShardClipDataset(paths, cfg), num_workers=2)]
    loader = ResumableLoader(ShardClipDataset(paths, cfg), num_workers=2)
    first = [next(iter(loader)).key]
    resumed = ResumableLoader(ShardClipDataset(paths, cfg), num_workers=2)
    resumed.load_state_dict(loader.state_dict())
    rest = [ex.key for ex in resumed]
    assert first + rest == full


def test_malformed_shards_raise_naming_the_member(built_dataset, tmp_path: Path) -> None:
    (shard, *_) = sorted((built_dataset.out / "shards").glob("*.tar"))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(ShardFormatError) as info:
        list(ShardClipDataset(cut, config()))
    assert info.value.member and info.value.member.endswith((".json", ".mp4"))


def test_bad_members_raise_or_are_skipped_by_the_handler(tmp_path: Path) -> None:
    _, doc = _white_box_shard(tmp_path)
    key = doc["key"]
    broken = dict(doc, clip={k: v for k, v in doc["clip"].items() if k != "fps"})
    cases = {
        "mp4": {"json": json.dumps(doc).encode(), "mp4": b"not a video"},
        "json": {"json": json.dumps(broken).encode(), "mp4": b""},
        "refs.jpg": {
            "json": json.dumps(
                dict(
                    doc,
                    tracks=["montage", "subject"],
                    focus_subjects=["S1"],
                    references=[
                        {
                            "strip_box": [0, 0, 10, 10],
                            "subject": "S1",
                            "kind": "object",
                            "label": "box",
                            "source_shot": 0,
                            "source_frame": 12,
                            "box": [0.55, 0.2, 0.85, 0.7],
                            "target_shots": [1],
                            "identity_similarity": 1.0,
                            "pose_delta": -1.0,
                            "duplicate_correlation": 0.0,
                            "quality": 1.0,
                            "fallback": True,
                        }
                    ],
                )
            ).encode(),
            "mp4": (tmp_path / "clip.mp4").read_bytes(),
        },
    }
    for member, members in cases.items():
        folder = tmp_path / member
        writer = FilmShardWriter(folder, "00000000000000bb", max_bytes=10**9)
        writer.write(key, members)
        writer.write(
            key.replace("_00000", "_00001"),
            {"json": json.dumps(doc).encode(), "mp4": (tmp_path / "clip.mp4").read_bytes()},
        )
        bad = folder / writer.close()[0].name
        with pytest.raises(ShardFormatError) as info:
            list(ShardClipDataset(bad, config()))
        assert info.value.member == f"{key}.{member}", info.value
        tolerant = ShardClipDataset(bad, config(), on_error=skip_and_log)
        assert [ex.key for ex in tolerant] == [key.replace("_00000", "_00001")]
        assert tolerant.stats["errors"] == 1
