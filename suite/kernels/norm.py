"""Batch normalization as Equinox's ``eqx.nn.BatchNorm`` computes it (its "ema" mode, the
only one in equinox 0.11.4, which tk-rusch/linoss pins): the layer the LinOSS and LRU
stacks of that repository normalize with.

Unlike ``torch.nn.BatchNorm1d``, training normalizes by the running statistics, not
the batch's: mean = 0.01 · batch mean + 0.99 · running mean (likewise the variance),
and those become the new running statistics; the first training batch sets them to its
own. The batch statistics are per channel over batch and time, the variance biased.
Gradients flow through the batch's share only. Evaluation uses the running statistics.
No scale or shift (``channelwise_affine=False`` in both stacks).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EMABatchNorm(nn.Module):
    def __init__(self, channels: int, momentum: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("started", torch.tensor(False))

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, T, C]`` (or ``[B, C]`` for one step: running statistics then)."""
        if not self.training or x.dim() == 2:
            return self.normalize(x, self.running_mean, self.running_var)
        batch_mean = x.mean(dim=(0, 1))
        batch_var = (x - batch_mean).pow(2).mean(dim=(0, 1))
        if self.started:
            k = self.momentum
            mean = (1 - k) * batch_mean + k * self.running_mean
            var = (1 - k) * batch_var + k * self.running_var
        else:
            mean, var = batch_mean, batch_var
        with torch.no_grad():
            self.running_mean.copy_(mean)
            self.running_var.copy_(var)
            self.started.fill_(True)
        return self.normalize(x, mean, var)

    def normalize(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        return (x - mean) / torch.sqrt(var.clamp_min(0) + self.eps)
