"""A model from a separate package, installed as a user would install it, runs in the suite.

The plug-in is ``examples/plugin-model`` (package ``rnnsuite-elman``, model ``elman``,
registered only through the ``rnnsuite.models`` entry point). The test installs
rnnsuite and the plug-in, both non-editable and built by pip from copies of their
sources, into a fresh virtual environment, and runs the ``rnnsuite`` command of that
environment: ``list`` must show ``elman`` and a short ``run`` must write a record.

How the environment is built, and why:

- A fresh venv (``python -m venv`` in ``tmp_path``) with nothing installed in it.
  Installing the full dependencies (torch, pandas, seaborn, optuna, ...) into it would
  be the most complete check, but costs a minute or more here and, where no local
  torch wheel is configured, downloads GBs. ``--system-site-packages`` is no
  substitute: the test runs from a virtual environment (nox's or a developer's), and
  a venv created from it sees the *base* interpreter's site-packages, not the
  environment's, so the dependencies would be missing, or be whatever the base has.
- So the new venv is given the test environment's third-party packages explicitly: a
  ``.pth`` file in its site-packages lists a directory of symlinks to every entry of
  the test environment's site-packages *except* the distributions under test
  (rnnsuite, installed editable there, and any copy of the plug-in). The new venv thus
  has torch & co. but no rnnsuite and no ``elman`` until pip installs them, and
  ``import suite`` cannot reach this checkout: no editable finder, no ``PYTHONPATH``,
  and the commands run in ``tmp_path``. The test asserts that both packages are
  imported from the new venv.
- pip installs with ``--no-deps`` (so that a missing dependency never triggers a large
  download inside a test) and then ``pip check`` must report nothing for rnnsuite or
  the plug-in: every requirement they declare is satisfied. The trade-off: an import
  the plug-in makes without declaring it would go unnoticed if the test environment
  happens to provide it. rnnsuite itself provides everything the example imports.
- Builds use pip's default build isolation, as a user's ``pip install`` does: the
  build backend (setuptools) comes from pip's index into a throw-away build
  environment, so the test environment's own setuptools does not matter.
- pip builds in the source directory (setuptools writes ``*.egg-info`` and ``build/``
  there), so both sources are copied to ``tmp_path`` first: neither this checkout nor
  ``examples/`` is written to, which the test checks for ``examples/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "plugin-model"
UNDER_TEST = ("rnnsuite", "rnnsuite-elman")  # distributions the new venv must not inherit
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "*.pyc")

pytestmark = pytest.mark.slow


def _snapshot(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file()}


def _copy_rnnsuite(dst: Path) -> Path:
    """The files of this checkout that rnnsuite's build reads: pyproject, readme, packages."""
    dst.mkdir()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shutil.copy2(ROOT / "pyproject.toml", dst)
    shutil.copy2(ROOT / project["project"]["readme"], dst)
    for top in sorted({name.split(".")[0] for name in project["tool"]["setuptools"]["packages"]}):
        shutil.copytree(ROOT / top, dst / top, ignore=COPY_IGNORE)
    return dst


def _inherited_names(site: Path) -> set[str]:
    """Top-level entries of ``site`` that belong to the distributions under test."""
    skip: set[str] = set()
    for dist in metadata.distributions(path=[str(site)]):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") in UNDER_TEST:
            skip |= {Path(f).parts[0] for f in dist.files or ()}  # its .dist-info directory included
    return skip


def _link_dependencies(venv_site: Path, farm: Path) -> None:
    """Make the test environment's third-party packages, minus those under test, importable
    in the new venv: one symlink farm per site-packages directory, listed in a .pth file."""
    sites = []
    for key in ("purelib", "platlib"):
        site = Path(sysconfig.get_paths()[key]).resolve()
        if site.is_dir() and site not in sites:
            sites.append(site)
    lines = []
    for i, site in enumerate(sites):
        target = farm / f"site{i}"
        target.mkdir(parents=True)
        skip = _inherited_names(site)
        for entry in site.iterdir():
            if entry.name in skip or entry.name == "__pycache__" or entry.suffix == ".pth":
                continue
            (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        lines.append(str(target))
    (venv_site / "_test_environment_packages.pth").write_text("\n".join(lines) + "\n")


def _run(args: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and bin/ layout of POSIX venvs")
def test_plugin_package_registers_and_runs_in_a_fresh_venv(tmp_path):
    examples_before = _snapshot(PLUGIN)
    src = _copy_rnnsuite(tmp_path / "rnnsuite-src")
    plugin_src = tmp_path / "plugin-src"
    shutil.copytree(PLUGIN, plugin_src, ignore=COPY_IGNORE)

    # a fresh venv without pip: pip, like torch, comes from the test environment below
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python, bindir = venv / "bin" / "python", venv / "bin"
    venv_site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    check=True, capture_output=True, text=True).stdout.strip())
    _link_dependencies(venv_site, tmp_path / "deps")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")

    # nothing of the suite is importable yet: the venv does not see this checkout
    probe = subprocess.run([python, "-c", "import suite"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert probe.returncode != 0, "the fresh venv already imports `suite`; it must not see this checkout"

    _run([python, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "-q", src, plugin_src], tmp_path, env)
    check = subprocess.run([python, "-m", "pip", "check"], cwd=tmp_path, env=env, capture_output=True, text=True)
    unmet = [line for line in check.stdout.splitlines() if line.lower().startswith(UNDER_TEST)]
    assert not unmet, "declared requirements not satisfied:\n" + "\n".join(unmet)

    where = _run([python, "-c", "import suite, rnnsuite_elman; print(suite.__file__); print(rnnsuite_elman.__file__)"],
                 tmp_path, env).stdout.split()
    assert all(Path(p).resolve().is_relative_to(venv_site.resolve()) for p in where), where

    listing = _run([bindir / "rnnsuite", "list"], tmp_path, env).stdout
    models = listing.split("models:", 1)[1].split("run keys", 1)[0]
    assert any(line.strip().startswith("elman ") for line in models.splitlines()), listing
    assert "w_gain: float = 1.0" in models, listing

    out = tmp_path / "runs"
    _run([bindir / "rnnsuite", "run", "--task", "adding", "--model", "elman", "--set", "steps=5",
          "--set", "hidden_size=4", "--set", "task.T=5", "--set", "task.n_val=8", "--set", "task.n_test=8",
          "--set", "probe_batch=8", "--device", "cpu", "--quiet", "--out", out], tmp_path, env)
    records = list(out.glob("adding/elman/*/record.json"))
    assert len(records) == 1, sorted(str(p) for p in out.rglob("*"))
    record = json.loads(records[0].read_text())
    assert record["model"] == "elman" and record["config"]["model"] == "elman"
    assert record["status"] != "diverged"

    assert _snapshot(PLUGIN) == examples_before, "the test wrote into examples/"
