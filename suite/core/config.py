"""Typed configuration: dataclasses with defaults, flat ``key=value`` overrides.

Rules: an override keeps the type of the field it sets (``lr=1e-3`` is a float,
``steps=10.5`` is an error); an unknown key is an error that names the valid keys;
a value that parses but is impossible (``T=0``, a negative learning rate) is an
error raised by the dataclass's ``validate``. Every error is a :class:`SuiteError`
with a one-line message.

Rules every field gets here, whatever its dataclass: a float is finite (``inf``,
``nan`` and ``1e400``, which overflows to infinity, are refused); a seed (a field
named ``seed`` or ``*_seed``) is an integer in 0 .. 2**32 - 1, what NumPy, torch and
Python's ``random`` all accept.

A run is configured by :class:`RunConfig`. Its ``task_params`` and ``model_params``
are plain dicts at parse time and are resolved against the task's and model's own
``Config`` dataclasses when the run is built (``suite.run.resolve``), so that the
record always holds every value, defaults included.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from suite.core.registry import SuiteError

SEED_LIMIT = 2**32  # numpy.random.seed takes 0 .. 2**32 - 1; torch.manual_seed more


def parse_value(text: str, annotation: Any, key: str) -> Any:
    """Parse a command-line string into ``annotation``'s type, or raise SuiteError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(text, arg, key)
            except SuiteError as exc:
                errors.append(str(exc))
        raise SuiteError(errors[0] if errors else f"{key}: cannot parse {text!r}")
    if origin is Literal:
        choices = [str(a) for a in args]
        if text not in choices:
            raise SuiteError(f"{key}={text!r} is not one of: {', '.join(choices)}")
        return args[choices.index(text)]
    if origin in (tuple, list):
        inner = args[0] if args else str
        return tuple(parse_value(t.strip(), inner, key) for t in text.split(",") if t.strip())
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SuiteError(f"{key}={text!r} is not a boolean (use true or false)")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise SuiteError(f"{key}={text!r} is not an integer") from None
    if annotation is float:
        try:
            value = float(text)
        except ValueError:
            raise SuiteError(f"{key}={text!r} is not a number") from None
        return _finite(value, key, text)
    if annotation is str:
        return text
    raise SuiteError(f"{key}: unsupported field type {annotation!r}")


def _finite(value: float, key: str, given: Any) -> float:
    if not math.isfinite(value):
        raise SuiteError(f"{key}={given!r} is not a finite number (infinity and nan are never valid)")
    return value


