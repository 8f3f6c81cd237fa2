"""Cells on a cluster: ``rnnsuite sweep|paper ... --launcher slurm`` submits the cells
that are not complete as one SLURM job array through submitit, one array task per cell,
prints the job id and returns (``--wait`` blocks and reports each cell as it ends).

    rnnsuite sweep --config grid.toml --out /shared/runs --launcher slurm --partition gpu \\
        --time 240 --gpus-per-task 1 --cpus-per-task 4 --array-parallelism 32
    rnnsuite sweep ... --launcher local --wait      # the same path as subprocesses here

Rules:
- a cell is submitted only if its record is missing (all of them with ``--overwrite``);
  its hash is computed for the device its job will have (``cuda`` with
  ``--gpus-per-task`` of 1 or more, else ``cpu``), so a login node without a GPU
  submits GPU cells and finds their records afterwards;
- every array task runs :func:`suite.core.harness.run` on its cell under the shared ``--out``,
  so the cell is claimed (:mod:`suite.core.claims`) like any worker's, and any number of
  sweeps, papers and job arrays can share the directory;
- a task that SLURM preempts or that reaches its time limit is requeued (submitit's
  checkpoint-and-requeue; time-outs up to ``--max-requeues`` times, preemptions
  always) and resumes from the cell's own checkpoint (every ``--checkpoint-every``
  steps); a requeued task waits for the claim of its killed predecessor to go stale
  rather than leaving the cell unfinished;
- the record's ``launcher`` entry names the launcher, the job and array ids and the node.

Options come from flags or from a ``[slurm]`` table of the sweep file (flags win);
the cluster set-up is in ``docs/cluster.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path

import submitit

from suite.core import claims, records
from suite.core.config import RunConfig
from suite.core.progress import CellProgress, duration
from suite.core.registry import SuiteError

LAUNCHERS = ("slurm", "local")
SIGNAL_DELAY_S = 120  # the warning before a time limit: enough for a record or checkpoint write


@dataclasses.dataclass
class LaunchOptions:
    """What a job array asks SLURM for; the ``[slurm]`` table of a sweep file holds the same keys."""

    partition: str | None = None
    time: int = 60  # minutes per attempt; a cell past it is requeued and resumes
    gpus_per_task: int = 0
    cpus_per_task: int = 2
    mem_gb: float | None = None
    array_parallelism: int = 64  # array tasks running at once
    max_requeues: int = 10  # requeues after a time-out (preemptions do not count)
    sbatch: dict = dataclasses.field(default_factory=dict)  # extra sbatch flags: {"account": "abc"}
    setup: list = dataclasses.field(default_factory=list)  # shell lines before each task (module load ...)


FLAGS = {  # option -> (type, help)
    "partition": (str, "SLURM partition"),
    "time": (int, "minutes per attempt (default 60); a cell past it is requeued and resumes"),
    "gpus_per_task": (int, "GPUs per array task (default 0: the cells run on the CPU)"),
    "cpus_per_task": (int, "CPUs per array task (default 2)"),
    "mem_gb": (float, "memory per array task in GB (default: the partition's)"),
    "array_parallelism": (int, "array tasks running at once (default 64)"),
    "max_requeues": (int, "requeues after a time limit before a cell fails (default 10)"),
}


def add_arguments(p) -> None:
    """The launcher's flags, for ``sweep`` and ``paper``."""
    g = p.add_argument_group("cluster launcher (docs/cluster.md)")
    g.add_argument("--launcher", choices=LAUNCHERS, default=None,
                   help="submit the cells that are not complete as a submitit job array and return "
                        "(local: the same path as subprocesses on this machine)")
    for name, (typ, text) in FLAGS.items():
        g.add_argument(f"--{name.replace('_', '-')}", type=typ, default=None, help=text)
    g.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra sbatch flag, e.g. --sbatch account=abc --sbatch qos=high; repeatable")
    g.add_argument("--setup", action="append", default=[], metavar="LINE",
                   help="a shell line each task runs first, e.g. 'module load cuda'; repeatable")
    g.add_argument("--job-dir", default=None, help="submitit's pickles and logs (default: OUT/.submitit)")
    g.add_argument("--wait", action="store_true", help="block until every job ends and report each cell")


