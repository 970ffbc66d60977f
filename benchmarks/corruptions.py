"""Reference vs torch corruption backends: time per sample for every corruption.

    python benchmarks/corruptions.py                 # 224x224 images, 1 s audio, CPU
    python benchmarks/corruptions.py --load 2        # the same while 2 busy processes run
    python benchmarks/corruptions.py --device cuda   # the torch backend on a GPU

Both backends corrupt the same batch (scikit-image's bundled photos at --size, speech
clips from the embedded dataset) with the same seeds; each is warmed up once on one
sample first (caches such as frost photos or filter responses are built outside the
timing), both with freed memory kept in the process (`corruptions.allocator`, which the
torch backend sets on the CPU), then timed in turns, best of `--repeats`. Prints
per-corruption milliseconds per sample, the speed-up (marked `<1` where torch is slower)
and the spread of each backend's repeats (slowest / fastest), then per modality the
geometric mean of the speed-ups (every corruption counts the same) and the ratio of the
summed times (dominated by the slowest reference corruptions). Both backends are measured
in the same run, in turns, so the ratios hold on a noisy shared machine. `--load N` starts
N CPU-bound processes (NumPy matrix products on one thread each) for the duration: the
speed-up of a backend on a machine that other work keeps busy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file's name would
# shadow the `corruptions` package it measures.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
import skimage.transform  # noqa: E402
import torch  # noqa: E402

from corruptions import allocator, backends, registry  # noqa: E402
from rambench.datasets import datasets  # noqa: E402


def photos(size: int, n: int) -> np.ndarray:
    images = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(),
              skimage.data.rocket()]
    resized = [(skimage.transform.resize(im, (size, size), anti_aliasing=True) * 255)
               .round().astype(np.uint8) for im in images]
    return np.stack([resized[i % len(resized)] for i in range(n)])


def speech(seconds: float, n: int) -> np.ndarray:
    clips = datasets.get("avdigits")().split("test").inputs["audio"]
    reps = int(np.ceil(seconds * 16000 / clips.shape[1]))
    return np.stack([np.tile(clips[i], reps)[: int(seconds * 16000)] for i in range(n)])


def timed(fns: dict, sync, repeats: int) -> dict[str, list[float]]:
    """`repeats` wall times of each function, the functions taking turns, so that a slow
    spell of a shared machine hits both; the best of them is the least disturbed."""
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[key].append(time.perf_counter() - start)
    return times


def bench(kind: str, data: np.ndarray, severity: int, device: str, names: list[str],
          repeats: int):
    sample_rate = 16000 if kind == "audio" else None
    seeds = list(range(len(data)))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = []
    for name in names:
        runs = {}
        for backend in ("reference", "torch"):
            def run(batch=data, s=seeds, b=backend, n=name):
                return backends.corrupt(batch, n, severity, s, b, device, kind=kind,
                                        sample_rate=sample_rate)[0]
            run(data[:1], seeds[:1])  # warm-up: one-time caches, kernels
            runs[backend] = run
        repeated = timed(runs, sync, repeats)
        times = {b: min(t) / len(data) for b, t in repeated.items()}
        spread = {b: max(t) / min(t) for b, t in repeated.items()}
        ratio = times["reference"] / times["torch"]
        rows.append((name, times["reference"], times["torch"]))
        print(f"{kind:5s} {name:18s} {1e3 * times['reference']:9.2f} {1e3 * times['torch']:9.2f}"
              f" {ratio:8.1f}x {'<1' if ratio < 1 else '  '} {spread['reference']:6.2f}"
              f" {spread['torch']:6.2f}", flush=True)
    ref_total = sum(r[1] for r in rows)
    torch_total = sum(r[2] for r in rows)
    geomean = float(np.exp(np.mean([np.log(r[1] / r[2]) for r in rows])))
    slower = [r[0] for r in rows if r[1] < r[2]]
    print(f"{kind:5s} {'GEOMEAN':18s} {'':9s} {'':9s} {geomean:8.1f}x  over {len(rows)} "
          f"corruptions; below 1x: {', '.join(slower) or 'none'}")
    print(f"{kind:5s} {'ALL (sum)':18s} {1e3 * ref_total:9.2f} {1e3 * torch_total:9.2f} "
          f"{ref_total / torch_total:8.1f}x\n", flush=True)
    return geomean, ref_total / torch_total


def _busy() -> None:
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    a = np.random.default_rng(0).random((300, 300))
    while True:
        a = a @ a
        a /= np.abs(a).max()


def competing_load(n: int) -> list:
    """n processes that keep one core busy each until terminated."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_busy, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let them start spinning
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--images", type=int, default=16, help="images per batch")
    parser.add_argument("--clips", type=int, default=16, help="audio clips per batch")
    parser.add_argument("--seconds", type=float, default=1.0, help="audio clip length")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    parser.add_argument("--only", choices=["image", "audio"], default=None)
    parser.add_argument("--load", type=int, default=0,
                        help="CPU-bound processes competing for the cores meanwhile")
    args = parser.parse_args()
    # the torch backend keeps freed memory on the CPU (corruptions.allocator); set it from the
    # start, so that the reference runs under the same allocator
    allocator.keep_freed_memory()
    load = competing_load(args.load)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device "
          f"{args.device}; severity {args.severity}; images {args.images} x {args.size}x"
          f"{args.size}, clips {args.clips} x {args.seconds:g} s; competing processes: "
          f"{args.load}")
    print(f"{'kind':5s} {'corruption':18s} {'ref ms':>9s} {'torch ms':>9s} {'speed-up':>9s}"
          f"    {'ref':>6s} {'torch':>6s}  (spread: slowest / fastest repeat)")
    if args.only in (None, "image"):
        bench("image", photos(args.size, args.images), args.severity, args.device,
              registry.names("image"), args.repeats)
    if args.only in (None, "audio"):
        bench("audio", speech(args.seconds, args.clips), args.severity, args.device,
              registry.names("audio"), args.repeats)
    for p in load:
        p.terminate()


if __name__ == "__main__":
    main()
