"""Are the severity ladders graded on this data? Train (or reuse) each modality's unimodal
reference model, evaluate it on every corruption of that modality at severities 1-5, and flag
ladders that do not measure robustness:

* ``reference at chance``: the reference model's clean accuracy is within seed noise of
  chance, so no ladder of its modality says anything (train it longer);
* ``collapses at s1``: severity 1 already loses more than half of the clean-to-chance gap;
* ``flat``: severity 5 loses less than a tenth of that gap;
* ``not monotone``: accuracy rises from one severity to the next by more than seed noise
  (two binomial standard errors of the test accuracy).

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
from rambench.schema import Clean, Corrupt
from rambench.study import Study, parse

COLLAPSE = 0.5  # fraction of the clean-to-chance gap lost at severity 1
FLAT = 0.1  # fraction of that gap lost at severity 5


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
        for s, (a, b) in enumerate(zip(self.accuracy, self.accuracy[1:], strict=False), 1):
            noise = 2 * math.sqrt(max(a * (1 - a), 1e-4) / max(self.n, 1))
            if b > a + noise:
                self.flags.append(f"not monotone (s{s} {a:.1%} < s{s + 1} {b:.1%})")
        return self


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
    evaluated on `split` (the validation split by default: the test split tunes nothing)."""
    return parse({"split": split, "conditions": {"clean": True,
                                 "corruptions": {modality: registry.names(kind)},
                                 "severities": list(SEVERITIES)}},
                 f"calibration of {modality}", "calibrate")


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
    for m in chosen:
        method = reference_method(ds, m)
        kind = ds.modalities[m].kind
        results = benchmark(method, dataset, ladder_grid(m, kind, split), seeds, out, study,
                            epochs=epochs, device=device, progress=progress,
                            severity_scale=severity_scale)
        clean = _mean([r for r in results.records if isinstance(r.condition, Clean)])
        for name in registry.names(kind):
            cells = [r for r in results.records if isinstance(r.condition, Corrupt)
                     and r.condition.test_modality == m and r.condition.corruption == name]
            by_severity = [_mean([r for r in cells if r.condition.severity == s])
                           for s in SEVERITIES]
            ladders.append(Ladder(
                m, name, method, clean, by_severity, 1 / ds.num_classes,
                cells[0].n if cells else 0,
                cells[0].condition.severity_scale if cells else None).check())
    return ladders


def _mean(records) -> float:
    values = [r.metrics["accuracy"] for r in records]
    return sum(values) / len(values) if values else float("nan")


def render(ladders: list[Ladder]) -> str:
    """A Markdown table: one row per ladder, accuracy in %, flags last."""
    lines = ["| modality | corruption | clean | s1 | s2 | s3 | s4 | s5 | flags |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for ladder in ladders:
        values = " | ".join(f"{a:.1%}"[:-1] for a in [ladder.clean, *ladder.accuracy])
        lines.append(f"| {ladder.modality} | {ladder.corruption} | {values} | "
                     f"{'; '.join(ladder.flags) or 'ok'} |")
    return "\n".join(lines)
