"""The step-size heuristic: Δt (h for the H-DNN cells) chosen before training.

Rule ``hamiltonian-dt-v1`` — the largest step whose hidden-state gradient at
initialization stays within half a decade of the output's over the whole sequence:

    Δt* = max { Δt ≤ Δt_cap : |D(Δt)| ≤ 0.5 },   D = the signed largest deviation
          max-|·| over t of log10(‖∂L/∂h_t‖ / ‖∂L/∂h_T‖)   (see :func:`deviation`),

measured with :func:`suite.core.probes.hidden_gradient_profile` (float64) on the model as it
is initialized (fixed seed 0), ``PROBE_BATCH`` = 4 random sequences of length T with
N(0, 1) inputs (the suite's inputs are standardized or in [0, 1]) and a random
cotangent on the last features (L = Σ_b ⟨features_T, c_b⟩, c_b ~ N(0, I)), so the
profile is the norm of a random vector propagated back through the step Jacobians —
what any task's loss sends back, without knowing the task.

Search: start from the closed form Δt₀ = min(Δt_cap, 3/√T); move by factors of √10
(up while the deviation is within target, down while it is not) until the target is
bracketed, then four bisections in log Δt (precision ≈ 7 %). Six to nine probe
evaluations in all.

Why it works (docs/heuristic.md has the long form).
  * hrnn's step is symplectic Euler for ÿ = −K(t) y with K = α I + Wᵀ D_t W,
    D_t = diag tanh'(·) ∈ (0, 1]. Frozen in time, each mode with ω² = eig(K) is a map of
    determinant 1 that is a rotation (bounded gradients, no decay) iff Δt ω < 2. The
    stiffest mode has ω ≤ ω̂ = (α + σ_max(W)²)^½, so Δt_cap = 1/ω̂ (half the symplectic
    Euler limit 2/ω̂, measured on the initialized W) keeps every frozen mode rotating.
  * Inside that limit the gradient cannot vanish: every step has Jacobian determinant
    1, so the product over T steps has a singular value ≥ 1; frozen, the adjoint keeps
    λ_y² + ω² λ_z², so ‖∂L/∂h_t‖ stays between ‖∂L/∂h_T‖/ω̂ and ‖∂L/∂h_T‖/√α. But D_t
    changes from step to step with the input, and a product of randomly perturbed
    rotations grows at a Lyapunov rate of order (Δt·δK)² per step. Over T steps: log10
    growth ≈ κ T Δt², so the largest safe step falls roughly like 1/√T (measured
    between T = 10³ and 10⁴: T^−0.64 at H = 128, T^−0.75 at H = 32; 3/√T puts the
    start near the answer), which the measurement pins down for the actual model, size
    and T.
  * Smaller steps keep the gradient stable too but shrink the dynamics (the cell tends
    to the identity; T·Δt·ω, the number of oscillations over the sequence, falls), so
    the rule takes the largest safe step, and keeps half a decade of the one-decade
    stability threshold (:data:`STABLE_DECADES`) in reserve for training to move W.

The same measured search applies unchanged to any model with a step-size field
(``dt``, ``h`` or ``eps``; :func:`step_size_field`): the H-DNN cells, whose forward-
Euler and symplectic steps follow the same κ T Δt² law, and AntisymmetricRNN. Only the
cap differs: 1/ω̂ for hrnn, the upper end of the model's searched range (or 1) else.

Classes (the study's and the tests' threshold, one decade): a profile is *stable* when
every step's gradient is within ``STABLE_DECADES`` = 1 of the last step's,
|D| ≤ 1; else *exploding* (D > 1; a non-finite norm counts as +∞) or *vanishing*
(D < −1; a norm that underflows float64 to 0 counts as −∞).

Cost: one probe evaluation is a float64 step loop with autograd through T steps, and
the search takes six to nine; measured on a shared two-core CPU, one thread: 1.2 s in
all at T = 784, H = 128; 2 s at T = 1000, H = 32; 22–26 s at T = 10⁴ (H = 32 or 128).
Results are cached per arguments within a process; the global RNG is left as it was.

    from suite.hamiltonian.heuristic import heuristic_dt
    dt, info = heuristic_dt("hrnn", input_size=1, hidden_size=128, seq_len=784)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import torch
from torch import nn

from suite.core import probes
from suite.core.config import build_config
from suite.core.registry import MODELS, SuiteError
from suite.core.spec import RecurrentModel, Task

RULE = "hamiltonian-dt-v1"
STABLE_DECADES = 1.0  # class threshold: |D| ≤ 1 decade is stable
TARGET_DECADES = 0.5  # the heuristic's target: half the threshold, the rest kept for training
PROBE_BATCH = 4
START_CONSTANT = 3.0  # Δt₀ = START_CONSTANT / √T before the measurement corrects it
STEP_FACTOR = 10**0.5
BISECTIONS = 4
DT_MIN = 1e-6
DT_MAX_GENERIC = 1.0
STEP_SIZE_FIELDS = ("dt", "h", "eps")  # hrnn, H-DNN cells, AntisymmetricRNN (its forward-Euler step ε)


# -- the statistic and the classes ---------------------------------------------------------


def deviation(profile: list[float]) -> float:
    """Signed largest deviation of log10(‖∂L/∂h_t‖ / ‖∂L/∂h_T‖) over t = 1..T.

    Positive: some earlier step's gradient is larger than the output's (exploding);
    negative: smaller (vanishing). A non-finite norm gives +inf, an underflow to 0
    gives -inf (whichever is present; +inf wins), a zero last norm gives nan. It
    contains the suite's endpoint ratio (:func:`suite.core.probes.gradient_ratio`, t = 1)
    and, unlike it, also catches a profile that swings through the middle of the
    sequence or an oscillation trough that happens to sit at t = 1.
    """
    if any(not math.isfinite(v) for v in profile):
        return math.inf
    last = profile[-1]
    if last <= 0:
        return math.nan
    if any(v <= 0 for v in profile):
        return -math.inf
    logs = [math.log10(v / last) for v in profile]
    high, low = max(logs), min(logs)
    return high if high >= -low else low


def classify(value: float, threshold: float = STABLE_DECADES) -> str:
    """'vanishing' | 'stable' | 'exploding' for a :func:`deviation` value ('undefined' for nan)."""
    if math.isnan(value):
        return "undefined"
    if value > threshold:
        return "exploding"
    if value < -threshold:
        return "vanishing"
    return "stable"


# -- the model's step-size knob ------------------------------------------------------------------


def step_size_field(cls: type[RecurrentModel]) -> str | None:
    """Name of the model's step-size hyperparameter (``dt``, ``h`` or ``eps``), or None."""
    if not dataclasses.is_dataclass(cls.Config):
        return None
    names = {f.name for f in dataclasses.fields(cls.Config) if f.init}
    return next((name for name in STEP_SIZE_FIELDS if name in names), None)


