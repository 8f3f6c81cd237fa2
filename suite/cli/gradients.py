"""``rnnsuite gradients``: the gradient-control study (:mod:`suite.studies.gradients`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suite.studies.gradients import Study


def add_command(subparsers) -> None:
    from suite.studies import gradients  # its profiles and description: built only for `gradients`
    from suite.studies.gradients import DEFAULT_OUT, PROFILES

    p = subparsers.add_parser("gradients", help="gradient-control study: Δt sweep, profiles at init and after "
                                                "a short training, stable bands, heuristic",
                              description=gradients.__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help="defaults for the options below: quick (CPU, minutes) or full (hours; see docs)")
    p.add_argument("--tasks", help="task:T list, e.g. adding:100,adding:1000,adding:10000,psmnist:784")
    p.add_argument("--models", help="comma-separated models; H-DNN cells not registered yet are skipped")
    p.add_argument("--dts", help="step sizes: a list (1e-3,0.01) or LO:HI:PER_DECADE (1e-4:1:2)")
    p.add_argument("--train-steps", type=int, help="training steps before the 'trained' profile")
    p.add_argument("--hidden-size", type=int, help="hidden units (default: the profile's)")
    p.add_argument("--batch-size", type=int, help="training batch (default: the profile's)")
    p.add_argument("--probe-batch", type=int, help="examples in the probe batch (the first validation ones)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate of the short training (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seed of every run of the study (default 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to run (default auto: CUDA where available, else the CPU)")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--overwrite", action="store_true", help="rerun settings whose records exist")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: fastest for these sizes)")
    p.add_argument("--model-param", action="append", default=[], metavar="MODEL.KEY=VALUE",
                   help="hold a model's hyperparameter fixed in every setting, e.g. linoss.discretization=IMEX")
    p.set_defaults(func=cmd_gradients)


def study_from_args(args: argparse.Namespace) -> Study:
    from suite.studies.gradients import PROFILES, Study, parse_dts, parse_tasks, select_models

    base = PROFILES[args.profile]

    def pick(name):
        value = getattr(args, name)
        return base[name] if value is None else value

    return Study(tasks=parse_tasks(pick("tasks")), models=select_models(pick("models")), dts=parse_dts(pick("dts")),
                 train_steps=pick("train_steps"), hidden_size=pick("hidden_size"), batch_size=pick("batch_size"),
                 probe_batch=pick("probe_batch"), lr=args.lr, seed=args.seed, device=args.device,
                 data_dir=args.data_dir, out=Path(args.out), overwrite=args.overwrite,
                 threads=args.threads, model_params=model_params(args.model_param))


def model_params(items: list[str]) -> dict[str, dict]:
    """``["linoss.discretization=IMEX"]`` -> {"linoss": {"discretization": "IMEX"}}; the values
    stay strings, parsed by the model's Config when the run is built."""
    from suite.core.registry import MODELS, SuiteError

    out: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        model, dot, name = key.rpartition(".")
        if not (sep and dot and model and name):
            raise SuiteError(f"--model-param {item!r} is not MODEL.KEY=VALUE (for example linoss.discretization=IMEX)")
        MODELS.get(model)  # unknown name: SuiteError with a suggestion
        out.setdefault(model, {})[name] = value
    return out


def cmd_gradients(args) -> int:
    from suite.studies.gradients import run_study

    result = run_study(study_from_args(args))
    shown = result["bands"][["task", "T", "model", "band_init", "band_trained", "dt_star", "star_in_band"]]
    print(shown.to_string(index=False))
    for path in result["written"]:
        print(f"wrote {path}")
    return 0
