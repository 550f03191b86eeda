"""``muss-builder train fit|cache|sample``: the bundled multi-shot generator trainer.

Under ``torchrun`` every rank runs the same command (``torchrun --nproc_per_node 8
$(which muss-builder) train fit ...``); ranks come from the environment.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from muss_builder.core.overrides import dotted_overrides

log = logging.getLogger("muss_builder.train")
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by SIGINT


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["optim.lr=1e-3", "data.fps=8"]`` -> nested dict; values are parsed as YAML."""
    try:
        return dotted_overrides(pairs or [])
    except ValueError as exc:
        raise _fail(f"--set {exc}") from exc


def _config(config: str, extra: dict[str, Any]) -> Any:
    from muss_builder.train.config import load_train_config

    try:
        return load_train_config(config, extra)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        raise _fail(f"config {config}: " + "; ".join(lines)) from exc
    except ValueError as exc:  # YAML that is not a mapping
        raise _fail(f"config {config}: {exc}") from exc


def _with_holdout(config: str, extra: dict[str, Any], suite_dir: Path | None) -> Any:
    """The config, with the suite's held-out films added to ``data.exclude_film_ids``."""
    cfg = _config(config, extra)
    if suite_dir is None:
        return cfg
    from muss_builder.bench.suite import SuiteError, held_out_film_ids
    from muss_builder.train.config import merge

    try:
        held = held_out_film_ids(suite_dir)
    except SuiteError as exc:
        raise _fail(f"--holdout: {exc}") from exc
    # added to any the config already excludes; validated by DataConfig like a YAML value
    films = sorted(held | set(cfg.data.get("exclude_film_ids", [])))
    cfg = _config(config, merge(extra, {"data": {"exclude_film_ids": films}}))
    _setup_logging()
    log.info("excluding %d held-out film(s) of the suite %s", len(held), suite_dir)
    return cfg


def _setup_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _user_errors() -> tuple[type[BaseException], ...]:
    from muss_builder.media.tools import MediaError
    from muss_builder.shards.reader import ShardFormatError
    from muss_builder.train.checkpoint import CheckpointError
    from muss_builder.train.feed import DataError
    from muss_builder.train.script import ScriptError

    # ValueError: inputs the model or data refuse (shapes, widths), named in the message
    return (
        DataError,
        CheckpointError,
        ShardFormatError,
        ScriptError,
        MediaError,
        OSError,
        ValueError,
    )


