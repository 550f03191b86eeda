"""The command line as scripts use it: -h and -V, help without internal type labels,
``python -m muss_builder``, -v/-q, NO_COLOR, ``build --json`` and ``build --pack`` with the
documented exit codes."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from muss_builder import __version__
from muss_builder.cli.main import app
from muss_builder.testing.synthetic_films import SyntheticFilm

runner = CliRunner()
MODULE = [sys.executable, "-m", "muss_builder"]
# an SGR sequence whose parameters set a colour (30-38, 40-48, 90-97, 100-107), not bold/italic
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _colours(text: str) -> list[str]:
    found = []
    for params in _SGR.findall(text):
        for p in filter(None, params.split(";")):
            n = int(p)
            if 30 <= n <= 38 or 40 <= n <= 48 or 90 <= n <= 97 or 100 <= n <= 107:
                found.append(params)
    return found


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return env | {"PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "100"} | extra


def _command_paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [(*prefix, c.name or c.callback.__name__) for c in group.registered_commands]
    for sub in group.registered_groups:
        paths += _command_paths(sub.typer_instance, (*prefix, sub.name))
    return paths


def test_short_help_and_version() -> None:
    assert runner.invoke(app, ["-h"]).stdout == runner.invoke(app, ["--help"]).stdout
    assert "select" in runner.invoke(app, ["-h"]).stdout
    build_help = runner.invoke(app, ["build", "-h"])
    assert build_help.exit_code == 0
    for code in ("3 some films failed", "5 --pack: the build is complete but could not be packed"):
        assert code in build_help.stdout
    for flag in ("-V", "--version"):
        done = runner.invoke(app, [flag])
        assert done.exit_code == 0 and done.stdout.strip() == f"muss-builder {__version__}"


def test_help_has_no_internal_type_labels() -> None:
    paths = _command_paths(app)
    assert ("build",) in paths and ("select",) in paths and ("bench", "run") in paths
    for path in [(), *paths]:
        done = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert done.exit_code == 0, path
        labels = re.findall(r"<[a-z_\[\]|, .]+>", done.stdout)
        assert not labels, (path, labels)
        assert "{" not in done.stdout.split("\n", 3)[1], path  # usage: MOVIES..., not {movies}


def test_python_dash_m_and_no_color(tmp_path: Path) -> None:
    done = subprocess.run([*MODULE, "-V"], capture_output=True, text=True, env=_env(), check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"muss-builder {__version__}"
    missing = [*MODULE, "validate", str(tmp_path / "nothing-*.tar")]
    seen_colour = False
    for args in ([*MODULE, "build", "--help"], [*MODULE, "select"], missing):
        coloured = subprocess.run(args, capture_output=True, text=True, env=_env(FORCE_COLOR="1"))
        plain = subprocess.run(
            args, capture_output=True, text=True, env=_env(FORCE_COLOR="1", NO_COLOR="1")
        )
        assert plain.returncode == coloured.returncode
        assert not _colours(plain.stdout + plain.stderr), args
        seen_colour = seen_colour or bool(_colours(coloured.stdout + coloured.stderr))
    assert seen_colour  # without NO_COLOR there is colour: the check can see it


@pytest.fixture
def _root_level():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


def test_verbose_and_quiet_set_the_log_level(_root_level: logging.Logger, tmp_path) -> None:
    for flags, level in ((["-v"], logging.INFO), (["-vv"], logging.DEBUG), (["-q"], logging.ERROR)):
        done = runner.invoke(app, [*flags, "validate", str(tmp_path / "none.tar")])
        assert done.exit_code == 2  # the command ran, after the global flags
        assert _root_level.level == level, flags


def test_build_json_pack_and_exit_codes(tmp_path: Path, twelve_film: SyntheticFilm) -> None:
    """A film that fails: exit 3, no packing; --allow-failures: exit 0 and packed; the JSON
    summary on stdout, progress on stderr."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    args = ["build", str(twelve_film.path), str(empty), "--out", str(out), "-c", "tiny"]
    args += ["--executor", "inline", "--pack", "--pack-target-bytes", "100kB", "--json"]
    done = runner.invoke(app, args)
    assert done.exit_code == 3, done.output
    summary = json.loads(done.stdout)
    assert summary["exit_code"] == 3 and summary["packed"] is None
    assert summary["films"] | {"ok": 1, "failed": 1} == summary["films"]
    assert {r["status"] for r in summary["results"]} == {"ok", "failed"}
    assert "not packing" in done.stderr and not (out / "packed").exists()
    done = runner.invoke(app, [*args, "--allow-failures", "--pack-seed", "3"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["films"]["resumed"] == 1 and summary["exit_code"] == 0
    packed = summary["packed"]
    assert packed["dest"] == str(out / "packed")
    assert sum(s["n_samples"] for s in packed["splits"].values()) == summary["samples_in_index"]
    manifest = json.loads((out / "packed" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["options"]["target_bytes"] == 100_000
    assert runner.invoke(app, ["validate", str(out / "packed")]).exit_code == 0


def test_build_pack_rejects_bad_options_before_building(tmp_path: Path) -> None:
    args = ["build", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "o"), "--pack"]
    done = runner.invoke(app, [*args, "--pack-splits", "train=0.5"])
    assert done.exit_code == 2 and "add up to" in done.stderr
    assert not (tmp_path / "o").exists()
