"""``train sample``: a script becomes an mp4 with exactly the script's frames, its cuts JSON,
each shot decoded on its own from its own latents, and references read beside the script."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from muss_builder.media.decode import FrameReader
from muss_builder.media.tools import binary
from muss_builder.testing.synthetic_films import cut_frames_in
from muss_builder.train.checkpoint import CheckpointError
from muss_builder.train.config import load_train_config
from muss_builder.train.encoders import WanVAE
from muss_builder.train.loop import fit
from muss_builder.train.sample import (
    generate,
    generated_length,
    generation_size,
    to_uint8,
    trim_shots,
    write_mp4,
)
from muss_builder.train.script import Script, ScriptReference, ScriptShot, save_script

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, built_dataset, tiny_encoders) -> Path:
    """A tiny model trained a few steps on pipeline shards (encoded on the fly)."""
    vae, text = tiny_encoders
    out = tmp_path_factory.mktemp("sample-run")
    cfg = load_train_config(
        "tiny",
        {
            "shards": [str(built_dataset.out / "shards")],
            "encoders": {"vae": str(vae.path), "text_encoder": str(text.path)},
            "output_dir": str(out),
            "optim": {"total_steps": 4},
        },
    )
    fit(cfg)
    return out


def three_shot_script(folder: Path) -> Path:
    """Shots of 7, 9 and 4 frames (two are not 4k+1) and a reference for shot 1."""
    crop = np.full((40, 30, 3), (40, 90, 200), np.uint8)
    cv2.imwrite(str(folder / "face.png"), crop)
    script = Script(
        key="kitchen",
        global_caption="two people talk in a kitchen",
        shots=[
            ScriptShot("a wide shot of a kitchen", 7, "start"),
            ScriptShot("a close-up of a woman", 9),
            ScriptShot("a man answers", 4),
        ],
        fps=12.0,
        width=48,
        height=32,
        references=[ScriptReference("face.png", "f_s1", "face", 1, (0.2, 0.1, 0.6, 0.9), 10)],
    )
    path = folder / "script.json"
    save_script(script, path)
    return path


def read_frames(path: Path, size: tuple[int, int]) -> np.ndarray:
    return np.stack([f.image for f in FrameReader(path, size, pix_fmt="rgb24")]).astype(float)


def test_generate_matches_the_script(checkpoint: Path, tiny_encoders, tmp_path: Path) -> None:
    script_path = three_shot_script(tmp_path)
    result = generate(checkpoint, script_path, tmp_path / "out" / "kitchen.mp4", steps=3, seed=1)
    assert result.weights == "ema" and result.checkpoint.name == "step-00000004"
    # the cuts JSON says what the script asked for
    doc = json.loads((tmp_path / "out" / "kitchen.cuts.json").read_text())
    assert doc["cut_frames"] == [7, 16] and doc["n_frames"] == 20 and doc["fps"] == 12.0
    assert doc["shot_ranges"] == [[0, 7], [7, 16], [16, 20]]
    assert doc["generated_shot_frames"] == [9, 9, 5]  # the next 4k+1, trimmed at the end
    # the mp4 has exactly the script's frames, size and rate
    probe = subprocess.run(
        [binary("ffprobe"), "-v", "error", "-count_frames", "-show_entries",
         "stream=nb_read_frames,width,height,r_frame_rate", "-of", "json", str(result.mp4)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["width"], stream["height"], stream["r_frame_rate"]) == (48, 32, "12/1")
    assert int(stream["nb_read_frames"]) == 20
    frames = read_frames(result.mp4, (48, 32))
    assert len(frames) == 20
    # shot boundaries: shot i of the mp4 is its own latents [a, b) decoded alone and trimmed
    # to the script's length; decoding the latents as one clip would give other frames
    vae: WanVAE = tiny_encoders[0]
    assert result.shot_latent_frames == [(0, 3), (3, 6), (6, 8)]
    alone = [vae.decode_shots(result.latents, [r]) for r in result.shot_latent_frames]
    expected = to_uint8(torch.cat([v[:n] for v, n in zip(alone, (7, 9, 4), strict=True)]))
    # every mp4 frame is nearest to its own expected frame (H.264 blurs, it does not move)
    errors = np.abs(frames[:, None] - expected[None].astype(float)).mean(axis=(2, 3, 4))
    assert errors.argmin(axis=1).tolist() == list(range(20)), errors.round(1)
    error = errors.diagonal()
    assert error.max() < 8.0, error  # mean absolute error, 0..255 levels
    whole = vae.decode_shots(result.latents, [(0, 8)])
    assert len(whole) == 29  # 1 + 4 * 7: a joint decode could not even have the right length
    other = to_uint8(whole[: len(frames)]).astype(float)
    assert np.abs(frames - other).mean() > 2 * error.mean()


def test_trimmed_shots_cut_exactly_where_the_script_asks(tmp_path: Path) -> None:
    """Solid-colour shots of 4k+1 frames whose surplus tail frames are white: after trimming
    and encoding, a cut detector finds cuts exactly at the script's cut frames."""
    lengths = [7, 9, 4, 6]
    cuts = list(np.cumsum(lengths)[:-1])
    colours = [(-0.8, -0.2, 0.6), (0.7, -0.7, -0.7), (-0.6, 0.8, -0.4), (0.2, 0.2, -0.9)]
    parts = []
    for n, colour in zip(lengths, colours, strict=True):
        shot = torch.ones(generated_length(n), 3, 48, 64)  # white: the surplus frames
        shot[:n] = torch.tensor(colour).view(1, 3, 1, 1)
        parts.append(shot)
    video = trim_shots(torch.cat(parts), [generated_length(n) for n in lengths], lengths)
    assert len(video) == sum(lengths)
    path = tmp_path / "solid.mp4"
    write_mp4(to_uint8(video), path, 24.0, (64, 48))
    assert cut_frames_in(path, (64, 48)) == cuts
    # a script size that is not a multiple of 16 is generated at the nearest one and scaled
    assert generation_size(50, 30) == (48, 32) and generation_size(5, 900) == (16, 896)
    write_mp4(to_uint8(video), tmp_path / "scaled.mp4", 24.0, (50, 30))
    assert read_frames(tmp_path / "scaled.mp4", (50, 30)).shape == (26, 30, 50, 3)
    assert [generated_length(n) for n in (1, 2, 5, 6, 9)] == [1, 5, 5, 9, 9]