def _model_class(model: str | type[RecurrentModel]) -> type[RecurrentModel]:
    return MODELS.get(model) if isinstance(model, str) else model


class _CotangentProbe(Task):
    """Stand-in task for the probe: loss ⟨features_T, c⟩ with the cotangent c as target."""

    output_at = "last"

    def __init__(self):
        super().__init__(None)

    def loss(self, output, target):
        return (output * target).sum(-1)


def _build(cls, input_size: int, hidden_size: int, hparams: dict, seed: int) -> RecurrentModel:
    """The model as initialized from ``seed``, with the features themselves as readout."""
    cfg = build_config(cls.Config, hparams, prefix="model.")
    with torch.random.fork_rng(devices=[]):  # the caller's RNG (the run's init) is left untouched
        torch.manual_seed(seed)
        model = cls(input_size, hidden_size, cfg)
    model.readout = nn.Identity()
    return model


def _hrnn_cap(model: RecurrentModel) -> tuple[float, float] | None:
    """(Δt_cap = 1/ω̂, ω̂) for an hrnn-like cell (a square ``W`` and ``cfg.alpha``), else None."""
    W, alpha = getattr(model, "W", None), getattr(model.cfg, "alpha", None)
    if not isinstance(W, torch.Tensor) or W.ndim != 2 or W.shape[0] != W.shape[1] or alpha is None:
        return None
    sigma = torch.linalg.matrix_norm(W.detach().double(), ord=2).item()
    omega = math.sqrt(float(alpha) + sigma**2)
    return 1.0 / omega, omega


def _search_cap(cls) -> float:
    """Upper end of the model's searched range for its step (``search_space``), else the
    model's own bound ``step_size_max`` (a step that must stay below 1), else 1."""
    field = step_size_field(cls)
    space = getattr(cls, "search_space", {}).get(f"model.{field}")
    if space and space[0] in ("log", "float"):
        return float(space[2])
    return float(getattr(cls, "step_size_max", DT_MAX_GENERIC))


# -- the heuristic -----------------------------------------------------------------------------------


def heuristic_dt(model: str | type[RecurrentModel], *, input_size: int, hidden_size: int, seq_len: int,
                 seed: int = 0, probe_batch: int = PROBE_BATCH, target: float = TARGET_DECADES,
                 **hparams: Any) -> tuple[float, dict]:
    """Δt* of rule ``hamiltonian-dt-v1`` for ``model`` (a registered name or a class).

    ``hparams`` are the model's other hyperparameters (e.g. ``alpha``); the step-size
    field itself is ignored. Returns ``(dt, info)``; ``info`` holds the rule name, the
    start and cap, every probe evaluation ``(dt, D)``, whether the target was met and
    the seconds spent. Deterministic in its arguments; the global RNG is not touched.
    """
    cls = _model_class(model)
    field = step_size_field(cls)
    if field is None:
        raise SuiteError(f"model {getattr(cls, 'registry_name', cls.__name__)!r} has no step-size field "
                         f"({', '.join(STEP_SIZE_FIELDS)}) for the heuristic to choose")
    if seq_len < 1:
        raise SuiteError(f"seq_len={seq_len} must be >= 1")
    items = tuple(sorted((k, v) for k, v in hparams.items() if k != field))
    threads = torch.get_num_threads()
    # one thread: the probe's matrices are tiny; on a busy machine OpenMP's spinning
    # threads made the step loop ten times slower (measured on two cores)
    torch.set_num_threads(1)
    try:
        dt, info = _cached(cls, field, input_size, hidden_size, seq_len, seed, probe_batch, target, items)
    finally:
        torch.set_num_threads(threads)
    return dt, dict(info)