def options(args, table: dict | None = None) -> LaunchOptions:
    """The options of a ``[slurm]`` table, overridden by the flags given; checked."""
    table = dict(table or {})
    known = {f.name for f in dataclasses.fields(LaunchOptions)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise SuiteError(f"[slurm]: unknown keys {unknown} (valid: {sorted(known)})")
    for name in FLAGS:
        if getattr(args, name, None) is not None:
            table[name] = getattr(args, name)
    sbatch = dict(table.get("sbatch", {}))
    for item in args.sbatch:
        key, sep, value = item.partition("=")
        if not key.strip().lstrip("-"):
            raise SuiteError(f"--sbatch {item!r}: give KEY=VALUE (e.g. --sbatch account=abc) or a bare KEY")
        sbatch[key.strip().lstrip("-")] = value if sep else True
    table["sbatch"] = sbatch
    table["setup"] = list(table.get("setup", [])) + list(args.setup)
    opts = LaunchOptions(**table)
    _check(opts)
    return opts


def _check(opts: LaunchOptions) -> None:
    def need(ok: bool, text: str) -> None:
        if not ok:
            raise SuiteError(text)

    for name, minimum in (("time", 1), ("gpus_per_task", 0), ("cpus_per_task", 1), ("array_parallelism", 1),
                          ("max_requeues", 0)):
        value = getattr(opts, name)
        need(type(value) is int and value >= minimum,
             f"--{name.replace('_', '-')} {value!r} must be an integer >= {minimum}")
    need(opts.partition is None or isinstance(opts.partition, str), f"partition {opts.partition!r} must be a name")
    need(opts.mem_gb is None or (isinstance(opts.mem_gb, (int, float)) and math.isfinite(opts.mem_gb)
                                 and opts.mem_gb > 0), f"--mem-gb {opts.mem_gb!r} must be a positive number")
    need(isinstance(opts.sbatch, dict), "[slurm] sbatch must be a table of flags (sbatch = { account = \"abc\" })")
    need(isinstance(opts.setup, list) and all(isinstance(s, str) for s in opts.setup),
         "[slurm] setup must be a list of shell lines")


def job_device(cfg: RunConfig, opts: LaunchOptions) -> str:
    """Where the cell's job runs it: fixed at submission, so its hash is known here."""
    target = "cuda" if opts.gpus_per_task > 0 else "cpu"
    if cfg.device == "cuda" and target == "cpu":
        raise SuiteError("--device cuda needs GPUs in the job: add --gpus-per-task 1")
    return target if cfg.device == "auto" else cfg.device


def pinned(configs: list[RunConfig], opts: LaunchOptions) -> list[tuple[RunConfig, str]]:
    """Each cell with its job's device set, and the hash its record will have; every cell
    checked as ``run`` would, on the CPU (a login node may have no GPU)."""
    from suite.core.build import resolve
    from suite.core.config import config_hash

    out = []
    for cfg in configs:
        device = job_device(cfg, opts)
        resolved = resolve(dataclasses.replace(cfg, device="cpu"))
        chash = resolved.hash if device == "cpu" else config_hash({**resolved.config, "device": device})
        out.append((dataclasses.replace(cfg, device=device), chash))
    return out


def job_info() -> dict:
    """The record's ``launcher`` entry: read once, inside the job."""
    env = submitit.JobEnvironment()
    return {"name": env.cluster, "job_id": env.job_id, "array_job_id": env.array_job_id,
            "array_task_id": env.array_task_id, "node": env.hostname}


class CellJob(submitit.helpers.Checkpointable):
    """One array task: run one cell under ``out``. On preemption or a time limit submitit
    calls :meth:`checkpoint` and requeues the task; the cell's own checkpoint carries the
    training state, so the requeued call is the same call (never ``overwrite``: the first
    attempt already started afresh)."""

    def __call__(self, config: RunConfig, out: str, run_kwargs: dict) -> dict:
        from suite.core.harness import run

        launcher = job_info()
        cell = f"{config.task}/{config.model} seed {config.seed}"
        # a killed predecessor's claim on another node goes stale after claims.STALE_S
        deadline = time.monotonic() + claims.STALE_S + 2 * claims.BEAT_S
        while True:
            try:
                record = run(config, out=out, launcher=launcher, **run_kwargs)
                break
            except claims.CellBusy as exc:
                if time.monotonic() > deadline:
                    print(f"{cell}: left to another worker: {exc}", flush=True)
                    return {"outcome": "left", "detail": str(exc), "launcher": launcher}
                time.sleep(claims.BEAT_S)
        test = record["metrics"]["test"]
        summary = {"outcome": "done" if record["outcome"] == "ran" else "skipped", "path": record["path"],
                   "metric": record["task_info"]["metric"], "test": test, "status": record["status"],
                   "launcher": launcher}
        print(f"{cell}: {summary['outcome']}, test {summary['metric']} = {test}; {record['path']}", flush=True)
        return summary

    def checkpoint(self, config: RunConfig, out: str, run_kwargs: dict):
        return submitit.helpers.DelayedSubmission(self, config, out, {**run_kwargs, "overwrite": False})


def executor(name: str, opts: LaunchOptions, folder: Path, label: str):
    if name == "local":
        ex = submitit.LocalExecutor(folder, max_num_timeout=opts.max_requeues)
        ex.update_parameters(timeout_min=opts.time, signal_delay_s=SIGNAL_DELAY_S, gpus_per_node=opts.gpus_per_task,
                             setup=opts.setup)
        return ex
    try:
        ex = submitit.SlurmExecutor(folder, max_num_timeout=opts.max_requeues)
    except RuntimeError:
        raise SuiteError("--launcher slurm: no `srun` on PATH; submit from a SLURM login node "
                         "(or use --launcher local to run the same jobs on this machine)") from None
    params = {"job_name": f"rnnsuite-{label.replace(' ', '-')}", "time": opts.time, "ntasks_per_node": 1,
              "cpus_per_task": opts.cpus_per_task, "array_parallelism": opts.array_parallelism,
              "signal_delay_s": SIGNAL_DELAY_S, "setup": opts.setup or None,
              "additional_parameters": opts.sbatch or None, "partition": opts.partition,
              "gpus_per_task": opts.gpus_per_task or None, "mem": f"{opts.mem_gb:g}GB" if opts.mem_gb else None}
    ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return ex


def launch_cells(configs: list[RunConfig], out: str | Path, args, *, label: str, table: dict | None = None,
                 run_kwargs: dict) -> dict[str, int]:
    """Submit the cells of ``configs`` whose record is missing under ``out``; with
    ``args.wait``, wait and count them as :func:`suite.cli.main.run_cells` does (the counts
    are None-free either way: without waiting, every submitted cell is "submitted")."""
    opts = options(args, table)
    cells = pinned(configs, opts)
    records.check_writable(out)
    overwrite = run_kwargs.get("overwrite", False)
    todo = [(cfg, h) for cfg, h in cells
            if overwrite or not records.is_complete(records.run_dir(out, cfg.task, cfg.model, cfg.seed, h))]
    counts = {"done here": 0, "skipped as complete": len(cells) - len(todo), "left to other workers": 0, "failed": 0,
              "diverged": 0}
    if not todo:
        print(f"{label}: all {len(cells)} cells are complete under {out}; nothing submitted")
        return counts
    folder = Path(args.job_dir or Path(out) / ".submitit") / "%j"
    kwargs = {"quiet": True, **run_kwargs}
    ex = executor(args.launcher, opts, folder, label)
    queue = None
    if args.launcher == "local" and len(todo) > opts.array_parallelism:
        # submitit's local executor starts every job at once: the rest wait here, and this
        # command stays until the last is started (as with --wait)
        queue = LocalQueue(ex, [c for c, _ in todo[opts.array_parallelism:]], str(out), kwargs,
                           opts.array_parallelism)
        todo_now = todo[:opts.array_parallelism]
        print(f"{label}: --launcher local runs {opts.array_parallelism} cell(s) at a time (--array-parallelism); "
              f"this command waits for them", flush=True)
        args.wait = True
    else:
        todo_now = todo
    jobs = ex.map_array(CellJob(), [c for c, _ in todo_now], [str(out)] * len(todo_now), [kwargs] * len(todo_now))
    with contextlib.suppress(OSError):
        folder.rmdir()  # submitit makes the pattern's directory itself, empty: the jobs' are beside it
    ids = sorted({j.job_id.split("_")[0] for j in jobs})
    if args.launcher == "slurm":  # submitit submits a single cell as a plain job, several as one array
        what = f"job array {ids[0]}" if len(jobs) > 1 else f"job {ids[0]}"
    else:
        what = f"job{'s' if len(ids) > 1 else ''} " + ", ".join(ids)
    print(f"{label}: submitted {len(todo)} cell(s) as {args.launcher} {what} "
          f"({counts['skipped as complete']} complete, not submitted); logs under {folder.parent}", flush=True)
    if not args.wait:
        follow = f"squeue -j {ids[0]}" if args.launcher == "slurm" else "the processes above"
        print(f"follow with {follow}; rerun this command to submit what is left, or add --wait", flush=True)
        return counts
    return wait(jobs, [c for c, _ in todo], counts, label=label, out=out, quiet=args.quiet,
                poll_s=5.0 if args.launcher == "slurm" else 0.5, queue=queue)


class LocalQueue:
    """Cells not yet started under ``--launcher local``: :func:`wait` starts the next one
    whenever fewer than ``parallelism`` of the started ones are still running."""

    def __init__(self, ex, configs: list[RunConfig], out: str, kwargs: dict, parallelism: int):
        self.ex, self.configs, self.out, self.kwargs, self.parallelism = ex, list(configs), out, kwargs, parallelism

    def start(self, running: int) -> list:
        """Jobs started now: as many as the free places allow."""
        free = max(0, self.parallelism - running)
        batch, self.configs = self.configs[:free], self.configs[free:]
        return [self.ex.submit(CellJob(), cfg, self.out, self.kwargs) for cfg in batch]


def wait(jobs, configs: list[RunConfig], counts: dict[str, int], *, label: str, out, quiet: bool,
         poll_s: float, queue: LocalQueue | None = None) -> dict[str, int]:
    """Block until every job has ended; one line per cell as it ends, then the counts.
    The jobs run side by side, so the time left is the time per finished cell so far.
    ``configs`` are the cells of ``jobs`` and then those of ``queue``, started in turn."""
    progress = CellProgress(len(configs), f"{label} (jobs)", quiet=quiet)
    kinds = {"done": "done here", "skipped": "skipped as complete", "left": "left to other workers"}
    started = last = time.monotonic()
    pending = dict(enumerate(jobs))
    while pending or (queue is not None and queue.configs):
        if queue is not None:
            for job in queue.start(sum(not j.done() for j in pending.values())):
                pending[len(jobs)] = job
                jobs = [*jobs, job]
        for i, job in list(pending.items()):
            if not job.done():
                continue
            del pending[i]
            cfg = configs[i]
            cell = f"[job {job.job_id}] {cfg.task}/{cfg.model} seed {cfg.seed}"
            try:
                result = job.result()
            except Exception as exc:  # the job raised, or was killed without a result
                counts["failed"] += 1
                lines = [s for s in str(exc).strip().splitlines() if s.strip()]
                kind, text = "failed", (f"failed: {lines[-1] if lines else type(exc).__name__} "
                                        f"(log: {job.paths.stderr}); rerun the command to resubmit it")
            else:
                kind = result["outcome"]
                counts[kinds[kind]] += 1
                if kind == "done" and result["status"] == "diverged":
                    counts["diverged"] += 1
                    text = "diverged"
                elif kind == "done":
                    text = f"test {result['metric']} = {result['test']:.5g}"
                else:
                    text = kinds[kind] + (f": {result['detail']}" if "detail" in result else "")
            now = time.monotonic()
            status = progress.advance(kind, now - last)
            last = now
            progress.write(f"{cell}: {text}  ({duration(now - started)} after submission; {status})")
        if pending:
            time.sleep(poll_s)
    progress.close()
    print(f"{label}: " + ", ".join(f"{n} {what}" for what, n in counts.items()) + f"; records under {out}")
    return counts
