"""`pip wheel .` then a clean install works: the wheel, installed into a fresh venv, runs `streamtune` on
shipped files, and `gate` finds its default rules inside the package (importlib.resources), not in a source
tree that an installed copy does not have.

No network: the wheel is built without build isolation (setuptools is already installed) from a copy of the
sources, and the fresh venv sees this environment's dependencies through a .pth line. A .pth line does not
run the editable install's import hook, so `streamtune_cli` is imported from the wheel (checked below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv with the wheel of this source tree installed."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    # A copy, so that building writes no build/ or egg-info into the working tree.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "streamtune_cli", source / "streamtune_cli", ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index",
                  "-q", "-w", str(dist)])
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("streamtune_cli-*.whl")

    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    assert done.returncode == 0, done.stderr
    # This environment's dependencies (typer, pydantic, ...), without its editable streamtune_cli.
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(site, "_streamtune_test_deps.pth").write_text("\n".join(deps) + "\n")
    return venv / "bin"


def _outside_the_repo(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "CI": "true", "COLUMNS": "120"}


def test_the_installed_package_is_the_wheel(installed: Path, tmp_path: Path) -> None:
    probe = _run([str(installed / "python"), "-c", "import streamtune_cli; print(streamtune_cli.__file__)"],
                 cwd=tmp_path, env=_outside_the_repo(tmp_path))
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).is_relative_to(installed.parent), probe.stdout
    version = _run([str(installed / "streamtune"), "--version"], cwd=tmp_path, env=_outside_the_repo(tmp_path))
    assert version.returncode == 0 and version.stdout.startswith("streamtune "), version.stderr


def test_gate_without_rules_uses_the_packaged_default_rules(installed: Path, tmp_path: Path) -> None:
    # A shipped report against its own baseline: passes; a regressed copy: exit 1. No --rules anywhere.
    baseline = ROOT / "configs/gates/baseline-bench-quick.json"
    streamtune = str(installed / "streamtune")
    env = _outside_the_repo(tmp_path)
    same = _run([streamtune, "gate", str(baseline), "--baseline", str(baseline)], cwd=tmp_path, env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "reconfigurations" in same.stdout
    report = json.loads(baseline.read_text())
    tuner = next(name for name in report["aggregates"] if name != "oracle")
    report["aggregates"][tuner]["reconfigurations_mean"] *= 3
    worse = tmp_path / "worse.json"
    worse.write_text(json.dumps(report))
    regressed = _run([streamtune, "gate", str(worse), "--baseline", str(baseline)], cwd=tmp_path, env=env)
    assert regressed.returncode == 1, regressed.stdout + regressed.stderr
    assert tuner in regressed.stdout


def test_the_installed_cli_validates_and_tunes_a_shipped_spec(installed: Path, tmp_path: Path) -> None:
    streamtune = str(installed / "streamtune")
    env = _outside_the_repo(tmp_path)
    spec = str(ROOT / "configs/synthetic/linear_chain.yaml")
    assert _run([streamtune, "validate", str(ROOT / "configs/nexmark/q5.yaml")], cwd=tmp_path, env=env).returncode == 0
    tuned = _run([streamtune, "tune", spec, "--tuner", "ds2", "--json"], cwd=tmp_path, env=env)
    assert tuned.returncode == 0, tuned.stderr
    assert json.loads(tuned.stdout)["schema"] == "streamtune.tune-summary/1"
