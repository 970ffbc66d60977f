"""Are the severity ladders graded on this data? Train (or reuse) each modality's unimodal
reference model, evaluate it on every corruption of that modality at severities 1-5, and flag
ladders that do not measure robustness:

* ``reference at chance``: the reference model's clean accuracy is within seed noise of
  chance, so no ladder of its modality says anything (train it longer);
* ``collapses at s1``: severity 1 already loses more than half of the clean-to-chance gap;
* ``flat``: severity 5 loses less than a tenth of that gap;
* ``not monotone``: accuracy rises from one severity to the next by more than seed noise
  (two binomial standard errors of the test accuracy). A ladder published that way (the
  constants of a paper's generator, kept for fidelity: `PUBLISHED_NON_MONOTONE`) is
  reported as ``published, non-monotone`` instead, not as a failure.

Besides each modality's corruptions (and, for audio, a lost time segment at severities
1-5), the multimodal reference (`late_fusion`) is checked on every audio-visual event and on
the missing rates 0.1, 0.3, 0.5, 0.7, 0.9 (a ladder of five steps like the severities).

The results are an ordinary study (default name ``calibration``), so a second call reuses
them and `rambench table --study calibration` shows them too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corruptions import registry
from corruptions.registry import SEVERITIES
from rambench.errors import UsageError
from rambench.schema import AVEvent, Clean, Corrupt, RandomMissing, SegmentLoss
from rambench.study import Study, parse

COLLAPSE = 0.5  # fraction of the clean-to-chance gap lost at severity 1
FLAT = 0.1  # fraction of that gap lost at severity 5
MISSING_RATES = (0.1, 0.3, 0.5, 0.7, 0.9)  # the missing-rate ladder's five steps
MULTIMODAL_REFERENCE = "late_fusion"
SEGMENT = "segment_loss"  # the ladder of a lost time segment
RANDOM_MISSING = "missing_rate"  # the ladder of random missingness
# ladders whose published constants are not monotone on small images, kept for fidelity
PUBLISHED_NON_MONOTONE = {
    "spatter": "CIFAR-10-C's table: water drops at s1-3 (s3 with three times the spread of "
               "s4), mud at s4-5",
    "avrb_gaussian_inverted": "AVRobustBench's released audio ladder: SNR = the severity in "
                              "dB, the noisiest at s1",
}


@dataclass
class Ladder:
    """One corruption's accuracy on its modality's unimodal reference, clean and s1-s5."""

    modality: str
    corruption: str
    method: str
    clean: float
    accuracy: list[float]  # severities 1..5
    chance: float
    n: int
    severity_scale: str | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def at_chance(self) -> bool:
        """The reference model is no better than chance beyond seed noise (two binomial
        standard errors): its ladder measures nothing."""
        noise = 2 * math.sqrt(self.chance * (1 - self.chance) / max(self.n, 1))
        return not self.clean - self.chance > noise

    def check(self) -> Ladder:
        gap = self.clean - self.chance
        if self.at_chance:
            self.flags = [f"reference at chance (clean {self.clean:.1%}, chance "
                          f"{self.chance:.1%})"]
            return self
        self.flags = []
        if gap > 0 and self.clean - self.accuracy[0] > COLLAPSE * gap:
            self.flags.append("collapses at s1")
        if gap > 0 and self.clean - self.accuracy[-1] < FLAT * gap:
            self.flags.append("flat")
        published = PUBLISHED_NON_MONOTONE.get(self.corruption)
        for s, (a, b) in enumerate(zip(self.accuracy, self.accuracy[1:], strict=False), 1):
            noise = 2 * math.sqrt(max(a * (1 - a), 1e-4) / max(self.n, 1))
            if b > a + noise:
                self.flags.append(("published, non-monotone" if published else "not monotone")
                                  + f" (s{s} {a:.1%} < s{s + 1} {b:.1%})")
        return self

    @property
    def failed(self) -> bool:
        """A flag other than a published non-monotone ladder."""
        return any(not flag.startswith("published") for flag in self.flags)


def reference_method(dataset, modality: str) -> str:
    """The registered unimodal reference that reads only `modality`."""
    from rambench.methods import methods

    for name in methods.names():
        cls = methods.get(name)
        if getattr(cls, "modality", None) == modality and cls.family == "vanilla":
            return name
    raise UsageError(f"no unimodal reference method for modality {modality!r} of "
                     f"{dataset.name!r} (methods with `modality = {modality!r}`)")


def ladder_grid(modality: str, kind: str, split: str = "val") -> Study:
    """Clean and every corruption of `kind` (the held-out ones too) on `modality`, s1-s5,
    and for audio a lost time segment, evaluated on `split` (the validation split by
    default: the test split tunes nothing)."""
    conditions = {"clean": True, "corruptions": {modality: registry.names(kind)},
                  "severities": list(SEVERITIES)}
    if kind == "audio":
        conditions["missing_segments"] = {"modalities": [modality]}
    return parse({"split": split, "conditions": conditions}, f"calibration of {modality}",
                 "calibrate")


def multimodal_grid(split: str = "val") -> Study:
    """Clean, every audio-visual event at s1-s5 and the missing-rate ladder."""
    return parse({"split": split, "conditions": {
        "clean": True, "av": {"events": "all"}, "missing_rates": list(MISSING_RATES)}},
        "calibration of the events and missing rates", "calibrate")


def calibrate(dataset: str = "avdigits", modalities: Sequence[str] | None = None,
              seeds: Sequence[int] = (0,), epochs: int | None = None,
              severity_scale: str | None = None, out: str | Path = "results",
              study: str = "calibration", device: str = "auto",
              progress: bool = False, split: str = "val") -> list[Ladder]:
    """The severity ladder of every corruption of each chosen modality (default: all), on
    `split` (default the validation split, so that nothing is chosen on the test split)."""
    from rambench.api import benchmark
    from rambench.datasets import datasets

    ds = datasets.get(dataset)()
    chosen = list(modalities or ds.modalities)
    for m in chosen:
        if m not in ds.modalities:
            raise UsageError(f"--modality: unknown modality {m!r} of {dataset!r}; valid: "
                             f"{', '.join(ds.modalities)}")
    ladders: list[Ladder] = []
    chance = 1 / ds.num_classes

    def ladder(modality: str, name: str, method: str, clean: float, steps: list) -> Ladder:
        """The ladder of the cells of each step (one list of records per step)."""
        first = next((cells[0] for cells in steps if cells), None)
        return Ladder(modality, name, method, clean, [_mean(cells) for cells in steps],
                      chance, first.n if first else 0,
                      getattr(first.condition, "severity_scale", None) if first else None
                      ).check()

    def run(method: str, grid: Study):
        results = benchmark(method, dataset, grid, seeds, out, study, epochs=epochs,
                            device=device, progress=progress, severity_scale=severity_scale)
        clean = _mean([r for r in results.records if isinstance(r.condition, Clean)])
        return results.records, clean

    for m in chosen:
        method = reference_method(ds, m)
        kind = ds.modalities[m].kind
        records, clean = run(method, ladder_grid(m, kind, split))
        for name in registry.names(kind):
            cells = [r for r in records if isinstance(r.condition, Corrupt)
                     and r.condition.test_modality == m and r.condition.corruption == name]
            ladders.append(ladder(m, name, method, clean, [
                [r for r in cells if r.condition.severity == s] for s in SEVERITIES]))
        if kind == "audio":
            ladders.append(ladder(m, SEGMENT, method, clean, [
                [r for r in records if isinstance(r.condition, SegmentLoss)
                 and r.condition.severity == s] for s in SEVERITIES]))
    if modalities is None and {"image", "audio"} <= {s.kind for s in ds.modalities.values()}:
        records, clean = run(MULTIMODAL_REFERENCE, multimodal_grid(split))
        pair = "+".join(next(r.condition.modalities for r in records
                             if isinstance(r.condition, AVEvent)))
        for name in registry.names("av"):
            ladders.append(ladder(pair, name, MULTIMODAL_REFERENCE, clean, [
                [r for r in records if isinstance(r.condition, AVEvent)
                 and r.condition.event == name and r.condition.severity == s]
                for s in SEVERITIES]))
        ladders.append(ladder("all", RANDOM_MISSING, MULTIMODAL_REFERENCE, clean, [
            [r for r in records if isinstance(r.condition, RandomMissing)
             and r.condition.missing_rate == rate] for rate in MISSING_RATES]))
    return ladders


def _mean(records) -> float:
    values = [r.metrics["accuracy"] for r in records]
    return sum(values) / len(values) if values else float("nan")


def render(ladders: list[Ladder]) -> str:
    """A Markdown table: one row per ladder, accuracy in %, flags last (the missing-rate
    ladder's s1-s5 are the rates 0.1, 0.3, 0.5, 0.7, 0.9)."""
    lines = ["| modality | corruption | clean | s1 | s2 | s3 | s4 | s5 | flags |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for ladder in ladders:
        values = " | ".join(f"{a:.1%}"[:-1] for a in [ladder.clean, *ladder.accuracy])
        lines.append(f"| {ladder.modality} | {ladder.corruption} | {values} | "
                     f"{'; '.join(ladder.flags) or 'ok'} |")
    return "\n".join(lines)
