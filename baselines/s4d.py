"""S4D, the diagonal structured state space model (Gu, Gupta, Goel & Ré, NeurIPS 2022, "On
the Parameterization and Initialization of Diagonal State Space Models").

Each of the H channels of a layer is its own single-input linear system with N/2 complex
modes (the other N/2 are their conjugates, so the output is real):
    s_t = Ā ⊙ s_{t−1} + B̄ u_t,      y_t = 2 Re(C · s_t) + D u_t
with A = −exp(log_a) + i·a_imag (diagonal, Re A < 0), Δ = exp(log_Δ) per channel and the
zero-order hold Ā = exp(ΔA), B̄ = (exp(ΔA) − 1)/A (B = 1: the authors' minimal module has
no B; C carries the input scale). Over a sequence this is the causal convolution of u with
K_l = 2 Re(C B̄ Ā^l), which is how the authors compute it.

A layer and the stack, as the authors' minimal module and example (state-spaces/s4,
models/s4/s4d.py and example.py, read at commit e757cef, 2024-02-21):
    x = encoder(u)                                        Linear(input, H)
    per layer:  z = LN(x) if prenorm else x
                z = GLU(W · dropout(GELU(y(z))))          W: H → 2H; GLU: a ⊙ σ(b)
                x = x + dropout(z);  x = LN(x) if not prenorm
The readout (the harness's) sees x at the step it reads. Both dropouts are per sequence
and channel, the same mask at every step (their DropoutNd with tie=True, and
nn.Dropout1d); ``step`` cannot hold a mask across calls, so it is the evaluation-mode
semantics.

Initialization, as theirs: log_Δ ~ U(log Δ_min, log Δ_max) per channel; S4D-Lin
A_n = −½ + iπn, n = 0..N/2−1 (``init="inv"``: S4D-Inv, imaginary part
(N/π)(N/(2n+1) − 1), from their full kernel's ``init='inv'``); C complex standard normal
(real and imaginary parts N(0, ½)); D ~ N(0, 1); encoder, W, LayerNorm and readout
PyTorch's defaults. Defaults of example.py's arguments: 4 layers, d_model 128 (the
suite's hidden size), N = 64, dropout 0.1, postnorm; AdamW lr 0.01, weight decay 0.01,
cosine schedule, and the SSM's Δ and A at lr min(0.001, lr) without weight decay. That
is :meth:`param_groups`: group "ssm" (log_Δ, log_a, a_imag) at ``ssm_lr_scale`` × the
run's lr (0.1 = 0.001/0.01) and no weight decay. C and D are in the ordinary group, as
in their code (their ``register`` is called for Δ and A only). The suite's optimizers
have no AdamW (``weight_decay`` is Adam's L2 term), so their decoupled decay is not
reproduced and not searched.

``forward``: ``kernel="fft"`` (default) is the authors' FFT convolution, ``"scan"`` the
recurrence through the suite's parallel scan (suite/kernels/scan.py); both equal the
step loop in float64. FFT is the default because the scan materializes every mode's
state, B·T·H·N/2 complex numbers per layer (1.6 GB in float32 at sMNIST's B = 64,
T = 784, H = 128, N = 64), where the convolution needs B·T·H.

State: every layer's modes s_l as real tensors [B, H, N/2, 2] (real and imaginary
parts), then the stack's output x (what the readout sees; nothing reads it back). So
‖∂L/∂h_t‖ is the norm over all layers' modes and the output; the output adds only the
direct term of a step the readout reads.

Published numbers: the S4D paper reports image (sequential CIFAR), audio (Speech
Commands), medical time series and Long Range Arena results; as far as we could
find, no sMNIST or psMNIST number. S4's published sMNIST and pMNIST numbers (Gu, Goel &
Ré, ICLR 2022) are for S4, not S4D, and the repository holds no experiment configuration
for them (at HEAD and tags v1–v3 only configs/pipeline/mnist.yaml, a demo whose
permutation is the bit reversal of src/dataloaders/basic.py; the suite's ``psmnist``
has it as ``task.perm=bit-reversal``). So no recipe: the suite runs example.py's
defaults, whose own MNIST line (its docstring) is ``--d_model 256 --weight_decay 0.0``,
with no number attached. The example mean-pools the last layer's outputs over the
sequence before its decoder; the suite's readout reads one step, as for every model
here (a running mean would have to be carried in the state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel
from suite.kernels.scan import linear_scan


@dataclass
class S4DConfig:
    layers: int = 4  # example.py --n_layers
    d_state: int = 64  # N: N/2 complex modes per channel
    dt_min: float = 0.001
    dt_max: float = 0.1
    init: Literal["lin", "inv"] = "lin"  # S4D-Lin or S4D-Inv imaginary parts
    dropout: float = 0.1  # example.py --dropout
    prenorm: bool = False  # example.py --prenorm (off by default)
    ssm_lr_scale: float = 0.1  # lr of Δ and A relative to the run's (0.001 / 0.01 in example.py)
    kernel: Literal["fft", "scan"] = "fft"  # how forward evaluates the linear system

    def validate(self):
        require(self.layers >= 1, f"model.layers={self.layers} must be >= 1")
        require(self.d_state >= 2 and self.d_state % 2 == 0, f"model.d_state={self.d_state} must be even and >= 2")
        require(0 < self.dt_min <= self.dt_max,
                f"model.dt_min={self.dt_min}, model.dt_max={self.dt_max}: need 0 < dt_min <= dt_max")
        require(0 <= self.dropout < 1, f"model.dropout={self.dropout} must be in [0, 1)")
        require(self.ssm_lr_scale > 0, f"model.ssm_lr_scale={self.ssm_lr_scale} must be > 0")


@register_model("s4d")
class S4D(RecurrentModel):
    Config = S4DConfig
    version = 1
    search_space = {"lr": ("log", 1e-3, 3e-2), "model.dropout": ("float", 0.0, 0.3)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        L, H, modes = cfg.layers, hidden_size, cfg.d_state // 2
        self.encoder = nn.Linear(input_size, H)
        self.log_dt = nn.Parameter(torch.empty(L, H).uniform_(math.log(cfg.dt_min), math.log(cfg.dt_max)))
        self.log_A_real = nn.Parameter(torch.full((L, H, modes), math.log(0.5)))
        n = torch.arange(modes, dtype=torch.float32)
        imag = math.pi * n if cfg.init == "lin" else cfg.d_state / math.pi * (cfg.d_state / (2 * n + 1) - 1)
        self.A_imag = nn.Parameter(imag.expand(L, H, modes).clone())
        self.C = nn.Parameter(torch.view_as_real(torch.randn(L, H, modes, dtype=torch.cfloat)).clone())
        self.D = nn.Parameter(torch.randn(L, H))
        self.output_linear = nn.ModuleList(nn.Linear(H, 2 * H) for _ in range(L))
        self.norms = nn.ModuleList(nn.LayerNorm(H) for _ in range(L))

    def param_groups(self):
        ssm = [self.log_dt, self.log_A_real, self.A_imag]
        rest = [p for p in self.parameters() if all(p is not q for q in ssm)]
        return [{"name": "all", "params": rest, "lr_scale": 1.0},
                {"name": "ssm", "params": ssm, "lr_scale": self.cfg.ssm_lr_scale, "weight_decay": 0.0}]

    def step_matches_training(self):
        return self.cfg.dropout == 0

    # -- the linear system ------------------------------------------------------------
    def _system(self, layer):
        """Layer ``layer``'s ZOH system: ΔA, Ā, B̄ and C, each [H, N/2] complex."""
        A = torch.complex(-self.log_A_real[layer].exp(), self.A_imag[layer])
        dtA = A * self.log_dt[layer].exp().unsqueeze(-1)
        dA = dtA.exp()
        return dtA, dA, (dA - 1) / A, torch.view_as_complex(self.C[layer])

    def _ssm_sequence(self, layer, u):
        """y = K * u + D u over a whole sequence u: [B, T, H]."""
        dtA, dA, dB, C = self._system(layer)
        T = u.shape[1]
        if self.cfg.kernel == "scan":
            states = linear_scan(dA, dB * u.unsqueeze(-1))  # [B, T, H, N/2]
            y = 2 * (states * C).sum(-1).real
        else:
            # K_l = 2 Re Σ_n C_n B̄_n exp(ΔA_n l), the Vandermonde product, then a linear
            # (zero-padded to 2T) convolution by FFT
            steps = torch.arange(T, device=u.device, dtype=u.dtype)
            K = 2 * torch.einsum("hn,hnl->hl", C * dB, (dtA.unsqueeze(-1) * steps).exp()).real
            spectrum = torch.fft.rfft(u.transpose(1, 2), n=2 * T) * torch.fft.rfft(K, n=2 * T)
            y = torch.fft.irfft(spectrum, n=2 * T)[..., :T].transpose(1, 2)
        return y + self.D[layer] * u

    # -- the block around it ----------------------------------------------------------
    def _mask(self, x):
        """One dropout mask per sequence and channel ([B, 1, H]), the same at every step."""
        p = self.cfg.dropout
        if not self.training or p == 0:
            return None
        keep = torch.rand(x.shape[0], 1, self.hidden_size, device=x.device) < 1 - p
        return keep.to(x.dtype) / (1 - p)

    def _mix(self, layer, y, mask):
        y = F.gelu(y)
        y = y if mask is None else y * mask
        return F.glu(self.output_linear[layer](y), dim=-1)

    def _residual(self, layer, x, z, mask):
        x = x + (z if mask is None else z * mask)
        return x if self.cfg.prenorm else self.norms[layer](x)

    def _block_input(self, layer, x):
        return self.norms[layer](x) if self.cfg.prenorm else x

    def forward(self, x):
        x = self.encoder(x)
        for layer in range(self.cfg.layers):
            y = self._ssm_sequence(layer, self._block_input(layer, x))
            z = self._mix(layer, y, self._mask(x))
            x = self._residual(layer, x, z, self._mask(x))
        return x

    # -- the recurrent contract -------------------------------------------------------
    def initial_state(self, batch_size, device, dtype):
        modes = torch.zeros(batch_size, self.hidden_size, self.cfg.d_state // 2, 2, device=device, dtype=dtype)
        out = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return tuple(modes.clone() for _ in range(self.cfg.layers)) + (out,)

    def step(self, x_t, state):
        x, new = self.encoder(x_t), []
        for layer in range(self.cfg.layers):
            _, dA, dB, C = self._system(layer)
            u = self._block_input(layer, x)
            s = dA * torch.view_as_complex(state[layer]) + dB * u.unsqueeze(-1)
            y = 2 * (s * C).sum(-1).real + self.D[layer] * u
            x = self._residual(layer, x, self._mix(layer, y, None), None)
            new.append(torch.view_as_real(s))
        return tuple(new) + (x,)

    def features(self, state):
        return state[-1]
