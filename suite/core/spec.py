"""The two contracts of the suite, in one place: :class:`Task` and :class:`RecurrentModel`.

The harness, the gradient probes, the tests and the reports use nothing else of a
task or a model. Adding a task or a model means subclassing one of these in a file
of its own and decorating it with ``@register_task("name")`` /
``@register_model("name")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal, Union

import torch
from torch import Tensor, nn

State = Union[Tensor, tuple[Tensor, ...]]

Split = Literal["train", "val", "test"]
SPLITS = ("train", "val", "test")


@dataclasses.dataclass
class NoParams:
    """Config for a task or model without parameters."""


class Task:
    """A sequence task.

    Required of a subclass:
      ``metric``, ``higher_is_better``  the headline metric (a key of :meth:`metrics`) and
                            its direction, declared once here;
      ``input_size``, ``output_size``, ``seq_len``   set in ``__init__``;
      :meth:`split_size`, :meth:`batch`, :meth:`loss`, :meth:`metrics`.
    Optional, with defaults:
      ``Config`` (dataclass of the task's parameters; none), ``version`` (1; bump it
      whenever the definition changes: it is in every record), ``output_at`` (``"last"``:
      the readout reads the last step; ``"all"``: every step), ``target`` (the metric value
      that counts as reached; none), :meth:`describe` and :meth:`variant` (what identifies
      the variant in tables). :meth:`steps_per_epoch` and :meth:`batches` derive from the
      required methods.
    """

    Config: ClassVar[type] = NoParams
    version: ClassVar[int] = 1
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    output_at: ClassVar[Literal["last", "all"]] = "last"
    registry_name: ClassVar[str]

    def __init__(self, cfg: Any, *, data_dir: str | None = None):
        self.cfg = cfg
        self.data_dir = data_dir  # where data files live, for tasks that read any

    # -- shapes ---------------------------------------------------------------
    input_size: int
    output_size: int
    seq_len: int

    # -- data -------------------------------------------------------------------
    def split_size(self, split: Split) -> int | None:
        """Number of examples in ``split``; ``None`` for an endless training stream."""
        raise NotImplementedError

    def steps_per_epoch(self, batch_size: int) -> int | None:
        """Training batches in one epoch (``None`` for an endless stream): full batches
        only, unless the task keeps the last, incomplete one."""
        size = self.split_size("train")
        return None if size is None else max(1, size // batch_size)

    def batch(self, split: Split, index: int, batch_size: int, *, seed: int) -> tuple[Tensor, Tensor]:
        """Batch number ``index`` of ``split``: ``x: [B, T, input_size]`` and its target.

        A pure function of its arguments, so that a run can resume at any step.
        Training batches depend on ``seed``; validation and test sets are fixed by
        the task's own parameters, so every run is scored on the same examples.
        """
        raise NotImplementedError

    def batches(self, split: Split, batch_size: int, *, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of ``split`` in order; endless for an endless training split."""
        size = self.split_size(split)
        index = 0
        while size is None or index * batch_size < size:
            yield self.batch(split, index, batch_size, seed=seed)
            index += 1

    # -- scoring ------------------------------------------------------------------
    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-example training loss, shape ``[B]``."""
        raise NotImplementedError

    def metrics(self, output: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Per-example metrics, each of shape ``[B]``; contains ``self.metric``."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What identifies this variant beyond its parameters, and its reference
        points: e.g. the trivial-baseline value, a permutation hash, split sizes."""
        return {}

    @property
    def variant(self) -> str:
        """Short human label of the variant for tables, e.g. ``T=1000``."""
        return ""

    target: float | None = None  # metric value that counts as "reached" (time-to-target)


