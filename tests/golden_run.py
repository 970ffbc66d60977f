"""The golden run: a fixed tiny training and evaluation, and every corruption at every
severity on a few fixed samples, whose outputs are checksummed in `tests/golden/harness.json`.

The harness (training loop, prediction, batching, encoders, fusion modules, test inputs)
is identified in every job key by `rambench.identity.HARNESS_VERSION`, not by a hash of
its source, so a refactor keeps stored results current. This run is what guards that
number: when the harness behaves differently, these outputs change, `tests/test_golden.py`
fails, and the fix is to bump HARNESS_VERSION (stored results become stale, as they must)
and record again:

    python -m tests.golden_run --record

The corruptions' code is identified by a hash of its definitions
(`rambench.identity.corruption_code_hash`, per kind and backend). A refactor of it that keeps
every output here may declare its new hash equivalent to the recorded one
(`rambench.identity.CODE_EQUIVALENTS`), and stored results stay current; the test checks
that an equivalent hash computes the recorded outputs.

Floating-point results depend on the numerics environment (torch version, the CPU's
vector instructions, threads), so the checksums are kept per environment; an environment
with no entry is reported as such by the test rather than compared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN_FILE = Path(__file__).resolve().parent / "golden" / "harness.json"

# Two methods (the plainest and RAML, which uses the encoders' maps and a transformer),
# 2 epochs on the first 48 samples of every split, one seed; each kind of condition once.
GRID = {
    "description": "the harness's golden run",
    "seeds": [0],
    "epochs": 3,
    "conditions": {
        "clean": True,
        "corruptions": {"visual": ["gaussian_noise"], "audio": ["gaussian_noise"]},
        "severities": [3],
        "av": {"events": ["wind"], "severities": [3]},
        "missing_modalities": "all",
        "missing_rates": [0.5],
        "mixed": {"corruptions": {"visual": "gaussian_noise", "audio": "gaussian_noise"},
                  "severities": [3], "probability": 0.5},
    },
}
METHODS = ("late_fusion", "raml")
LIMIT = 96


def environment() -> str:
    """The numerics environment the checksums hold for (the golden run uses one thread)."""
    import torch

    from corruptions.backends import single_threaded_torch
    from rambench.provenance import numerics

    with single_threaded_torch():
        return numerics(torch.device("cpu"))


def _digest(values: Any) -> str:
    array = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def run(out: Path) -> dict[str, str]:
    """Train and evaluate the golden study under `out`; checksums of what it computed:
    per training job the loss trace and validation accuracy per epoch, per cell the
    predictions and the per-sample class probabilities."""
    import yaml

    from corruptions.backends import single_threaded_torch
    from rambench.api import benchmark

    grid_file = out / "golden.yaml"
    out.mkdir(parents=True, exist_ok=True)
    grid_file.write_text(yaml.safe_dump(GRID))
    with single_threaded_torch():
        results = benchmark(list(METHODS), grid=str(grid_file), out=out / "results",
                            study="golden", device="cpu", use_cache=False, limit=LIMIT)
    sums: dict[str, str] = {}
    for record in sorted(results.records, key=lambda r: (r.method.label, r.condition.label)):
        label = record.method.label
        history = record.provenance["training"]["history"]
        trace = [[row[k] for k in sorted(row) if k not in ("seconds", "epoch")]
                 for row in history]
        sums.setdefault(f"{label} training", _digest(trace))
        probabilities = record.predictions.probabilities
        sums[f"{label} {record.condition.label} predictions"] = _digest(
            record.predictions.predicted)
        sums[f"{label} {record.condition.label} probabilities"] = _digest(probabilities)
    return sums


CORRUPTION_SAMPLES = 3  # the first test samples of avdigits
BACKENDS = ("reference", "torch")


def corruption_run() -> dict[str, dict[str, Any]]:
    """Per (kind, backend): the code's hash and a checksum of every corruption's output
    at every severity on the first `CORRUPTION_SAMPLES` test samples of avdigits, with the
    seeds a study draws."""
    from corruptions import av_events, registry
    from corruptions.backends import single_threaded_torch
    from rambench.datasets import datasets
    from rambench.datasets.limited import Limited
    from rambench.identity import corruption_code_hash
    from rambench.schema import AVEvent, Corrupt
    from rambench.test_inputs import build_test_inputs

    dataset = Limited(datasets.get("avdigits")(), CORRUPTION_SAMPLES)
    split = dataset.split("test")
    kinds = {spec.kind: m for m, spec in dataset.modalities.items()}
    image_m, audio_m = kinds["image"], kinds["audio"]
    out: dict[str, dict[str, Any]] = {}
    for backend in BACKENDS:
        conditions = {"image": [Corrupt(image_m, n, s, "cifar")
                                for n in registry.names("image", protocols=True)
                                for s in registry.SEVERITIES],
                      "audio": [Corrupt(audio_m, n, s) for n in registry.names("audio", True)
                                for s in registry.SEVERITIES],
                      "av": [AVEvent(e, s, (image_m, audio_m)) for e in av_events.EVENTS
                             for s in registry.SEVERITIES]}
        for kind, listed in conditions.items():
            outputs = {}
            for condition in listed:
                with single_threaded_torch():
                    inputs = build_test_inputs(dataset, split, condition, 0, "5eed" * 5,
                                               backend)
                arrays = [inputs.inputs[m] for m in condition.tested_modalities()]
                outputs[condition.label] = hashlib.sha256(b"".join(
                    np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()[:16]
            out[f"{kind}/{backend}"] = {"code": corruption_code_hash(kind, backend),
                                        "outputs": outputs}
    return out


def load() -> dict[str, Any]:
    return json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.exists() else {"runs": {}}


def record(sums: dict[str, str], corruptions: dict[str, dict[str, Any]]) -> None:
    """Store `sums` and `corruptions` as the golden outputs of this environment at the
    current HARNESS_VERSION and corruption code (entries of other versions are dropped)."""
    from rambench.identity import HARNESS_VERSION

    golden = load()
    runs = golden.get("runs", {}) if golden.get("harness_version") == HARNESS_VERSION else {}
    runs[environment()] = sums
    stored = golden.get("corruptions", {})
    for env in list(stored):  # another environment's outputs of other code are dropped
        stored[env] = {k: v for k, v in stored[env].items()
                       if corruptions.get(k, {}).get("code") == v["code"]}
    stored[environment()] = corruptions
    GOLDEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN_FILE.write_text(json.dumps({"harness_version": HARNESS_VERSION, "runs": runs,
                                       "corruptions": stored},
                                      indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true",
                        help="store this environment's outputs as the golden ones")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sums = run(Path(tmp))
    corruptions = corruption_run()
    if args.record:
        record(sums, corruptions)
        print(f"recorded {len(sums)} training and evaluation checksums and "
              f"{sum(len(v['outputs']) for v in corruptions.values())} corruption checksums "
              f"for {environment()} in {GOLDEN_FILE}")
        return 0
    print(json.dumps({"runs": sums, "corruptions": corruptions}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
