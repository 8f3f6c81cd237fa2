"""`rnnsuite export --to tensorboard|mlflow|wandb`: what each tracker holds is read back
with that library's own reader (TensorBoard's event accumulator, MLflow's client, the
records of W&B's offline run file decoded with W&B's protobuf schema), and exporting
twice leaves one run per configuration."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path

import pandas as pd
import pytest

from suite.cli.main import main
from suite.core import records
from suite.core.configure import make_config
from suite.core.harness import run

SETS = ["steps=20", "task.T=5", "hidden_size=8", "batch_size=8", "task.n_val=16", "task.n_test=16",
        "eval_every=10", "probes=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    import torch

    root, threads = tmp_path_factory.mktemp("runs"), torch.get_num_threads()
    torch.set_num_threads(1)  # tiny runs: a second thread only waits on a loaded machine
    try:
        for model in ("gru", "lstm"):
            run(make_config("adding", model, 0, SETS, "cpu"), out=root, quiet=True)
    finally:
        torch.set_num_threads(threads)
    return root


def copy_of(runs: Path, tmp_path: Path) -> Path:
    shutil.copytree(runs, tmp_path / "runs")
    return tmp_path / "runs"


def the_records(root: Path) -> dict[str, dict]:
    return {rec["config_hash"]: rec for _, rec in records.iter_records(root, skipped=[])}


def change_a_record(root: Path) -> dict:
    """What `--overwrite` leaves: the same configuration, another record."""
    path = next(root.glob("adding/gru/*/record.json"))
    rec = json.loads(path.read_text())
    rec["metrics"]["test"] = 0.125
    path.write_text(json.dumps(rec))
    return rec


def export(root: Path, to: str, out: Path, capsys) -> str:
    assert main(["export", str(root), "--to", to, "--out", str(out), "-q"]) == 0
    return capsys.readouterr().out


def needs(module: str, extra: str):
    """The tracker's library, or a skip that names the extra it comes with."""
    return pytest.importorskip(module, reason=f"{module} is not installed: pip install 'rnnsuite[{extra}]' "
                                              f"(or [trackers]; `nox -s tests` installs it)")