class RecurrentModel(nn.Module):
    """A recurrent model: the reference semantics is :meth:`step`.

    Required of a subclass: :meth:`initial_state`, :meth:`step`, :meth:`features`.
    Optional, with defaults: ``Config`` (dataclass of hyperparameters with their published
    defaults; none), ``version`` (1; bumped when the definition changes), ``search_space``
    (the learning rate), ``feature_size``, :meth:`forward` and :meth:`last_features` (a
    faster path, held equal to the step loop), :meth:`resolve_config` (hyperparameters
    chosen before training), :meth:`init_readout`, :meth:`step_matches_training`,
    :meth:`param_groups`, :meth:`constrain`, :meth:`extra_record`.

    ``forward`` defaults to a loop over ``step``; a subclass may override it with a
    fused or library path, which the contract tests hold equal to the step loop (in
    evaluation mode always; in training mode too unless the model has dropout or batch
    statistics, whose training-mode forward the step loop cannot reproduce).
    ``last_features`` (the harness's path for a task read at its last step) defaults to
    ``forward``'s last step; an override is held equal to the step loop's last step.
    ``build_model`` attaches ``self.readout`` (features -> outputs); the harness
    applies it, so models stay ignorant of the task.
    """

    Config: ClassVar[type] = NoParams
    version: ClassVar[int] = 1
    registry_name: ClassVar[str]
    # Optuna search space, keyed as ``--set`` keys (run keys and ``model.<hparam>``):
    # ("log", lo, hi) log-uniform float, ("float", lo, hi), ("int", lo, hi),
    # ("categorical", [choices]). Hidden size is never searched: tables fix it.
    search_space: ClassVar[dict[str, tuple]] = {"lr": ("log", 1e-4, 1e-2)}

    def __init__(self, input_size: int, hidden_size: int, cfg: Any):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.cfg = cfg
        self.readout: nn.Module | None = None

    @property
    def feature_size(self) -> int:
        """Width of :meth:`features`; the readout's input size."""
        return self.hidden_size

    # how resolve_config chose what it filled in (e.g. the heuristic's rule and measured
    # deviation), set by suite.core.build.build_model; empty for a model built without seq_len
    resolution: dict[str, Any] = {}

    @classmethod
    def resolve_config(cls, cfg: Any, *, input_size: int, hidden_size: int, seq_len: int) -> tuple[Any, dict]:
        """Fill in hyperparameters chosen before training from what is known then
        (e.g. a heuristic step size from the sequence length). Returns the config the
        model is built with, which the record keeps, and notes of how it was chosen,
        which the built model holds as ``resolution`` (for :meth:`extra_record`).
        Default: the config unchanged, no notes."""
        return cfg, {}

    def initial_state(self, batch_size: int, device: torch.device | str, dtype: torch.dtype) -> State:
        raise NotImplementedError

    def step(self, x_t: Tensor, state: State) -> State:
        """One step: ``x_t: [B, input_size]`` and the state -> the next state."""
        raise NotImplementedError

    def features(self, state: State) -> Tensor:
        """What the readout sees: ``[B, feature_size]``."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, T, input_size]`` -> features ``[B, T, feature_size]``."""
        return step_loop(self, x)

    def last_features(self, x: Tensor) -> Tensor:
        """``x: [B, T, input_size]`` -> the last step's features ``[B, feature_size]``, what
        the readout of a task with ``output_at = "last"`` sees. Default: ``forward``'s last
        step. A model may override it to skip the other steps' features (and their zero
        gradients, T·B·F each); it must equal ``forward(x)[:, -1]``, values and gradients."""
        return self(x)[:, -1]

    def init_readout(self, readout: nn.Linear) -> None:
        """Initialize the readout the harness attached, where the model's authors used
        their own rule. Default: PyTorch's ``nn.Linear`` initialization, unchanged."""

    def step_matches_training(self) -> bool:
        """Whether the training-mode ``forward`` equals the ``step`` loop. False for a
        model with dropout or batch statistics in training, whose ``step`` is then the
        evaluation-mode semantics."""
        return True

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups: ``[{"name", "params", "lr_scale"}]``, every
        parameter (the readout's included) in exactly one; the harness trains each group
        at ``lr × lr_scale``, with the run's weight decay unless the group sets its own
        ``"weight_decay"``. Default: one group at the run's learning rate."""
        return [{"name": "all", "params": list(self.parameters()), "lr_scale": 1.0}]

    def constrain(self) -> None:
        """Called by the harness after every optimizer step: project the parameters onto
        the model's constraint set, as its authors do (e.g. IndRNN's bound on |u|).
        Default: no constraint."""

    def extra_record(self) -> dict[str, Any]:
        """Values chosen at build time that a record must keep (e.g. a heuristic Δt)."""
        return {}


def step_loop(model: RecurrentModel, x: Tensor) -> Tensor:
    """The reference sequence semantics: ``features(step(...))`` at every step."""
    return scan(model, x, lambda state, x_t: model.step(x_t, state))


def scan(model: RecurrentModel, drive: Tensor, update: Callable[[State, Tensor], State]) -> Tensor:
    """``features`` of every state of ``state = update(state, drive[:, t])`` from the
    model's initial state: the step loop, for a ``forward`` that computes what does not
    change per step (the input map over all steps, a recurrence matrix) once, before it."""
    state = model.initial_state(drive.shape[0], drive.device, drive.dtype)
    feats = []
    # unbind, not drive[:, t]: indexing makes autograd build a full-size zero gradient per step
    for drive_t in drive.unbind(1):
        state = update(state, drive_t)
        feats.append(model.features(state))
    return torch.stack(feats, dim=1)


def as_tuple(state: State) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)
