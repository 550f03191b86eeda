"""The training loop on shards the pipeline built: the loss falls, a resumed run repeats an
uninterrupted one exactly, checkpoints are complete-or-invisible, TensorBoard gets the logs,
and (slow) two torchrun processes train with DDP and with FSDP2 + resume on gloo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from muss_builder.train.cache import LatentShardDataset, cache_latents
from muss_builder.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_weights_for_inference,
    resolve_checkpoint,
)
from muss_builder.train.config import TrainConfig, load_train_config
from muss_builder.train.loop import fit, peak_bf16_tflops
from muss_builder.train.optim import lr_factor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def latent_cache(tmp_path_factory, built_dataset, face_dataset, tiny_encoders) -> Path:
    """Both pipeline-built datasets (synthetic films; real faces with reference crops)
    encoded once with the train-tiny data settings and the tiny random encoders."""
    vae, text = tiny_encoders
    shards = sorted((built_dataset.out / "shards").glob("*.tar"))
    shards += sorted((face_dataset.out / "shards").glob("*.tar"))
    out = tmp_path_factory.mktemp("latent-cache")
    data = load_train_config("tiny").data_config()
    summary = cache_latents(shards, out, data, vae, text, subject_loss_weight=2.0, dtype="float32")
    assert summary.n_samples >= 7  # 5 + 2 windows: one sample each, both tracks in one
    # subject-track samples bring reference crops: training exercises the reference tokens
    refs = [len(ex.ref_shots) for ex in LatentShardDataset(out, shuffle_buffer=0)]
    assert sum(refs) > 0, refs
    return out


def tiny(out: Path, cache: Path, **changes) -> TrainConfig:
    return load_train_config(
        "tiny", {"latent_cache": str(cache), "output_dir": str(out), "log_every": 5, **changes}
    )


def test_loss_falls_on_pipeline_shards(latent_cache: Path, tmp_path: Path) -> None:
    result = fit(tiny(tmp_path, latent_cache))
    assert result.final_step == 40 and len(result.losses) == 40
    first, last = result.losses[:5], result.losses[-10:]
    ratio = (sum(last) / len(last)) / (sum(first) / len(first))
    assert ratio < 0.85, (ratio, result.losses)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    # TensorBoard got every scalar the issue asks for
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    wanted = {"train/loss", "train/grad_norm", "train/lr", "perf/tokens_per_s"}
    assert wanted | {"perf/samples_per_s"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(5, 41, 5))
    assert "perf/mfu" not in tags  # no bf16 peak on a CPU: MFU is not made up
    # checkpoints at 20 and 40, both kept (keep_last 2), with the EMA and the model shape
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000020", "step-00000040"]
    loaded = load_weights_for_inference(tmp_path)
    assert loaded["which"] == "ema" and loaded["doc"]["model_config"]["dim"] == 64
    assert loaded["doc"]["config"]["encoders"]["vae"].endswith("vae")


def test_resume_repeats_the_uninterrupted_run(latent_cache: Path, tmp_path: Path) -> None:
    changes = {"optim": {"total_steps": 12, "warmup_steps": 4}, "checkpoint_every": 6}
    whole = fit(tiny(tmp_path / "whole", latent_cache, **changes))
    part = fit(tiny(tmp_path / "split", latent_cache, **changes), until_step=7)
    assert part.final_step == 7 and latest_checkpoint(tmp_path / "split").name.endswith("07")
    rest = fit(tiny(tmp_path / "split", latent_cache, **changes), resume=True)
    assert rest.start_step == 7 and rest.steps == list(range(8, 13))
    assert part.losses + rest.losses == pytest.approx(whole.losses, rel=1e-6, abs=0)
    assert rest.lrs == pytest.approx(whole.lrs[7:])
    for name in ("model", "ema"):
        a = torch.load(tmp_path / f"whole/checkpoints/step-00000012/{name}.pt")
        b = torch.load(tmp_path / f"split/checkpoints/step-00000012/{name}.pt")
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)


def test_checkpoints_are_complete_or_ignored(latent_cache: Path, tmp_path: Path) -> None:
    cfg = tiny(tmp_path, latent_cache, optim={"total_steps": 6}, checkpoint_every=2, keep_last=1)
    fit(cfg)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000006"]
    # a folder that a crash left without its COMPLETE marker is never picked
    broken = tmp_path / "checkpoints" / "step-00000099"
    broken.mkdir()
    (broken / "model.pt").write_bytes(b"half")
    assert latest_checkpoint(tmp_path).name == "step-00000006"
    with pytest.raises(CheckpointError, match="incomplete"):
        resolve_checkpoint(broken)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        resolve_checkpoint(tmp_path / "nowhere")
    # a checkpoint written by 2 ranks cannot resume in 1 (each rank's data position differs)
    doc_path = tmp_path / "checkpoints/step-00000006/trainer.json"
    doc = json.loads(doc_path.read_text())
    doc_path.write_text(json.dumps({**doc, "world_size": 2}))
    with pytest.raises(CheckpointError, match="same world size"):
        fit(
            cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"total_steps": 8})}),
            resume=True,
        )


def test_encodes_shards_on_the_fly(built_dataset, tiny_encoders, tmp_path: Path) -> None:
    vae, text = tiny_encoders
    cfg = load_train_config(
        "tiny",
        {
            "shards": [str(built_dataset.out / "shards")],
            "encoders": {"vae": str(vae.path), "text_encoder": str(text.path)},
            "output_dir": str(tmp_path),
            "optim": {"total_steps": 3},
        },
    )
    result = fit(cfg)
    assert result.final_step == 3 and all(0 < x < 10 for x in result.losses)
    saved = load_weights_for_inference(tmp_path)["doc"]["config"]
    assert saved["encoders"]["vae"] == str(vae.path)


def test_lr_schedule_warmup_then_cosine() -> None:
    cfg = TrainConfig(optim={"warmup_steps": 4, "total_steps": 14, "min_lr_ratio": 0.1})
    assert [lr_factor(s, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(9, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # half way down the cosine
    assert lr_factor(14, cfg) == pytest.approx(0.1)
    flat = TrainConfig(optim={"warmup_steps": 0, "total_steps": 10, "cosine": False})
    assert {lr_factor(s, flat) for s in range(10)} == {1.0}


RANKS = textwrap.dedent(
    """
    import gc, json, sys, torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # one group for the three fits: fit() leaves it open
    from muss_builder.train.config import load_train_config
    from muss_builder.train.loop import fit
    cache, out = sys.argv[1], sys.argv[2]
    def cfg(name, parallel):
        return load_train_config("tiny", {"latent_cache": cache, "output_dir": f"{out}/{name}",
            "parallel": parallel, "optim": {"total_steps": 4}, "checkpoint_every": 2})
    ddp = fit(cfg("ddp", "ddp"))
    head = fit(cfg("fsdp", "fsdp2"), until_step=2)
    tail = fit(cfg("fsdp", "fsdp2"), resume=True)
    rank = dist.get_rank()
    if rank == 0:
        with open(f"{out}/r.json", "w") as fh:
            json.dump({"ddp": ddp.losses, "fsdp": head.losses + tail.losses}, fh)
    # both ranks done before the group goes, then the rank ends as `train fit` ends one
    # (see finish_rank_process: gloo's native loop thread outlives the group)
    dist.barrier()
    gc.collect()
    dist.destroy_process_group()
    from muss_builder.cli.train_cmd import finish_rank_process
    print(f"rank {rank} finished", flush=True)
    finish_rank_process()
    """
)


@pytest.mark.slow
def test_torchrun_two_ranks_ddp_and_fsdp2_resume(latent_cache: Path, tmp_path: Path) -> None:
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:  # torchrun's --master_port 0 hangs in the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(port),
           str(script), str(latent_cache), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-6000:])
    assert "rank 0 finished" in proc.stdout and "rank 1 finished" in proc.stdout
    losses = json.loads((tmp_path / "r.json").read_text())
    assert len(losses["ddp"]) == 4
    # FSDP2 (sharded params, EMA and optimiser; stopped and resumed) trains like DDP
    assert losses["fsdp"] == pytest.approx(losses["ddp"], rel=1e-4)
    for name in ("ddp", "fsdp"):
        step = tmp_path / name / "checkpoints" / "step-00000004"
        assert json.loads((step / "trainer.json").read_text())["world_size"] == 2
        ranks = torch.load(step / "ranks.pt", weights_only=False)
        assert [r["data_state"]["rank"] for r in ranks] == [0, 1]
    ddp_w = torch.load(tmp_path / "ddp/checkpoints/step-00000004/model.pt")
    fsdp_w = torch.load(tmp_path / "fsdp/checkpoints/step-00000004/model.pt")
    assert ddp_w.keys() == fsdp_w.keys()
    for key in ddp_w:
        torch.testing.assert_close(ddp_w[key], fsdp_w[key], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", ["tiny", "small", "wan1.3b"])
def test_shipped_train_configs_load(name: str) -> None:
    cfg = load_train_config(name)
    assert cfg.model.preset == name and cfg.data_config().frames_per_shot_max % 4 == 1
    assert cfg.model.build_config().text_dim == (32 if name == "tiny" else 4096)


def test_config_mistakes_are_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"(?s)data: .*fsp"):
        load_train_config("tiny", {"data": {"fsp": 8}})
    with pytest.raises(ValidationError, match="no_such_field"):
        load_train_config("tiny", {"model": {"overrides": {"no_such_field": 1}}})
    with pytest.raises(FileNotFoundError, match="default"):
        load_train_config("default")  # a pipeline config, not a train config
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_train_config(bad)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_compiled_checkpointed_training_on_gpu(latent_cache: Path, tmp_path: Path) -> None:
    cfg = tiny(
        tmp_path,
        latent_cache,
        device="cuda",
        precision="bf16",
        compile=True,
        activation_checkpointing=True,
        optim={"total_steps": 6},
    )
    result = fit(cfg)
    assert result.final_step == 6 and all(0 < x < 10 for x in result.losses)
    if peak_bf16_tflops(torch.device("cuda")) is not None:  # a GPU in the peak table
        assert result.mfu is not None and 0 < result.mfu < 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_training_on_cuda_without_a_gpu_says_so_before_starting() -> None:
    from muss_builder.core.models import DeviceUnavailableError
    from muss_builder.train.loop import setup_distributed

    with pytest.raises(DeviceUnavailableError, match="training device 'cuda' requested"):
        setup_distributed(TrainConfig(device="cuda"))