def test_tensorboard(runs, tmp_path, capsys):
    needs("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    root, out = copy_of(runs, tmp_path), tmp_path / "tb"
    (root / "adding" / "broken").mkdir()
    (root / "adding" / "broken" / "record.json").write_text("{")  # one unreadable record among good ones
    text = export(root, "tensorboard", out, capsys)
    assert "2 exported, 0 replaced, 0 unchanged, 0 failed" in text and "warning: skipped" in text
    for chash, rec in the_records(root).items():
        (run_dir,) = out.glob(f"adding/{rec['model']}/s0-{chash[:10]}")
        acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
        acc.Reload()
        curves = pd.read_csv(next(root.glob(f"adding/{rec['model']}/s0-{chash[:10]}/curves.csv")))
        val = curves[curves.split == "val"]
        assert [e.step for e in acc.Scalars("val/mse")] == list(val.step)
        assert [e.value for e in acc.Scalars("val/mse")] == pytest.approx(list(val.metric), rel=1e-6)
        assert acc.Scalars("test/mse")[0].value == pytest.approx(rec["metrics"]["test"], rel=1e-6)
        assert len(acc.Scalars("gradient_profile/step_0")) == 5  # ‖∂L/∂h_t‖ over t = 1..T
        assert "gradients/profile" in acc.Tags()["images"]
        assert "environment/text_summary" in acc.Tags()["tensors"]
        start = plugin_data_pb2.HParamsPluginData.FromString(
            acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
        assert start.hparams["lr"].number_value == rec["config"]["lr"]
        assert start.hparams["task.T"].number_value == 5 and start.hparams["model"].string_value == rec["model"]

    text = export(root, "tensorboard", out, capsys)
    assert "0 exported, 0 replaced, 2 unchanged" in text
    changed = change_a_record(root)
    text = export(root, "tensorboard", out, capsys)
    assert "0 exported, 1 replaced, 1 unchanged" in text
    (run_dir,) = out.glob("adding/gru/s0-*")
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # replaced, not appended
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert acc.Scalars("test/mse")[0].value == changed["metrics"]["test"]
    assert not [p for p in out.rglob(".*") if p.name.endswith((".staging", ".old"))]


def test_mlflow(runs, tmp_path, capsys):
    needs("mlflow", "mlflow")
    from mlflow.tracking import MlflowClient

    root, out = copy_of(runs, tmp_path), tmp_path / "mlflow"
    text = export(root, "mlflow", out, capsys)
    assert "2 exported" in text
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "rnnsuite"]
    found = client.search_runs([experiment.experiment_id])
    assert len(found) == 2
    for chash, rec in the_records(root).items():
        (mine,) = [r for r in found if r.data.tags["rnnsuite.config_hash"] == chash]
        assert mine.info.run_name == f"adding/{rec['model']}/s0-{chash[:10]}"
        assert mine.data.params["lr"] == str(rec["config"]["lr"]) and mine.data.params["task.T"] == "5"
        assert mine.data.metrics["test/mse"] == pytest.approx(rec["metrics"]["test"])
        assert mine.data.tags["env.versions.torch"] == rec["environment"]["versions"]["torch"]
        history = client.get_metric_history(mine.info.run_id, "train/loss")
        assert [m.step for m in history] == [10, 20]
        artifacts = {a.path for a in client.list_artifacts(mine.info.run_id)}
        assert {"gradient_profile.csv", "gradient_profile.png", "record.json", "curves.csv",
                "environment.json"} <= artifacts

    assert "2 unchanged" in export(root, "mlflow", out, capsys)
    change_a_record(root)
    assert "1 replaced, 1 unchanged" in export(root, "mlflow", out, capsys)
    found = client.search_runs([experiment.experiment_id])
    assert len(found) == 2 and sorted(r.data.metrics["test/mse"] for r in found)[0] == 0.125


def wandb_records(path: Path):
    """The records of a W&B transaction log (a LevelDB-style log of 32 KiB blocks after a
    7-byte ':W&B' header), parsed with W&B's own protobuf schema."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        room = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if room < 7 or (length == 0 and kind == 0):  # the rest of a block is padding
            pos += room
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # full, or the last piece
            yield wandb_internal_pb2.Record.FromString(pending + chunk)
            pending = b""
        else:
            pending += chunk


def read_wandb(run_dir: Path) -> dict:
    (log,) = run_dir.glob("run-*.wandb")
    out = {"config": {}, "history": [], "summary": {}}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["id"], out["name"] = record.run.run_id, record.run.display_name
            out["config"].update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.history.item})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                   for i in record.summary.update})
    return out


def test_wandb_offline(runs, tmp_path, capsys, monkeypatch):
    needs("wandb", "wandb")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):  # nothing written under $HOME
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    root, out = copy_of(runs, tmp_path), tmp_path / "wandb"
    text = export(root, "wandb", out, capsys)
    assert "2 exported" in text and "wandb sync" in text
    for chash, rec in the_records(root).items():
        (run_dir,) = (out / "wandb").glob(f"offline-run-*-{chash}")
        got = read_wandb(run_dir)
        assert got["id"] == chash and got["name"] == f"adding/{rec['model']}/s0-{chash[:10]}"
        assert got["config"]["lr"] == rec["config"]["lr"] and got["config"]["task.T"] == 5
        assert [h["_step"] for h in got["history"]] == [10, 20]
        assert got["history"][-1]["val/mse"] == pytest.approx(rec["metrics"]["val_final"])
        assert got["summary"]["test/mse"] == pytest.approx(rec["metrics"]["test"])
        assert got["summary"]["environment"]["versions"]["torch"] == rec["environment"]["versions"]["torch"]
        assert got["summary"]["gradients/profile/_type"] == "table-file"
        assert list((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert "2 unchanged" in export(root, "wandb", out, capsys)
    change_a_record(root)
    assert "1 replaced, 1 unchanged" in export(root, "wandb", out, capsys)
    assert len(list((out / "wandb").glob("offline-run-*"))) == 2  # one directory per run, replaced


def test_a_missing_tracker_names_its_extra(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    assert main(["export", str(runs), "--to", "wandb", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    # rnnsuite is on no package index: the hint installs the extra from the checkout
    assert err == ("rnnsuite: error: --to wandb needs the wandb package: from the checkout, "
                   "pip install -c constraints.txt -e '.[wandb]'")
