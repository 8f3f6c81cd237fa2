"""The core, which knows nothing of the command line: the contracts (``spec``), the
registries, typed configuration and its layers, building, the harness and its training
rules, probes, records, checkpoints, claims, recipes and the cell runner."""
