"""The training step's forward and backward replayed as CUDA graphs (opt-in).

    RNNSUITE_CUDA_GRAPHS=1 rnnsuite run --task smnist --model lem --device cuda

Why: every recurrent cell here runs its T steps as a loop of small kernels (the fused
passes issue tens per step, forward and backward), so on a GPU a T = 784 sequence is
bound by kernel launches, not arithmetic, against one cuDNN call for ``torch.nn.LSTM``.
A CUDA graph records the launches of one forward and one backward once and replays
them as one launch each.

How: :func:`torch.cuda.make_graphed_callables` on a module whose forward is the
harness's training prediction (the model and its readout, as ``suite.core.training.predict``).
The parameters are inputs of the graphs, so the optimizer (eager, outside the graphs:
a few kernels per parameter, not per time step) updates them in place between
replays, and gradient clipping and constraints run as before. One capture per run, on
its first training batch (the capture's three warm-up passes run on that batch too,
outside the record's steps); a batch of another shape or dtype runs the eager step.

Scope and fallbacks: CUDA only; when the capture fails (an op that synchronizes with the
host, a data-dependent shape), one warning and the eager step for the rest of the run.
The record says which ran (``timing.train_step``: "cuda_graph" or "eager"). Models with
batch statistics see three extra training passes at the capture (their running
statistics move), and dropout draws from the graph's own random stream: such runs are
equal in distribution, not number for number, to eager ones.

Status: opt-in (``RNNSUITE_CUDA_GRAPHS=1``) until its equality tests
(``tests/test_cuda_graph.py``: graphed training steps against the CPU reference,
losses and gradients, float32 tolerance, every model) have passed on a GPU; they skip
where there is none. The environment variable is not part of the configuration hash:
the graph changes how a step is launched, not what it computes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

ENV = "RNNSUITE_CUDA_GRAPHS"


def requested() -> bool:
    value = os.environ.get(ENV, "0")
    if value not in ("0", "1"):
        from suite.core.registry import SuiteError

        raise SuiteError(f"{ENV}={value!r} must be 0 (eager training steps) or 1 (CUDA graphs on a GPU)")
    return value == "1"


class _Prediction(nn.Module):
    """``x -> prediction`` as a module owning the model, so that its parameters are the graphs' inputs."""

    def __init__(self, model: nn.Module, fn: Callable[[Tensor], Tensor]):
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self._fn(x)


class TrainForward:
    """The training step's prediction ``x -> output``: graphed on CUDA when requested and
    capturable, else ``fn`` itself (the eager step)."""

    def __init__(self, model: nn.Module, fn: Callable[[Tensor], Tensor], device: torch.device,
                 enabled: bool | None = None):
        self.model, self.fn = model, fn
        self.enabled = (requested() if enabled is None else enabled) and device.type == "cuda"
        self.graphed: nn.Module | None = None
        self.signature: tuple | None = None

    @property
    def kind(self) -> str:
        """What the record names: "cuda_graph" once a capture succeeded, else "eager"."""
        return "eager" if self.graphed is None else "cuda_graph"

    def __call__(self, x: Tensor) -> Tensor:
        if self.enabled and self.signature is None:
            self._capture(x)
        if self.graphed is not None and (tuple(x.shape), x.dtype) == self.signature:
            return self.graphed(x)
        return self.fn(x)

    def _capture(self, x: Tensor) -> None:
        self.signature = (tuple(x.shape), x.dtype)
        try:
            module = _Prediction(self.model, self.fn).train()
            self.graphed = torch.cuda.make_graphed_callables(module, (x.detach().clone(),),
                                                             allow_unused_input=True)
        except RuntimeError as exc:  # capture refused: the eager step for the whole run
            torch.cuda.synchronize()
            self.graphed = None
            warnings.warn(f"CUDA graph capture of the training step failed, running it eagerly: "
                          f"{str(exc).splitlines()[0]}", stacklevel=2)