def test_generate_errors_name_what_is_wrong(checkpoint: Path, tmp_path: Path) -> None:
    script_path = three_shot_script(tmp_path)
    (tmp_path / "face.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"face\.png"):
        generate(checkpoint, script_path, tmp_path / "a.mp4", steps=1)
    script = Script.from_dict(json.loads(script_path.read_text()))
    with pytest.raises(ValueError, match="references but no folder"):
        generate(checkpoint, script, tmp_path / "b.mp4", steps=1)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        generate(tmp_path, script_path, tmp_path / "c.mp4", steps=1)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to compare")
def test_written_mp4_does_not_depend_on_the_cpu_count(tmp_path: Path) -> None:
    """ffmpeg sizes x264's threads by the CPUs it may use, and x264's bytes follow them."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (48, 240, 320, 3), dtype=np.uint8)
    frames[:, :, :160] //= 2  # some structure besides the grain
    cpus = os.sched_getaffinity(0)
    written = []
    try:
        for n, allowed in enumerate([{min(cpus)}, cpus]):
            os.sched_setaffinity(0, allowed)  # ffmpeg inherits it
            write_mp4(frames, tmp_path / f"{n}.mp4", 24.0, (320, 240))
            written.append((tmp_path / f"{n}.mp4").read_bytes())
    finally:
        os.sched_setaffinity(0, cpus)
    assert written[0] == written[1]
