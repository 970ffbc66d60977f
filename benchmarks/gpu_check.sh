#!/usr/bin/env bash
# The GPU check: one prepared script for a machine with an NVIDIA GPU, a few minutes long.
# It installs rambench, then prints one table of
#   1. the image corruptions at 224 px: torch backend on the GPU vs the reference code
#      (target: >= 100x aggregate),
#   2. training and evaluation throughput of RAML through rambench vs a bare PyTorch loop
#      of the same model (target: rambench >= 0.9x), and the bare loop compiled
#      (torch.compile, as `rambench run --compile`) against it,
#   3. a CREMA-D-shaped study (a few hundred clips of real files, prepared, trained for
#      EPOCHS epochs and evaluated on the quick grid) against the model compute alone
#      (target: the study within 1.5x of it: the GPU kept busy),
#   4. that study's evaluation again from its checkpoints, with feature reuse on and off
#      (RAMBENCH_FEATURE_REUSE), each with an empty corrupted-data cache: the ratio, and
#      whether the two exports are identical.
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]     (DEVICE=cpu EPOCHS=1 ACTORS=6 for a dry run)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu-check}}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-3}
ACTORS=${ACTORS:-60}
mkdir -p "$OUT"
if [ ! -x .venv-gpu/bin/python ]; then
  python3 -m venv .venv-gpu
  .venv-gpu/bin/pip install -q --upgrade pip
  .venv-gpu/bin/pip install -q torch==2.13.0   # the PyPI wheel carries CUDA on Linux
  .venv-gpu/bin/pip install -q -e ".[test]"
fi
. .venv-gpu/bin/activate
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$OUT/device.txt"

python benchmarks/corruptions.py --device "$DEVICE" --size 224 --only image | tee "$OUT/corruptions.txt"
python benchmarks/throughput.py --device "$DEVICE" --batch 32 --steps 8 --compile | tee "$OUT/throughput.txt"

export RAMBENCH_DATA_DIR="$OUT/data" RAMBENCH_CACHE_DIR="$OUT/cache"
python benchmarks/cremad_fixture.py --root "$OUT/cremad-raw" --actors "$ACTORS" --clips 6
rambench prepare cremad --root "$OUT/cremad-raw" | tail -2
start=$(date +%s.%N)
rambench run --dataset cremad --method raml --grid quick --epochs "$EPOCHS" --device "$DEVICE" \
  --out "$OUT/results" --study gpu > "$OUT/study.txt" 2> "$OUT/study.log"
end=$(date +%s.%N)
python - "$OUT" "$start" "$end" "$EPOCHS" <<'PY'
import json, re, sys
from pathlib import Path
out, start, end, epochs = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
text = (out / "throughput.txt").read_text()
rates = {m.group(1): float(m.group(3)) for m in re.finditer(r"^(training|evaluation)\s+([\d.]+)\s+([\d.]+)", text, re.M)}
records = [json.loads(p.read_text()) for p in (out / "results/gpu/records").glob("*.json")]
n_test = records[0]["n"]
training = records[0]["provenance"]["training"]
from rambench.datasets import datasets
n_train = len(datasets.get("cremad")().split("train"))
n_val = len(datasets.get("cremad")().split("val"))
compute = epochs * (n_train / rates["training"] + n_val / rates["evaluation"]) + len(records) * n_test / rates["evaluation"]
wall = end - start
print(f"| CREMA-D-shaped study ({len(records)} cells, {n_train} training clips, {epochs} epochs) | wall {wall:.0f} s | model compute alone {compute:.0f} s | ratio {wall / compute:.2f} (target <= 1.5) |")
PY

for reuse in 1 0; do  # 4. the evaluation alone, feature reuse on and off
  study="reuse$reuse"
  rm -rf "$OUT/results/$study" && mkdir -p "$OUT/results/$study"
  cp -r "$OUT/results/gpu/checkpoints" "$OUT/results/$study/"
  begin=$(date +%s.%N)
  RAMBENCH_FEATURE_REUSE=$reuse rambench run --dataset cremad --method raml --grid quick \
    --epochs "$EPOCHS" --device "$DEVICE" --out "$OUT/results" --study "$study" \
    --cache-dir "$OUT/cache-$study" > /dev/null 2> "$OUT/$study.log"
  echo "$begin $(date +%s.%N)" > "$OUT/$study.seconds"
  rambench export --study "$study" --out "$OUT/results" --to "$OUT/$study.csv" > /dev/null
done
python - "$OUT" <<'PY'
import csv, sys
from pathlib import Path
out = Path(sys.argv[1])
seconds = {r: (lambda a, b: float(b) - float(a))(*(out / f"reuse{r}.seconds").read_text().split())
           for r in (0, 1)}
rows = {r: [{k: v for k, v in row.items() if k != "study"}
            for row in csv.DictReader(open(out / f"reuse{r}.csv"))] for r in (0, 1)}
print(f"| evaluation of the study, feature reuse off / on | {seconds[0]:.0f} s / {seconds[1]:.0f} s | "
      f"ratio {seconds[0] / seconds[1]:.2f} | identical exports: {rows[0] == rows[1]} |")
PY
