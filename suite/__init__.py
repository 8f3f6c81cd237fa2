"""rnnsuite: a reproducibility benchmark suite for recurrent networks on long-memory tasks.

Python API (the command line ``rnnsuite`` is a thin layer over it)::

    import suite
    suite.list_tasks(), suite.list_models()
    task = suite.build_task("adding", T=200)
    model = suite.build_model("gru", input_size=2, output_size=1, hidden_size=64)
    record = suite.run(suite.RunConfig(task="adding", model="gru", steps=100))

The contracts are in :mod:`suite.spec`; registries in :mod:`suite.registry`.
"""

import baselines  # noqa: E402,F401
import suite.hamiltonian  # noqa: E402,F401

# Register the built-in tasks and models. Explicit imports: a module that fails to
# import fails here, at start-up, not when a run first asks for its name.
import tasks  # noqa: E402,F401
from suite.build import build_model, build_task, list_models, list_tasks, resolve
from suite.config import RunConfig
from suite.harness import run
from suite.registry import SuiteError, register_model, register_task
from suite.spec import RecurrentModel, Task

__all__ = [
    "RecurrentModel", "RunConfig", "SuiteError", "Task", "build_model", "build_task",
    "list_models", "list_tasks", "register_model", "register_task", "resolve", "run",
]
