"""``rnnsuite tune``: Optuna-tuned baselines with their tuning cost (:mod:`suite.tuning.tune`)."""

from __future__ import annotations

import argparse

from suite.core import paths
from suite.core.registry import MODELS, TASKS

DEFAULT_OUT = paths.TUNING


def add_command(sub) -> None:
    p = sub.add_parser("tune", help="Optuna study of a model's hyperparameters on a task (resumable)",
                       description="An Optuna study of a model's hyperparameters on a task's validation metric: "
                                   "resumable (rerun the same command), several workers, crash-safe.",
                       epilog="docs/tuning.md: single machine, several processes, several machines, dashboard")
    p.add_argument("--task", required=True, help="the task to tune on (`rnnsuite list`)")
    p.add_argument("--model", required=True, help="the model whose hyperparameters are searched")
    p.add_argument("--trials", type=int, required=True,
                   help="finished (complete or pruned) trials the study ends with; rerun to resume")
    p.add_argument("--budget", type=int, default=None, metavar="STEPS",
                   help="training steps per trial (same as --set steps=STEPS)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a run key, task parameter or hyperparameter for every trial (not searched)")
    p.add_argument("--space", action="append", default=[], metavar="KEY=KIND:...",
                   help="add or replace a search dimension: lr=log:1e-4:1e-2, model.eps=float:0.01:1, "
                        "batch_size=int:16:128, optimizer=categorical:adam,rmsprop")
    p.add_argument("--storage", default=None, metavar="URL",
                   help=f"sqlite:///path.db, postgresql+psycopg://user:pw@host:5432/db or journal:PATH "
                        f"(default: sqlite:///{DEFAULT_OUT}/optuna.db; journal:{DEFAULT_OUT}/<study>/study.journal "
                        f"with --workers > 1)")
    p.add_argument("--study", default=None, help="study name (default <task>-<model>)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed (default 0)")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median",
                   help="stops unpromising trials early on their validation curve (default median)")
    p.add_argument("--heartbeat", type=int, default=10, metavar="SECONDS",
                   help="heartbeat of running trials; one silent for 3x this is failed and retried (default 10)")
    p.add_argument("--eval-seeds", type=int, default=3,
                   help="seeds to train the best and the untuned configuration on for the report (0: none)")
    p.add_argument("--publish", action=argparse.BooleanOptionalAction, default=False,
                   help="also write the tuned file into the repository as baselines/tuned/<task>-<model>.json "
                        "(default: only under --out)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"tuning root (default {DEFAULT_OUT})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="where to train (default auto: CUDA where available, else the CPU)")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("--download", action="store_true", help="fetch MNIST into --data-dir if missing")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-trial lines or progress bars")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads of each worker (default 1, or $RNNSUITE_THREADS; "
                        "see docs/usage.md, Threads)")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from suite.tuning.study import TuneSpec
    from suite.tuning.tune import tune

    sets = list(args.sets) + ([f"steps={args.budget}"] if args.budget is not None else [])
    spec = TuneSpec(task=args.task, model=args.model, trials=args.trials, sets=sets, space=args.space,
                    storage=args.storage, study=args.study, workers=args.workers, seed=args.seed,
                    pruner=args.pruner, heartbeat=args.heartbeat, eval_seeds=args.eval_seeds, out=args.out,
                    device=args.device, data_dir=args.data_dir, publish=args.publish, quiet=args.quiet)
    TASKS.get(spec.task), MODELS.get(spec.model)  # unknown names: one line before anything else
    if args.download and spec.task in ("smnist", "psmnist"):
        from tasks.mnist import download_mnist, resolve_data_dir

        download_mnist(resolve_data_dir(args.data_dir))
    tune(spec)
    return 0
