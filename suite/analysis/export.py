"""Run records into the trackers researchers look at runs with: TensorBoard, MLflow and
Weights & Biases. The records stay the source of truth; an export is rebuilt from them
at any time, offline (compute nodes often have no network).

    rnnsuite export results/runs --to tensorboard      # then: tensorboard --logdir results/export/tensorboard
    rnnsuite export results/runs --to mlflow           # then: mlflow ui --backend-store-uri \\
                                                       #   sqlite:///results/export/mlflow/mlflow.db
    rnnsuite export results/runs --to mlflow --tracking-uri http://mlflow.example:5000
    rnnsuite export results/runs --to wandb            # offline runs; then:
                                                       #   wandb sync results/export/wandb/wandb/offline-run-*

Every record becomes one run:
- identity: the configuration hash (W&B's run id; MLflow's tag ``rnnsuite.config_hash``;
  TensorBoard's run directory ``<task>/<model>/s<seed>-<hash10>``). A run already exported
  from the same record (the digest of record.json and curves.csv) is left alone, and one
  from a changed record (rerun with ``--overwrite``) is replaced: exporting twice never
  duplicates a run;
- hyperparameters: the resolved configuration as ``--set`` keys (``lr``, ``task.T``, ``model.dt``);
- step series: from curves.csv, ``train/loss``, ``train/grad_norm``, ``train/lr``,
  ``val/loss`` and ``val/<metric>``;
- final metrics: ``test/<metric>`` (and the task's other test metrics), ``val/best``,
  ``val/final``, ``gradients/ratio_init`` and ``ratio_end``, ``timing/median_step_s``,
  ``timing/train_s``, ``model/n_params``;
- the hidden-state gradient profiles ‖∂L/∂h_t‖ at every probe step, as a table and a figure;
- the environment (versions, CPU/GPU, git commit) and, for cluster runs, the launcher.

Each tracker is an optional extra, installed from the checkout (rnnsuite is on no package
index): ``pip install -c constraints.txt -e '.[tensorboard]'`` (``[mlflow]``, ``[wandb]``, or
``[trackers]`` for all three).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from suite.analysis import plotting
from suite.core import paths, records
from suite.core.config import flatten
from suite.core.progress import CellProgress
from suite.core.registry import SuiteError

TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # name -> extra
DEFAULT_OUT = paths.EXPORT
MARKER = "rnnsuite-export.json"  # beside an exported run: the digest of the record it came from


@dataclass
class RunData:
    """One record as every tracker needs it."""

    name: str  # <task>/<model>/s<seed>-<hash10>, the record's own directory under its root
    config_hash: str
    digest: str
    status: str
    params: dict
    series: list  # (step, {key: value}) in step order
    final: dict
    profile: pd.DataFrame  # t, then one column per probe step: ‖∂L/∂h_t‖
    environment: dict
    launcher: dict | None
    files: dict = field(default_factory=dict)  # name -> path of the record's own files

    @property
    def last_step(self) -> int:
        return self.series[-1][0] if self.series else 0




def _scalar(value):
    """A hyperparameter as every tracker takes it: numbers, strings and booleans as they
    are, anything else (lists, None) as its JSON text."""
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load(path: Path, rec: dict) -> RunData:
    metric = rec["task_info"]["metric"]
    curves = pd.read_csv(path / records.CURVES)
    series: dict[int, dict] = {}
    for row in curves.itertuples(index=False):
        values = {"train": {"train/loss": row.loss, "train/grad_norm": row.grad_norm, "train/lr": row.lr},
                  "val": {"val/loss": row.loss, f"val/{metric}": row.metric}}.get(row.split, {})
        series.setdefault(int(row.step), {}).update({k: float(v) for k, v in values.items() if _finite(v)})
    m, g, timing = rec["metrics"], rec["gradients"], rec["timing"]
    final = {f"test/{metric}": m["test"], "val/best": m["val_best"], "val/final": m.get("val_final"),
             **{f"test/{k}": v for k, v in (m.get("test_metrics") or {}).items() if k != metric},
             "gradients/ratio_init": g["ratio_init"], "gradients/ratio_end": g["ratio_end"],
             "timing/median_step_s": timing.get("median_step_seconds"), "timing/train_s": timing.get("train_seconds"),
             "model/n_params": rec["model_info"]["n_params"], "train/steps_done": m.get("steps_done")}
    steps = sorted(g["hidden_profile"], key=int)
    profile = pd.DataFrame({"t": range(1, rec["task_info"]["seq_len"] + 1)})
    for step in steps:
        values = g["hidden_profile"][step]
        profile[f"step_{step}"] = [v if _finite(v) else float("nan") for v in values][: len(profile)]
    params = {k: _scalar(v) for k, v in flatten(rec["config"]).items()}
    digest = hashlib.sha256((path / records.RECORD).read_bytes() + (path / records.CURVES).read_bytes()).hexdigest()
    return RunData(name=f"{rec['task']}/{rec['model']}/{path.name}", config_hash=rec["config_hash"], digest=digest,
                   status=records.outcome(rec["status"], m), params=params, series=sorted(series.items()),
                   final={k: float(v) for k, v in final.items() if _finite(v)}, profile=profile,
                   environment=rec.get("environment", {}), launcher=rec.get("launcher"),
                   files={records.RECORD: path / records.RECORD, records.CURVES: path / records.CURVES})


def profile_figure(run: RunData):
    plt = plotting.pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for column in run.profile.columns[1:]:
        ax.semilogy(run.profile.t, run.profile[column], label=column.replace("_", " "))
    ax.set_xlabel("t")
    ax.set_ylabel("‖∂L/∂h_t‖")
    ax.set_title(f"{run.name}: hidden-state gradient")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def require(module: str, tracker: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SuiteError(f"--to {tracker} needs the {tracker} package: from the checkout, "
                         f"pip install -c constraints.txt -e '.[{TRACKERS[tracker]}]'") from None


def _marker(directory: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return json.loads((directory / MARKER).read_text()).get("digest")
    return None


def _write_marker(directory: Path, run: RunData) -> None:
    records.write_json_atomic(directory / MARKER, {"config_hash": run.config_hash, "digest": run.digest})


# --- TensorBoard: one event directory per run, replaced whole when its record changed ---

def to_tensorboard(run: RunData, out: Path, _ctx) -> str:
    require("tensorboard", "tensorboard")
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    target = out / run.name
    if target.is_dir() and _marker(target) == run.digest:
        return "unchanged"
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.staging"
    try:
        writer = SummaryWriter(str(staging))
        for step, values in run.series:
            for key, value in values.items():
                writer.add_scalar(key, value, step)
        for key, value in run.final.items():
            writer.add_scalar(key, value, run.last_step)
        for column in run.profile.columns[1:]:  # the profile as a curve over t
            for t, value in zip(run.profile.t, run.profile[column]):
                if _finite(value):
                    writer.add_scalar(f"gradient_profile/{column}", value, int(t))
        writer.add_figure("gradients/profile", profile_figure(run), run.last_step)
        writer.add_text("environment", "```\n" + json.dumps(run.environment, indent=1) + "\n```")
        if run.launcher:
            writer.add_text("launcher", "```\n" + json.dumps(run.launcher, indent=1) + "\n```")
        for summary in hparams(run.params, dict.fromkeys(run.final, 0.0)):  # values: the scalars above
            writer.file_writer.add_summary(summary)
        writer.close()
        _write_marker(staging, run)
        replaced = target.exists()
        retired = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
        if replaced:
            os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return "replaced" if replaced else "exported"


# --- MLflow: one run per configuration hash in one experiment ---

def mlflow_context(out: Path, tracking_uri: str | None, experiment: str):
    require("mlflow", "mlflow")
    import logging

    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # their INFO lines on creating a store are not the export's
        logging.getLogger(name).setLevel(logging.WARNING)

    artifacts = None
    if tracking_uri is None:  # a local SQLite store, MLflow's own recommendation for one machine
        out.mkdir(parents=True, exist_ok=True)
        tracking_uri = f"sqlite:///{(out / 'mlflow.db').resolve()}"
        artifacts = (out / "artifacts").resolve().as_uri()
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    eid = found.experiment_id if found else client.create_experiment(experiment, artifact_location=artifacts)
    return client, eid, tracking_uri


def to_mlflow(run: RunData, out: Path, ctx) -> str:
    from mlflow.entities import Metric, Param, RunTag

    client, eid, _ = ctx
    existing = client.search_runs([eid], f"tags.`rnnsuite.config_hash` = '{run.config_hash}'", max_results=50)
    if any(r.data.tags.get("rnnsuite.record_digest") == run.digest for r in existing):
        return "unchanged"
    for old in existing:  # an older record of this configuration: its run is replaced
        client.delete_run(old.info.run_id)
    tags = {"rnnsuite.config_hash": run.config_hash, "rnnsuite.record_digest": run.digest,
            "rnnsuite.status": run.status, "mlflow.note.content": f"rnnsuite record {run.name}",
            **{f"env.{k}": str(v) for k, v in flatten(run.environment).items()},
            **{f"launcher.{k}": str(v) for k, v in (run.launcher or {}).items()}}
    created = client.create_run(eid, run_name=run.name, tags=tags)
    rid = created.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, step) for step, values in run.series for k, v in values.items()]
    metrics += [Metric(k, v, now, run.last_step) for k, v in run.final.items()]
    params = [Param(k, str(v)) for k, v in run.params.items()]
    for i in range(0, len(params), 100):  # MLflow's batch limits: 100 params, 1000 metrics
        client.log_batch(rid, params=params[i:i + 100])
    for i in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[i:i + 1000])
    client.log_batch(rid, tags=[RunTag("rnnsuite.exported", time.strftime("%Y-%m-%dT%H:%M:%S"))])
    with _scratch() as tmp:
        run.profile.to_csv(tmp / "gradient_profile.csv", index=False)
        _save_figure(run, tmp / "gradient_profile.png")
        (tmp / "environment.json").write_text(json.dumps(run.environment, indent=1) + "\n")
        for path in [*tmp.iterdir(), *run.files.values()]:
            client.log_artifact(rid, str(path))
    client.set_terminated(rid, "FINISHED" if run.status == "ok" else "FAILED")
    return "replaced" if existing else "exported"


def _save_figure(run: RunData, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = profile_figure(run)
    fig.savefig(path, dpi=100)
    plt.close(fig)


@contextlib.contextmanager
def _scratch():
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rnnsuite-export-") as tmp:
        yield Path(tmp)


# --- Weights & Biases: offline run directories named by the run id ---

def wandb_context(out: Path, project: str, online: bool):
    wandb = require("wandb", "wandb")
    out.mkdir(parents=True, exist_ok=True)
    return wandb, project, "online" if online else "offline"


def wandb_id(config_hash: str) -> str:
    return config_hash[:64]


def to_wandb(run: RunData, out: Path, ctx) -> str:
    wandb, project, mode = ctx
    rid = wandb_id(run.config_hash)
    previous = sorted((out / "wandb").glob(f"*-run-*-{rid}"))
    if any(_marker(p) == run.digest for p in previous):
        return "unchanged"
    for old in previous:  # an older record of this configuration (its offline copy; a synced run is resumed)
        shutil.rmtree(old, ignore_errors=True)
    settings = wandb.Settings(console="off", save_code=False, x_disable_stats=True, silent=True)
    task, model = run.name.split("/")[:2]
    wb = wandb.init(project=project, dir=str(out), id=rid, name=run.name, config=run.params, mode=mode,
                    resume="allow", group=f"{task}/{model}", tags=[task, model, run.status], settings=settings,
                    reinit="create_new")
    try:
        for i, (step, values) in enumerate(run.series):
            extra = {}
            if i == len(run.series) - 1:
                with _scratch() as tmp:
                    _save_figure(run, tmp / "gradient_profile.png")
                    extra = {"gradients/profile": wandb.Table(dataframe=run.profile),
                             "gradients/figure": wandb.Image(str(tmp / "gradient_profile.png"))}
                    wb.log({**values, **extra}, step=step)
                continue
            wb.log(values, step=step)
        wb.summary.update({**run.final, "environment": run.environment, "launcher": run.launcher,
                           "rnnsuite/record_digest": run.digest, "rnnsuite/status": run.status})
    finally:
        wb.finish(exit_code=0)
    run_dir = Path(wb.dir).parent if wb.dir else None
    if run_dir is not None and run_dir.is_dir():
        _write_marker(run_dir, run)
    return "replaced" if previous else "exported"


WRITERS = {"tensorboard": to_tensorboard, "mlflow": to_mlflow, "wandb": to_wandb}


def export(root: str | Path, to: str, out: str | Path | None = None, *, project: str = "rnnsuite",
           tracking_uri: str | None = None, online: bool = False, quiet: bool = False) -> dict[str, int]:
    """Export every record under ``root``; returns counts of exported, replaced, unchanged, failed."""
    if to not in WRITERS:
        raise SuiteError(f"--to {to!r}: unknown tracker (valid: {', '.join(WRITERS)})")
    out = Path(out or Path(DEFAULT_OUT) / to)
    skipped: list[str] = []
    found = list(records.iter_records(root, skipped))
    for reason in skipped:
        print(f"rnnsuite: warning: skipped {reason}")
    if not found:
        raise SuiteError(f"no run records under {root} to export" + (" (all were unreadable)" if skipped else ""))
    records.check_writable(out)
    ctx = {"tensorboard": lambda: None, "mlflow": lambda: mlflow_context(out, tracking_uri, project),
           "wandb": lambda: wandb_context(out, project, online)}[to]()
    counts = dict.fromkeys(("exported", "replaced", "unchanged", "failed"), 0)
    kinds = {"exported": "done", "replaced": "done", "unchanged": "skipped", "failed": "failed"}
    progress = CellProgress(len(found), f"export to {to}", quiet=quiet)
    for i, (path, rec) in enumerate(found, 1):
        start = time.monotonic()
        name = f"[{i}/{len(found)}] {rec['task']}/{rec['model']}/{path.name}"
        try:
            outcome = WRITERS[to](load(path, rec), out, ctx)
        except SuiteError:
            raise
        except Exception as exc:  # one bad record must not stop the export of the others
            counts["failed"] += 1
            progress.line(f"{name}: failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}",
                          "failed", time.monotonic() - start)
            continue
        counts[outcome] += 1
        progress.line(f"{name}: {outcome}", kinds[outcome], time.monotonic() - start)
    progress.close()
    where = ctx[2] if to == "mlflow" else str(out)
    print(f"export to {to}: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + f"; in {where}")
    if to == "wandb" and not online and counts["exported"] + counts["replaced"]:
        print(f"upload later with: wandb sync {out / 'wandb'}/offline-run-*")
    return counts




