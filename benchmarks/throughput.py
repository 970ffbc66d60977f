"""Training and evaluation throughput of RAML through rambench, against a plain PyTorch
loop of the same model on the same data, on CREMA-D-shaped inputs (3 frames of 224x224
RGB + 3 s of 16 kHz audio, ResNet-18 encoders, 6 classes).

    python benchmarks/throughput.py                  # CPU
    python benchmarks/throughput.py --device cuda    # GPU (bf16 autocast in both loops)
    python benchmarks/throughput.py --compile        # also the plain loop compiled

rambench: `rambench.train.train` for one epoch (uint8 frames and float audio from numpy,
batching, device transfer, the optimiser, the validation pass) and `predict` for
evaluation. Plain: one batch built once on the device, then `training_loss` / backward /
step, or the forward pass alone, in a bare loop. Both are measured in the same run, so the
ratio rambench / plain holds on a noisy machine; it is the share of the model's own speed
that the harness keeps (1.0 = no overhead). `--compile` adds the plain training loop with
the method compiled (`rambench.train.compile_method`, as `rambench run
--compile`): its speed after compilation against the eager loop's, and the compile time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# benchmarks/corruptions.py would shadow the `corruptions` package: keep this folder off
# the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rambench.batch import Batch  # noqa: E402
from rambench.datasets import Dataset, Split, datasets  # noqa: E402
from rambench.device import autocast  # noqa: E402
from rambench.evaluate import predict  # noqa: E402
from rambench.methods import methods  # noqa: E402
from rambench.train import TrainConfig, build_method, compile_method, train  # noqa: E402


class CremadShaped(Dataset):
    """Random data with CREMA-D's prepared shapes (no files needed)."""

    name = "cremad-shaped"
    version = "synthetic"
    description = "random frames and audio shaped like prepared CREMA-D"

    def __init__(self, n: int):
        cremad = datasets.get("cremad")
        self.modalities = cremad.modalities  # from its YAML defaults: 3 x 224 x 224, 3 s
        self.class_names = cremad.defaults["classes"]
        rng = np.random.default_rng(0)
        shape_v = (n, *self.modalities["visual"].shape)
        shape_a = (n, *self.modalities["audio"].shape)
        self._split = Split({"visual": rng.integers(0, 256, shape_v, dtype=np.uint8),
                             "audio": rng.uniform(-0.5, 0.5, shape_a).astype(np.float32)},
                            rng.integers(0, len(self.class_names), n))

    def split(self, name: str) -> Split:
        return self._split


def plain_batch(split: Split, device: torch.device) -> Batch:
    visual = torch.from_numpy(split.inputs["visual"]).movedim(-1, -3).float().div(255)
    inputs = {"visual": visual.to(device),
              "audio": torch.from_numpy(split.inputs["audio"]).to(device)}
    n = len(split)
    return Batch(inputs, {m: torch.ones(n, dtype=torch.bool, device=device) for m in inputs},
                 torch.from_numpy(split.y).to(device), torch.arange(n, device=device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8, help="clips per batch")
    parser.add_argument("--steps", type=int, default=4, help="training steps per loop")
    parser.add_argument("--compile", action="store_true",
                        help="also time the plain training loop with torch.compile")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = args.batch * args.steps
    data = CremadShaped(n)
    cfg = TrainConfig(**{**datasets.get("cremad").train_defaults, "epochs": 1,
                         "batch_size": args.batch, "eval_batch_size": args.batch})
    cls = methods.get("raml")
    method = build_method(cls, data, cls.Params(), cfg, seed=0).to(device)
    print(f"RAML, CREMA-D-shaped clips (3 x 224x224 frames + 3 s audio), batch {args.batch}, "
          f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{sum(p.numel() for p in method.parameters()) / 1e6:.1f} M parameters")

    # warm-up (allocator, kernels) for both paths
    batch = plain_batch(Split({m: a[:args.batch] for m, a in data.split("train").inputs.items()},
                              data.split("train").y[:args.batch]), device)
    optimiser = torch.optim.SGD(method.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    method.train()
    with autocast(device):
        method.training_loss(batch)["loss"].backward()
    optimiser.zero_grad(set_to_none=True)

    def plain_steps(steps: int) -> float:
        """Seconds for `steps` training steps on the resident batch."""
        start = time.perf_counter()
        for _ in range(steps):
            method.train()
            with autocast(device):
                loss = method.training_loss(batch)["loss"]
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        sync()
        return time.perf_counter() - start

    plain_train = n / plain_steps(args.steps)

    method.eval()
    start = time.perf_counter()
    with torch.no_grad(), autocast(device):
        for _ in range(args.steps):
            method(batch).argmax(1)
    sync()
    plain_eval = n / (time.perf_counter() - start)

    start = time.perf_counter()
    predict(method, data.split("test"), {"visual": "image", "audio": "audio"}, device,
            args.batch)
    sync()
    harness_eval_s = time.perf_counter() - start
    harness_eval = n / harness_eval_s

    start = time.perf_counter()
    train(method, data, cfg, 0, device, progress=False)  # one epoch + one validation pass
    sync()
    harness_train = n / (time.perf_counter() - start - harness_eval_s)

    print(f"{'':10s} {'rambench':>10s} {'plain':>10s} {'ratio':>7s}   (clips/s)")
    print(f"{'training':10s} {harness_train:10.2f} {plain_train:10.2f} "
          f"{harness_train / plain_train:7.2f}")
    print(f"{'eval':10s} {harness_eval:10.2f} {plain_eval:10.2f} "
          f"{harness_eval / plain_eval:7.2f}")
    if args.compile:
        compile_method(method)
        compile_s = plain_steps(1)  # the first step compiles
        compiled = n / plain_steps(args.steps)
        print(f"plain training compiled: {compiled:.2f} clips/s, {compiled / plain_train:.2f}x "
              f"the eager loop (compiling took {compile_s:.0f} s)")


if __name__ == "__main__":
    main()
