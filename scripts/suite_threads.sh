#!/usr/bin/env bash
# The test suite under one and under two torch/OpenMP threads per process: a numerical
# tolerance that holds for one thread count only (the order of floating-point sums changes
# with it) fails here rather than on someone else's machine. About twice the suite's time.
set -euo pipefail
cd "$(dirname "$0")/.."
for threads in 1 2; do
  echo "== the suite with $threads thread(s) per process"
  RAMBENCH_TEST_THREADS=$threads python -m pytest -q "$@"
done
