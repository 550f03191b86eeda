"""Byte-identical builds at the size users run: the default pipeline on a 720p film of 30+
seconds (480p clips), while the machine is busy; and the reference's clips read frame for
frame by the decoders training loaders use (PyAV, OpenCV, decord), seeks included.

One reference build (inline) serves two comparisons: a build killed with SIGKILL mid-film
and rerun (the kill comes before the film's record is written, so the rerun builds the whole
film again: it is the second fresh build too), and a build on a local Ray cluster, made at the
same time as the reference in another process (each build is the other's load). The film
is made once per session: people's faces (subject track, reference crops) and moving shots
joined by cuts and gradual transitions, with film grain so the encoder works on every frame.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.media.decode import FrameReader
from muss_builder.media.tools import binary, run
from muss_builder.runtime.build import BuildSummary, build
from muss_builder.testing.synthetic_films import make_transition_film

WIDTH, HEIGHT, FPS = 1280, 720, 24


@pytest.fixture(scope="session")
def user_film(tmp_path_factory: pytest.TempPathFactory, people) -> Path:
    """A 1280x720 film of about 32 s: six face shots (three people, hard cuts), then pattern
    shots joined by cuts, a dissolve, a fade through black and a wipe; a pan and grain
    everywhere."""
    from muss_builder.testing.face_film import encode_stills, render_shot

    root = tmp_path_factory.mktemp("user_film")
    rng = np.random.default_rng(3)
    faces = [render_shot(p, rng, (WIDTH, HEIGHT)) for p in [*people[:3], *people[:3]]]
    encode_stills(root / "faces.mp4", faces, shot_frames=36, fps=FPS)
    joins = [(110, "cut", 0), (96, "dissolve", 16), (100, "cut", 0), (110, "fade_black", 18)]
    joins += [(96, "cut", 0), (100, "wipe", 14)]
    make_transition_film(root / "moving.mp4", joins, fps=FPS, width=WIDTH, height=HEIGHT)
    path = root / "user_film.mp4"
    # a camera panning to and fro over the whole film (a 90 % window, 2.5 s each way): the
    # face shots are stills and the patterns' box stands still (drawbox places it once), and
    # a still is `static` even under grain; a static shot is in no sample
    pan = "crop=w=iw*0.9:h=ih*0.9:x='(iw-ow)*abs(mod(n,120)/60-1)':y='(ih-oh)/2'"
    graph = f"[0:v][1:v]concat=n=2:v=1:a=0,{pan},scale={WIDTH}:{HEIGHT},setsar=1"
    graph += ",noise=alls=6:allf=t[v]"
    args = [binary("ffmpeg"), "-nostdin", "-v", "error", "-y", "-i", str(root / "faces.mp4")]
    args += ["-i", str(root / "moving.mp4"), "-filter_complex", graph, "-map", "[v]"]
    # a user's film: B-frames and a long GOP (the encoder's defaults), not ultrafast
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt", "yuv420p"]
    run([*args, str(path)], what="make the user-sized film", timeout=600)
    return path


def _burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(20_000))


@contextmanager
def busy_machine() -> Iterator[None]:
    """CPU burners on all CPUs but one (1 to 4): with the build's own processes every
    CPU is contended, and threads are descheduled at arbitrary points."""
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    n = min(4, max(1, (os.cpu_count() or 2) - 1))
    burners = [ctx.Process(target=_burn, args=(stop,)) for _ in range(n)]
    for proc in burners:
        proc.start()
    try:
        yield
    finally:
        stop.set()
        for proc in burners:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


@pytest.fixture(scope="module")
def default_config() -> PipelineConfig:
    """The default pipeline, with windows allowed across scene breaks: every shot of this
    synthetic film is a place of its own (a photo on a random colour, moving test patterns
    joined by fades and wipes), so scene windows would leave no sample to compare. Scenes are
    still found and recorded; everything else is the default."""
    config = load_pipeline("default")
    return config.model_copy(
        update={"scenes": config.scenes.model_copy(update={"cross_scene": True})}
    )


@dataclass
class RayBuild:
    out: Path
    returncode: int
    log: str  # the driver's stderr


@pytest.fixture(scope="module")
def builds(
    tmp_path_factory: pytest.TempPathFactory, user_film: Path, default_config: PipelineConfig
) -> tuple[BuildSummary, RayBuild]:
    """The reference (the default pipeline, --executor inline) and the same film on a local
    Ray cluster (another process), built at the same time: each is the other's load, so every
    CPU is contended and threads are descheduled at arbitrary points, as under
    ``busy_machine`` (and the pair takes about the time of one build on a burdened machine)."""
    root = tmp_path_factory.mktemp("ref")
    on_ray, log = root / "ray", root / "ray.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, "ray", str(on_ray), str(user_film)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            summary = build([str(user_film)], root / "out", default_config, executor="inline")
        finally:
            returncode = proc.wait(timeout=900)
    return summary, RayBuild(on_ray, returncode, log.read_text(errors="replace"))


@pytest.fixture(scope="module")
def reference(builds: tuple[BuildSummary, RayBuild]) -> BuildSummary:
    """The reference: the default pipeline, --executor inline, on a busy machine."""
    summary = builds[0]
    assert [r.status for r in summary.results] == ["ok"], summary.results
    return summary


def shard_members(out: Path) -> dict[str, bytes]:
    members = {}
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for info in tar.getmembers():
                data = tar.extractfile(info)
                members[f"{shard.name}:{info.name}"] = data.read() if data else b""
    return members


def records(out: Path) -> dict[str, dict]:
    """Film records without their ``timings`` (the one place that holds wall-clock time)."""
    docs = {}
    for path in sorted((out / "films").glob("*.json")):
        doc = json.loads(path.read_text())
        doc.pop("timings")
        docs[path.name] = doc
    return docs


def assert_same_build(out: Path, reference: Path) -> None:
    """Shards equal member by member (naming each member that differs), then the shard
    files byte for byte (tar headers too), the index rows and the film records."""
    got, want = shard_members(out), shard_members(reference)
    assert sorted(got) == sorted(want), "shard members differ in name"
    differ = [f"{k} ({len(got[k])} vs {len(want[k])} bytes)" for k in want if got[k] != want[k]]
    assert not differ, f"{len(differ)} of {len(want)} shard members differ: {differ}"
    for shard in sorted((reference / "shards").glob("*.tar")):
        assert (out / "shards" / shard.name).read_bytes() == shard.read_bytes(), shard.name
    assert (
        pq.read_table(out / "index.parquet").to_pylist()
        == pq.read_table(reference / "index.parquet").to_pylist()
    )
    assert records(out) == records(reference)


def test_reference_is_user_sized(reference: BuildSummary) -> None:
    """The film and build are what the comparisons claim: 720p, 30+ s, 480p clips, several
    samples of both tracks, reference crops, bit-exact mode recorded."""
    (record,) = records(reference.out).values()
    assert record["probe"]["height"] >= 720 and record["probe"]["duration_seconds"] >= 30
    assert record["determinism"] == "bitexact-cpu"
    assert reference.stats["determinism"] == ["bitexact-cpu"]
    kinds = {t["kind"] for t in record["transitions"]}
    assert {"cut", "dissolve"} <= kinds
    rows = pq.read_table(reference.out / "index.parquet").to_pylist()
    assert {r["clip_height"] for r in rows} == {480}
    assert {r["track"] for r in rows} == {"montage", "subject"}
    assert sum(r["n_refs"] for r in rows) >= 2
    # one sample per window, serving both tracks when it has references; three members each
    keys = {r["key"] for r in rows}
    assert len(keys) >= 2 and len(shard_members(reference.out)) == 3 * len(keys)


_DRIVER = """
import sys
from muss_builder.config import load_pipeline
from muss_builder.runtime.build import build
config = load_pipeline("default")  # as the default_config fixture: scene windows may cross
config = config.model_copy(
    update={"scenes": config.scenes.model_copy(update={"cross_scene": True})}
)
executor = sys.argv[1]  # inline | ray (a local cluster of 2 CPUs)
cpus = 2 if executor == "ray" else None
build(sys.argv[3:], sys.argv[2], config, executor=executor, num_cpus=cpus)
"""


def test_sigkill_mid_film_then_rerun_is_byte_identical(
    tmp_path: Path, reference: BuildSummary, user_film: Path, default_config: PipelineConfig
) -> None:
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    with busy_machine():
        proc = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, "inline", str(out), str(user_film)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(scratch)},
        )
        # kill mid-film: once its first clip is encoded (clips go to a temporary folder)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if any(scratch.rglob("*.mp4")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not list((out / "films").glob("*.json")), "killed after the film was complete"
        rerun = build([str(user_film)], out, default_config, executor="inline")
    assert [r.status for r in rerun.results] == ["ok"]
    assert_same_build(out, reference.out)


@pytest.mark.ray
def test_local_ray_cluster_equals_inline(
    builds: tuple[BuildSummary, RayBuild], reference: BuildSummary
) -> None:
    on_ray = builds[1]
    assert on_ray.returncode == 0, on_ray.log[-3000:]
    assert json.loads((on_ray.out / "stats.json").read_text())["executor"] == "ray"
    assert_same_build(on_ray.out, reference.out)


# ---------------------------------------------------------------------------------------------
# The reference's clips in the readers users train with

# decord ships wheels for x86-64 Linux only (pyproject's test extra installs it there)
HAS_DECORD = importlib.util.find_spec("decord") is not None


def _reader_frames(path: Path) -> dict[str, Iterator[np.ndarray]]:
    """Every frame as RGB, in order, from each reader a training loader uses."""
    import av
    import cv2

    def pyav() -> Iterator[np.ndarray]:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")

    def opencv() -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(path))
        while (read := capture.read())[0]:
            yield cv2.cvtColor(read[1], cv2.COLOR_BGR2RGB)
        capture.release()

    def decord_reader() -> Iterator[np.ndarray]:
        import decord

        video = decord.VideoReader(str(path), ctx=decord.cpu(0))
        for i in range(len(video)):
            yield video[i].asnumpy()

    readers = {"pyav": pyav(), "opencv": opencv()}
    if HAS_DECORD:
        readers["decord"] = decord_reader()
    return readers


def test_every_reader_gets_every_frame_and_each_shot_boundary(
    reference: BuildSummary, tmp_path: Path
) -> None:
    """PyAV, OpenCV and decord decode each clip to ffmpeg's frames, pixel for pixel and as
    many as the sample says; the container declares that count and a constant frame rate
    from time 0; and the seeks a loader makes (decord's random access, PyAV's seek by time)
    land on each shot's first and last frame, not a neighbour."""
    import av

    from muss_builder.shards.reader import iter_samples, load_sample_json

    checked = 0
    for shard in sorted((reference.out / "shards").glob("*.tar")):
        for sample in iter_samples(shard):
            doc = load_sample_json(sample)
            clip = doc["clip"]
            path = tmp_path / f"{sample.key}.mp4"
            path.write_bytes(sample.members["mp4"])
            n, fps = clip["n_frames"], clip["fps"]
            bounds = {
                f for s in doc["shots"] for f in (s["clip_start_frame"], s["clip_end_frame"] - 1)
            }
            at_bounds: dict[int, np.ndarray] = {}
            readers = _reader_frames(path)
            count = 0
            # the reference: ffmpeg through the pipeline's own reader, at the clip's size
            reference = FrameReader(path, (clip["width"], clip["height"]), pix_fmt="rgb24")
            for i, want in enumerate(frame.image for frame in reference):
                for name, frames in readers.items():
                    got = next(frames, None)
                    assert got is not None, f"{sample.key}: {name} ended at frame {i} of {n}"
                    assert np.array_equal(got, want), f"{sample.key}: {name} frame {i} differs"
                if i in bounds:
                    at_bounds[i] = want
                count += 1
            assert count == n, f"{sample.key}: ffmpeg decoded {count} frames, the json says {n}"
            for name, frames in readers.items():
                assert next(frames, None) is None, f"{sample.key}: {name} has frames past {n}"

            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                assert stream.frames == n and float(stream.average_rate) == fps
                times = [float(f.pts * f.time_base) for f in container.decode(stream)]
            assert np.allclose(times, np.arange(n) / fps, atol=0.5 / fps), sample.key
            frames = sorted(at_bounds)
            if HAS_DECORD:
                import decord

                video = decord.VideoReader(str(path), ctx=decord.cpu(0))
                assert len(video) == n and video.get_avg_fps() == fps
                batch = video.get_batch(list(reversed(frames))).asnumpy()  # random order
                for frame, got in zip(reversed(frames), batch, strict=True):
                    assert np.array_equal(got, at_bounds[frame]), f"{sample.key}: decord {frame}"
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                for frame in frames:
                    target = round(frame / fps / stream.time_base)
                    container.seek(target, stream=stream, backward=True)
                    got = next(f for f in container.decode(stream) if f.pts >= target)
                    assert got.pts == target and np.array_equal(
                        got.to_ndarray(format="rgb24"), at_bounds[frame]
                    ), f"{sample.key}: PyAV seek to frame {frame}"
            checked += 1
    assert checked >= 2