def fit(
    config: str = typer.Option("tiny", "--config", help="train YAML path or name (train-NAME)"),
    shards: list[str] | None = typer.Option(
        None,
        "--shards",
        help="shards (repeatable; overrides config): files, folders, globs, brace patterns "
        "(train-both-{00000..00127}.tar), manifest.json, s3:// urls",
    ),
    out: Path | None = typer.Option(None, "--out", help="run folder (default: output_dir)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the newest checkpoint"),
    latent_cache: Path | None = typer.Option(
        None, "--latent-cache", help="train on latents written by `train cache`"
    ),
    until_step: int | None = typer.Option(
        None, "--until-step", min=1, help="stop at this step (the LR schedule is unchanged)"
    ),
    holdout: Path | None = typer.Option(
        None, "--holdout", help="bench suite folder: never train on its held-out films"
    ),
    sets: list[str] | None = typer.Option(
        None, "--set", help="override a config field, e.g. --set optim.lr=1e-4 (repeatable)"
    ),
) -> None:
    """Train the multi-shot DiT on shards (or cached latents); checkpoints go to OUT."""
    extra = _overrides(sets)
    if shards:
        extra["shards"] = list(shards)
    if out is not None:
        extra["output_dir"] = str(out)
    if latent_cache is not None:
        extra["latent_cache"] = str(latent_cache)
    cfg = _with_holdout(config, extra, holdout)
    if not cfg.shards and not cfg.latent_cache:
        raise _fail("no data: pass --shards DIR_OR_GLOB or --latent-cache DIR")
    _setup_logging()
    from muss_builder.train.loop import fit as run_fit

    try:
        result = run_fit(cfg, resume=resume, until_step=until_step)
    except _user_errors() as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt as exc:
        raise _interrupted(Path(cfg.output_dir)) from exc
    if int(os.environ.get("RANK", "0")) == 0:
        first = f"{result.losses[0]:.4f}" if result.losses else "-"
        last = f"{result.losses[-1]:.4f}" if result.losses else "-"
        typer.echo(
            f"trained steps {result.start_step}..{result.final_step} in {result.seconds:.1f}s; "
            f"loss {first} -> {last}; checkpoint {result.checkpoint}"
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        finish_rank_process()


def _interrupted(out: Path) -> typer.Exit:
    """Ctrl-C: one line saying where the run can go on from, and exit 130."""
    from muss_builder.train.checkpoint import latest_checkpoint

    newest = latest_checkpoint(out)
    where = (
        f"the newest checkpoint is {newest}; rerun with --resume to go on from it"
        if newest is not None
        else "no checkpoint was saved yet; rerun to start again"
    )
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line, not one a rank
        typer.echo(f"interrupted: {where}", err=True)
    return typer.Exit(EXIT_INTERRUPTED)


def finish_rank_process() -> None:
    """End a torchrun rank whose work is done and whose process group is destroyed, without
    interpreter finalisation.

    gloo keeps a native event-loop thread (``gloo_tcp_loop``, seen in /proc/self/task) alive
    after ``destroy_process_group``; at interpreter exit C++ static destructors and tensor
    frees that need the GIL can then run beside it, and a rank whose training finished was
    seen to abort there ("terminate called without an active exception", SIGABRT), which
    torchrun reports as a failed run. Output is flushed first, so nothing is lost.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def cache(
    config: str = typer.Option("tiny", "--config", help="train YAML path or name"),
    shards: list[str] | None = typer.Option(
        None, "--shards", help="shards: files, folders, globs, brace patterns, manifests, s3://"
    ),
    out: Path = typer.Option(..., "--out", help="cache folder (shards/ + cache.json)"),
    dtype: str = typer.Option(
        "bfloat16", "--dtype", help="float storage: bfloat16|float16|float32"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="re-encode existing cached shards"),
    holdout: Path | None = typer.Option(
        None, "--holdout", help="bench suite folder: leave its held-out films out of the cache"
    ),
    sets: list[str] | None = typer.Option(None, "--set", help="override a config field"),
) -> None:
    """Encode shards once with the VAE and text encoder (training then skips both)."""
    extra = _overrides(sets)
    if shards:
        extra["shards"] = list(shards)
    cfg = _with_holdout(config, extra, holdout)
    if not cfg.shards:
        raise _fail("no shards: pass --shards DIR_OR_GLOB")
    if dtype not in ("bfloat16", "float16", "float32"):
        raise _fail(f"--dtype {dtype!r}: expected bfloat16, float16 or float32")
    _setup_logging()
    import torch

    from muss_builder.train.cache import cache_latents
    from muss_builder.train.feed import expand_shards, load_encoders, resolve_encoders

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cuda else "cpu")
    try:
        cfg = resolve_encoders(cfg, out, main=rank == 0)
        vae, text = load_encoders(cfg, device)
        data = cfg.data_config()
        summary = cache_latents(
            expand_shards(cfg.shards, data.tracks),
            out,
            data,
            vae,
            text,
            subject_loss_weight=cfg.flow.subject_box_weight,
            dtype=dtype,  # type: ignore[arg-type]
            rank=rank,
            world_size=world,
            overwrite=overwrite,
        )
    except _user_errors() as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"cached {summary.n_samples} samples in {len(summary.written)} shards "
        f"({len(summary.skipped_existing)} already there) under {out}"
    )


def sample(
    ckpt: Path = typer.Option(..., "--ckpt", help="checkpoint folder or run folder (newest)"),
    script: Path = typer.Option(..., "--script", help="multi-shot script JSON"),
    out: Path = typer.Option(..., "--out", help="output .mp4 (cuts JSON written beside it)"),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Euler steps"),
    cfg_scale: float | None = typer.Option(None, "--cfg-scale", min=0.0, help="CFG scale"),
    shift: float | None = typer.Option(None, "--shift", min=0.0, help="timestep shift"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto|cpu|cuda"),
    no_ema: bool = typer.Option(False, "--no-ema", help="raw weights instead of the EMA"),
) -> None:
    """Generate the multi-shot video SCRIPT asks for: OUT.mp4 plus OUT.cuts.json."""
    if out.suffix.lower() != ".mp4":
        raise _fail(f"--out {out}: must end in .mp4")
    if device not in ("auto", "cpu", "cuda"):
        raise _fail(f"--device {device!r}: expected auto, cpu or cuda")
    from muss_builder.train.sample import generate

    try:
        result = generate(
            ckpt,
            script,
            out,
            steps=steps,
            cfg_scale=cfg_scale,
            shift=shift,
            seed=seed,
            device=device,
            use_ema=not no_ema,
        )
    except _user_errors() as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"wrote {result.mp4} ({result.n_frames} frames, cuts at {result.cut_frames}) and "
        f"{result.cuts_json} with the {result.weights} weights of {result.checkpoint}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``train`` group (a fresh one per app, so registering twice is harmless)."""
    train = typer.Typer(
        help="Train the multi-shot DiT on shards, cache latents, sample videos.",
        no_args_is_help=True,
    )
    train.command("fit")(fit)
    train.command("cache")(cache)
    train.command("sample")(sample)
    app.add_typer(train, name="train")
