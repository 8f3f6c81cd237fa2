#!/usr/bin/env bash
# The GPU checks in one run, for a lent GPU machine (one H100 or H200) whose Python has
# PyTorch with CUDA but no Optuna and no package registry:
#   mkdir -p .carry && cp -r ../shared/wheels/gpu-py312 .carry/wheels   # here, once
#   bash tests/gpu_check.sh                                              # there (carry: .carry)
# What it runs: every CUDA test (the graphed training step against the eager one, the
# Hamiltonian cells on CUDA), then the cell table on the GPU, eager and with CUDA graphs.
# Its output is the evidence for README's GPU table; it writes nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .carry/wheels/*.whl
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m pytest -q -rs -o addopts= -p no:cacheprovider tests/test_cuda_graph.py tests/test_hamiltonian.py -k "cuda or graph"
python3 -m tests.benchmarks.cell_table --device cuda --rounds 5
python3 -m tests.benchmarks.cell_table --device cuda --cuda-graphs --rounds 5