def check_value(value: Any, annotation: Any, key: str) -> Any:
    """Check (and gently coerce int->float) a Python value against ``annotation``."""
    if isinstance(value, str) and annotation is not str:
        return parse_value(value, annotation, key)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return check_value(value, arg, key)
            except SuiteError as exc:
                errors.append(str(exc))
        # a value of the right type but impossible (lr=inf) says so, not "wrong type"
        raise SuiteError(next((e for e in errors if "has the wrong type" not in e),
                              f"{key}={value!r} has the wrong type (expected {_type_name(annotation)})"))
    if origin is Literal:
        if value not in args:
            raise SuiteError(f"{key}={value!r} is not one of: {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise SuiteError(f"{key}={value!r} is not a list")
        inner = args[0] if args else Any
        return tuple(check_value(v, inner, key) for v in value) if inner is not Any else tuple(value)
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return _finite(float(value), key, value)
        except OverflowError:  # an int beyond the float range
            raise SuiteError(f"{key}={value!r} is not a finite number (beyond the float range)") from None
    if annotation in (int, bool, str) and type(value) is annotation:
        return value
    if annotation is Any or (annotation is dict and isinstance(value, dict)):
        return value
    raise SuiteError(f"{key}={value!r} has the wrong type (expected {_type_name(annotation)})")


def _type_name(annotation: Any) -> str:
    """A type as `rnnsuite list` and the errors write it: Literal choices as their values
    (``'adam' | 'sgd'``), unions with ``|`` (``float | None``), tuples by their items."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else _type_name(a) for a in args)
    if origin in (tuple, list) and args:
        return f"tuple of {_type_name(args[0])}" if len(args) == 2 and args[1] is Ellipsis else \
            f"({', '.join(_type_name(a) for a in args)})"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def build_config(cls: type, overrides: dict[str, Any], *, prefix: str = "") -> Any:
    """Instantiate dataclass ``cls`` from ``overrides`` with type checks, then validate."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    values = {}
    for key, value in overrides.items():
        if key not in fields:
            raise SuiteError(unknown_key_message(prefix + key, [prefix + k for k in fields]))
        values[key] = check_value(value, hints[key], prefix + key)
    try:
        cfg = cls(**values)
    except TypeError as exc:  # a required field without default
        raise SuiteError(f"{cls.__name__}: {exc}") from None
    for name in fields:
        value = getattr(cfg, name)
        if (name == "seed" or name.endswith("_seed")) and isinstance(value, int) and not 0 <= value < SEED_LIMIT:
            raise SuiteError(f"{prefix}{name}={value} is not a valid seed (use 0 .. {SEED_LIMIT - 1})")
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    return cfg


def shown(name: Any) -> str:
    """A name read from a file, as an error message shows it: itself when printable, else
    quoted (a name with a line break must not break the message's one line)."""
    return name if isinstance(name, str) and name.isprintable() and name.strip() == name and name else repr(name)


def unknown_key_message(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}{hint} (valid: {', '.join(sorted(valid)) or 'none'})"


def describe_fields(cls: type) -> list[tuple[str, str, Any]]:
    """(name, type, default) for every field of a config dataclass, for `rnnsuite list`."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        out.append((f.name, _type_name(hints[f.name]), default))
    return out


def require(condition: bool, message: str) -> None:
    """Raise a SuiteError with ``message`` unless ``condition`` holds (for ``validate``)."""
    if not condition:
        raise SuiteError(message)


@dataclass
class RunConfig:
    """One run: task x model x hyperparameters x seed x device.

    Keys are set from the command line as ``--set key=value``; task and model
    parameters as ``--set task.T=1000`` and ``--set model.eps=0.1``.
    """

    task: str
    model: str
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    hidden_size: int = 128
    batch_size: int = 64
    # Budget: `steps` optimizer steps, unless `epochs` is set (then epochs over the
    # training split; only for tasks with a finite training split).
    steps: int = 1000
    epochs: float | None = None
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = 1e-3  # a model's parameter groups may scale it (RecurrentModel.param_groups)
    momentum: float = 0.0  # sgd and rmsprop only
    weight_decay: float = 0.0
    # "step": x0.1 at 90% of the budget; "milestones": x lr_decay at each of `milestones`,
    # counted in epochs when the budget is `epochs`, else in steps
    schedule: Literal["constant", "cosine", "step", "milestones"] = "constant"
    milestones: tuple[float, ...] = ()
    lr_decay: float = 0.1
    clip: float | None = None  # max total gradient norm; None = no clipping
    clip_value: float | None = None  # max |gradient| per element (after `clip`); None = none
    eval_every: int = 100  # validation cadence in steps, the same for every model
    eval_every_epochs: float | None = None  # instead of eval_every: validate every this many epochs
    log_every: int = 10  # training-loss and gradient-norm logging cadence in steps
    val_batches: int | None = None  # cap on validation batches per evaluation (None = all)
    selection: Literal["best_val", "last"] = "best_val"
    probes: int = 3  # hidden-state gradient probes after init, evenly spaced, last at the end
    probe_batch: int = 16
    task_params: dict = field(default_factory=dict)
    model_params: dict = field(default_factory=dict)
    # Where the values came from, kept in the record but not in the configuration hash
    # (the same values are the same experiment): the recipe started from, and for every
    # key set by a layer its origin ("recipe", "tuned", "set"); unlisted keys are defaults.
    recipe: str | None = None
    tuned: str | None = None  # the tuned file applied (`--tuned PATH`)
    origins: dict = field(default_factory=dict)

    def validate(self) -> None:
        require(self.hidden_size >= 1, f"hidden_size={self.hidden_size} must be >= 1")
        require(self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1")
        require(self.steps >= 1, f"steps={self.steps} must be >= 1")
        require(self.epochs is None or self.epochs > 0, f"epochs={self.epochs} must be > 0")
        require(self.lr > 0, f"lr={self.lr} must be > 0")
        require(self.weight_decay >= 0, f"weight_decay={self.weight_decay} must be >= 0")
        require(self.clip is None or self.clip > 0, f"clip={self.clip} must be > 0 (or none)")
        require(self.clip_value is None or self.clip_value > 0, f"clip_value={self.clip_value} must be > 0 (or none)")
        require(self.momentum >= 0, f"momentum={self.momentum} must be >= 0")
        require(self.momentum == 0 or self.optimizer != "adam",
                f"momentum={self.momentum} is for sgd or rmsprop; adam has its own betas")
        require(0 < self.lr_decay <= 1, f"lr_decay={self.lr_decay} must be in (0, 1]")
        require((self.schedule == "milestones") == bool(self.milestones),
                f"schedule={self.schedule!r} with milestones={list(self.milestones)}: milestones go "
                "with schedule=milestones and only with it")
        require(all(m > 0 for m in self.milestones) and list(self.milestones) == sorted(self.milestones),
                f"milestones={list(self.milestones)} must be positive and increasing")
        require(self.eval_every_epochs is None or (self.epochs is not None and self.eval_every_epochs > 0),
                f"eval_every_epochs={self.eval_every_epochs} needs an epochs budget and must be > 0")
        require(self.eval_every >= 1, f"eval_every={self.eval_every} must be >= 1")
        require(self.log_every >= 1, f"log_every={self.log_every} must be >= 1")
        require(self.probes >= 0, f"probes={self.probes} must be >= 0")
        require(self.probe_batch >= 1, f"probe_batch={self.probe_batch} must be >= 1")
        require(self.val_batches is None or self.val_batches >= 1,
                f"val_batches={self.val_batches} must be >= 1 (or none: every validation batch)")
        require(self.epochs is not None or self.probes <= self.steps,
                f"probes={self.probes} exceeds the run's steps={self.steps} (one probe per step at most): "
                f"set probes <= {self.steps} (--set probes={self.steps}) or raise steps")


PROVENANCE_FIELDS = ("recipe", "tuned", "origins")
RUN_KEYS = [f.name for f in dataclasses.fields(RunConfig)
            if f.name not in ("task_params", "model_params", *PROVENANCE_FIELDS)]


def parse_sets(pairs: list[str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Split ``key=value`` strings into run, task and model overrides (values still text)."""
    run, task, model = {}, {}, {}
    for pair in pairs:
        if "=" not in pair:
            raise SuiteError(f"--set {pair!r} is not key=value (for example --set lr=0.01)")
        key, value = pair.split("=", 1)
        key = key.strip()
        if key.startswith("task."):
            task[key[5:]] = value
        elif key.startswith("model."):
            model[key[6:]] = value
        elif key in RUN_KEYS and key not in ("task", "model"):
            run[key] = value
        else:
            valid = [k for k in RUN_KEYS if k not in ("task", "model")] + ["task.<param>", "model.<param>"]
            raise SuiteError(unknown_key_message(key, valid))
    return run, task, model


def run_config(task: str, model: str, sets: list[str], device: str | None = None, seed: int = 0, *,
               layers: tuple[tuple[str, list[str]], ...] = (), recipe: str | None = None) -> RunConfig:
    """A RunConfig from ``--set`` strings (a ``seed=`` among them wins over ``seed``).

    ``layers`` are ``(origin, sets)`` pairs applied in order before ``sets`` (a later value
    of a key wins); the result's ``origins`` names, for every key any layer or ``sets``
    gave, where its final value came from ("set" for ``sets``)."""
    chains: dict[str, list[str]] = {}  # key -> the layers that set it, last one winning
    merged: dict[str, str] = {}
    for origin, layer in (*layers, ("set", list(sets))):
        for pair in layer:
            key = pair.split("=", 1)[0].strip()
            merged[key] = pair
            chain = chains.setdefault(key, [])
            if origin not in chain:
                chain.append(origin)
            else:  # set twice by one layer: still that layer's value
                chain.append(chain.pop(chain.index(origin)))
    origins = {key: chain[-1] + (f" (overrides {', '.join(reversed(chain[:-1]))})" if len(chain) > 1 else "")
               for key, chain in chains.items()}
    run_over, task_over, model_over = parse_sets(list(merged.values()))
    fields = {"task": task, "model": model, "seed": seed, **run_over}
    if device is not None:
        fields["device"] = device
    cfg = build_config(RunConfig, fields)
    return dataclasses.replace(cfg, task_params=task_over, model_params=model_over, recipe=recipe,
                               origins=dict(sorted(origins.items())))


def config_hash(resolved: dict) -> str:
    """Stable hash of a resolved configuration: what identifies a result cell."""
    blob = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# -- one spelling of a configuration as --set keys and values -----------------------------------

def flatten(config: dict, prefix: str = "") -> dict:
    """``{"task_params": {"T": 5}, "lr": 0.1}`` -> ``{"task.T": 5, "lr": 0.1}``: the keys a user
    passes to ``--set``. Every table, tuned file and exporter spells a configuration so."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, prefix + key.removesuffix("_params") + "."))
        else:
            out[prefix + key] = value
    return out


def set_value(value: Any) -> str:
    """A value as ``--set`` text that parses back to the same value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def normal(obj: Any) -> Any:
    """What JSON would give back: comparing a stored value with a fresh one."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))