@functools.lru_cache(maxsize=256)
def _cached(cls, field, input_size, hidden_size, seq_len, seed, probe_batch, target, items):
    start_clock = time.perf_counter()
    hparams = dict(items)
    cap, omega = _search_cap(cls), None
    # built at the cap, a step the model accepts (its weights do not depend on the step)
    linear = _hrnn_cap(_build(cls, input_size, hidden_size, {**hparams, field: cap}, seed))
    if linear is not None:
        cap, omega = linear

    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(probe_batch, seq_len, input_size, generator=gen, dtype=torch.float64)
    evaluations: list[tuple[float, float]] = []

    def deviation_at(dt: float) -> float:
        model = _build(cls, input_size, hidden_size, {**hparams, field: dt}, seed)
        cotangent = torch.randn(probe_batch, model.feature_size, generator=torch.Generator().manual_seed(seed + 2),
                                dtype=torch.float64)
        value = deviation(probes.hidden_gradient_profile(model, _CotangentProbe(), x, cotangent))
        evaluations.append((dt, value))
        return value

    def good(dt: float) -> bool:
        return abs(deviation_at(dt)) <= target  # nan compares False: not good

    start = min(cap, START_CONSTANT / math.sqrt(seq_len))
    ok, bad = None, None
    if good(start):
        ok = start
        while ok < cap:
            nxt = min(ok * STEP_FACTOR, cap)
            if good(nxt):
                ok = nxt
            else:
                bad = nxt
                break
    else:
        bad = start
        while bad > DT_MIN:
            nxt = max(bad / STEP_FACTOR, DT_MIN)
            if good(nxt):
                ok = nxt
                break
            bad = nxt
    met = ok is not None
    if met and bad is not None:
        for _ in range(BISECTIONS):
            mid = math.sqrt(ok * bad)
            if good(mid):
                ok = mid
            else:
                bad = mid
    if not met:  # nothing within target down to DT_MIN: the least-deviating step tried
        ok = min(evaluations, key=lambda e: abs(e[1]) if not math.isnan(e[1]) else math.inf)[0]
    chosen = float(f"{ok:.4g}")  # a value a person can read and pass back with --set
    info = {
        "rule": RULE, "field": field, "dt": chosen, "target_decades": target, "target_met": met,
        "deviation": next(v for d, v in evaluations if d == ok),
        "start": start, "cap": cap, "omega_max": omega,
        "evaluations": [[d, v] for d, v in evaluations],
        "probe": {"seq_len": seq_len, "batch": probe_batch, "seed": seed, "inputs": "N(0,1)",
                  "loss": "random cotangent on the last features"},
        "seconds": time.perf_counter() - start_clock,
    }
    return chosen, info


def resolve_step_size(cls: type[RecurrentModel], cfg: Any, *, input_size: int, hidden_size: int,
                      seq_len: int) -> tuple[Any, dict]:
    """Body of a model's ``resolve_config``: a step-size field set to ``"heuristic"``
    becomes Δt*; the notes say how (rule, measured deviation, seconds), under
    ``"step_size"``, for :func:`step_size_record`. The config keeps only its own keys."""
    field = step_size_field(cls)
    if field is None or getattr(cfg, field) != "heuristic":
        return cfg, {}
    others = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.init and f.name != field}
    dt, info = heuristic_dt(cls, input_size=input_size, hidden_size=hidden_size, seq_len=seq_len, **others)
    choice = {"field": field, "value": dt, "rule": info["rule"], "deviation": info["deviation"],
              "target_met": info["target_met"], "seconds": round(info["seconds"], 3)}
    return dataclasses.replace(cfg, **{field: dt}), {"step_size": choice}


def step_size_record(model: RecurrentModel, field: str) -> dict:
    """For a model's ``extra_record``: how its step size was set (``rule`` "given" or the heuristic's)."""
    return model.resolution.get("step_size") or {"field": field, "value": getattr(model.cfg, field), "rule": "given"}


class HeuristicStepSize:
    """Mixin (before ``RecurrentModel`` in the bases) for a model whose step-size field may
    be ``"heuristic"``: resolves it when the model is built with ``seq_len``, records the
    choice, and refuses to run with the word instead of a number."""

    @classmethod
    def resolve_config(cls, cfg, *, input_size, hidden_size, seq_len):
        return resolve_step_size(cls, cfg, input_size=input_size, hidden_size=hidden_size, seq_len=seq_len)

    def extra_record(self):
        return {"step_size": step_size_record(self, step_size_field(type(self)))}

    def step_size(self) -> float:
        field = step_size_field(type(self))
        value = getattr(self.cfg, field)
        if isinstance(value, str):  # built without seq_len: nothing chose the step
            raise SuiteError(f"model.{field}='heuristic' is chosen from the sequence length: build the model "
                             "with seq_len=... (the harness always does) or set a number")
        return value
