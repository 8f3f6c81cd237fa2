"""rnnsuite: a reproducibility benchmark suite for recurrent networks on long-memory tasks.

Python API (the command line ``rnnsuite`` is a thin layer over it)::

    import suite
    suite.list_tasks(), suite.list_models()
    task = suite.build_task("adding", T=200)
    model = suite.build_model("gru", input_size=2, output_size=1, hidden_size=64)
    record = suite.run(suite.RunConfig(task="adding", model="gru", steps=100))

The contracts are in :mod:`suite.core.spec`; registries in :mod:`suite.core.registry`.
"""

import importlib

from suite.core import registry


def _register_entries() -> None:
    # The built-in tasks and models, imported explicitly and all at once on the registries'
    # first use: a module that fails to import fails then, not when a run asks for its name.
    import baselines  # noqa: F401
    import suite.hamiltonian  # noqa: F401
    import tasks  # noqa: F401


registry.on_first_use(_register_entries)

# The API, imported on first access (PEP 562): `import suite` and the command line's
# start-up stay free of torch until a name that needs it is used.
_API = {
    "build_model": "suite.core.build", "build_task": "suite.core.build", "list_models": "suite.core.build",
    "list_tasks": "suite.core.build", "resolve": "suite.core.build", "RunConfig": "suite.core.config",
    "run": "suite.core.harness", "SuiteError": "suite.core.registry", "register_model": "suite.core.registry",
    "register_task": "suite.core.registry", "RecurrentModel": "suite.core.spec", "Task": "suite.core.spec",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'suite' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
