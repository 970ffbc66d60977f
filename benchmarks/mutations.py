"""Mutation check: do the tests catch one-line breakages of the methods' mechanisms?

    python benchmarks/mutations.py                 # every mutation; exit 1 if one survives
    python benchmarks/mutations.py --list          # the mutations and the tests meant to catch them
    python benchmarks/mutations.py --only raml_gate_inverted --only tmc_annealing_epochs_50

Each mutation replaces one exact piece of text (it must occur exactly once) in one file of
a copy of the repository: the files git knows of (tracked, and untracked ones not
ignored, as they are in the working tree now), copied into a temporary folder. pytest then
runs the named tests in that copy,

    python -m pytest -x -q -p no:cacheprovider -o addopts="" -p _mutation_guard TESTS

with the copy as working folder and first on PYTHONPATH. A small plugin (`_mutation_guard`,
written next to the copy) makes that run fail with exit code 97 if any module was imported
from this checkout instead of the copy (the editable install points `rambench` and
`baselines` here), or if the mutated file was never imported. A mutation is *caught* when
its tests fail (pytest exit code 1), *survived* when they pass (0); any other outcome is
an *error* (the tests could not run: a missing node id, an import leak, a collection
error). Before the mutations the same tests run on an unmutated copy and must pass: a
test that fails anyway would "catch" everything.

To add a mutation (e.g. for a new baseline), append a `Mutation` to `MUTATIONS` below: a
unique name, the file, the exact old text (include a neighbouring line if the text occurs
more than once), the new text, and the tests that should catch it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARDS = "tests/test_method_guards.py"
LEAK_EXIT = 97  # the guard plugin's exit code: the copy's code was not the code tested


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: str  # exact text, must occur exactly once in `file`
    new: str
    tests: tuple[str, ...]  # pytest node ids or files, relative to the repository root
    what: str = ""


def guard(*names: str) -> tuple[str, ...]:
    """Node ids of tests in tests/test_method_guards.py."""
    return tuple(f"{GUARDS}::{name}" for name in names)


DEFAULTS_TEST = "test_baseline_defaults_are_the_references"
TENT_STEP = ("tests/test_tta.py::"
             "test_tent_predicts_before_its_step_and_takes_one_adam_step_on_the_affines")

MUTATIONS: list[Mutation] = [
    # ------------------------------------------------------------------ RAML
    Mutation(
        "raml_gate_inverted", "rambench/methods/raml.py",
        "        return conf.shape[1] * conf / conf.sum(dim=1, keepdim=True)",
        "        return conf.shape[1] / conf / (1 / conf).sum(dim=1, keepdim=True)",
        guard("test_gate_of_confident_audio_brings_h_toward_the_audio_only_representation"),
        "gate weights from 1 / c_m: the unsure modality is favoured",
    ),
    Mutation(
        "raml_gate_sign_flipped", "rambench/methods/raml.py",
        "c = F.softmax(self.heads[m](z[m]).detach().float(), dim=1).amax(dim=1)",
        "c = F.softmax(-self.heads[m](z[m]).detach().float(), dim=1).amax(dim=1)",
        guard("test_gate_of_confident_audio_brings_h_toward_the_audio_only_representation"),
        "confidence from the negated head logits",
    ),
    Mutation(
        "raml_gate_pooling_inverted", "rambench/models/fusion.py",
        "weights = gate / gate.sum(dim=1, keepdim=True)",
        "weights = (1 / gate) / (1 / gate).sum(dim=1, keepdim=True)",
        guard("test_gate_of_confident_audio_brings_h_toward_the_audio_only_representation"),
        "the gate-weighted modality average favours the unsure modality",
    ),
    Mutation(
        "raml_gate_bias_sign_flipped", "rambench/models/fusion.py",
        "log_gate = gate.clamp_min(1e-6).log().to(parts[0].dtype)",
        "log_gate = -gate.clamp_min(1e-6).log().to(parts[0].dtype)",
        guard("test_gate_bias_multiplies_attention_to_each_modality_by_its_weight"),
        "attention bias -log w_m: attention moves to the unsure modality",
    ),
    Mutation(
        "raml_gate_bias_removed", "rambench/models/fusion.py",
        "out = self.encoder(torch.cat(parts, dim=1), src_key_padding_mask=bias)",
        "out = self.encoder(torch.cat(parts, dim=1), src_key_padding_mask=None)",
        guard("test_gate_bias_multiplies_attention_to_each_modality_by_its_weight"),
        "the gate only weights the pooling, not the attention",
    ),
    Mutation(
        "raml_consistency_not_stopgrad", "rambench/methods/raml.py",
        'out["consistency"] = F.mse_loss(h_c, h.detach())',
        'out["consistency"] = F.mse_loss(h_c, h)',
        guard("test_consistency_term_does_not_train_the_clean_view"),
        "L_cons also pulls h(clean) toward h(corrupted)",
    ),
    Mutation(
        "raml_gate_confidence_not_detached", "rambench/methods/raml.py",
        "c = F.softmax(self.heads[m](z[m]).detach().float(), dim=1).amax(dim=1)",
        "c = F.softmax(self.heads[m](z[m]).float(), dim=1).amax(dim=1)",
        guard("test_fusion_loss_does_not_train_the_unimodal_heads_through_the_gate"),
        "the fusion loss trains the unimodal heads through the gate",
    ),
    Mutation(
        "raml_corrupted_gate_ignores_missing", "rambench/methods/raml.py",
        "present_c = {m: batch.present[m] & ~missing_c[m].all(dim=1) for m in raw}",
        "present_c = batch.present",
        guard("test_corrupted_view_gate_counts_a_wholly_missing_modality_as_absent"),
        "a modality made wholly missing keeps its confidence in the corrupted view's gate",
    ),
    Mutation(  # the 7th: the gate's confidence source
        "raml_gate_reads_raw_features", "rambench/methods/raml.py",
        "logits, h = self.fusion.fuse(scaled, missing, self.gate_weights(z, present))",
        "logits, h = self.fusion.fuse(scaled, missing, self.gate_weights(z_raw, present))",
        guard("test_gate_reads_the_constrained_features"),
        "the heads read the unconstrained (inflated) feature for the gate",
    ),
    Mutation(  # the norm constraint: caught by the RAML tests already
        "raml_clamp_inverted", "rambench/methods/raml.py",
        "return (self.radius / norms).clamp(max=1.0)",
        "return (self.radius / norms).clamp(min=1.0)",
        ("tests/test_raml.py::test_clamp_leaves_features_inside_the_ball_unchanged",),
        "clamp scales features up to the radius instead of down",
    ),
    # ------------------------------------------------------------------ PDF
    Mutation(
        "pdf_weights_not_detached", "baselines/pdf.py",
        "        with torch.no_grad():\n            belief = co_belief(",
        "        if True:\n            belief = co_belief(",
        guard("test_pdf_fusion_weights_are_detached_in_training_and_at_test_time"),
        "the fused CE trains the TCP predictors through the fusion weights",
    ),
    Mutation(
        "pdf_tcp_target_not_detached", "baselines/pdf.py",
        "            with torch.no_grad():\n                target = ",
        "            if True:\n                target = ",
        guard("test_pdf_tcp_regression_trains_only_the_predictors"),
        "the TCP regression also moves its target p_m[y]",
    ),
    Mutation(
        "pdf_tcp_input_not_detached", "baselines/pdf.py",
        "self.tcp[m](z[m].detach())",
        "self.tcp[m](z[m])",
        guard("test_pdf_tcp_regression_trains_only_the_predictors"),
        "the TCP regression trains the encoders",
    ),
    # ------------------------------------------------------------------ QMF
    Mutation(
        "qmf_weights_detached_in_training", "baselines/qmf.py",
        "fused, _ = fuse(logits, conf, batch.present, p.detach_weights)",
        "fused, _ = fuse(logits, conf, batch.present, True)",
        guard("test_qmf_fused_loss_trains_the_confidences_unless_detach_weights"),
        "stop-gradient on the fusion weights (the reference has none)",
    ),
    Mutation(
        "qmf_ranking_confidence_detached", "baselines/qmf.py",
        "conf[m], self.loss_sum[i, batch.index], self.loss_sum[i], keep)",
        "conf[m].detach(), self.loss_sum[i, batch.index], self.loss_sum[i], keep)",
        guard("test_qmf_ranking_trains_the_confidences_and_the_history_carries_no_gradient"),
        "the ranking regulariser trains nothing",
    ),
    Mutation(
        "qmf_detach_weights_default_true", "baselines/qmf.py",
        "detach_weights: bool = False",
        "detach_weights: bool = True",
        guard(f"{DEFAULTS_TEST}[QMFParams]"),
    ),
    Mutation(
        "qmf_lam_default_1", "baselines/qmf.py",
        "lam: float = param(0.1, ge=0)",
        "lam: float = param(1.0, ge=0)",
        guard(f"{DEFAULTS_TEST}[QMFParams]"),
    ),
    # ------------------------------------------------------------------ TMC
    Mutation(
        "tmc_annealing_epochs_50", "baselines/tmc.py",
        "annealing_epochs: int = 10",
        "annealing_epochs: int = 50",
        guard(f"{DEFAULTS_TEST}[TMCParams]"),
        "the TMC ICLR code's lambda_epochs instead of the pinned RGB-D code's 10",
    ),
    # ------------------------------------------------------------------ OGM-GE, AugMix
    Mutation(
        "ogm_ge_alpha_0.1", "baselines/ogm_ge.py",
        "alpha: float = param(0.8, ge=0)",
        "alpha: float = param(0.1, ge=0)",
        guard(f"{DEFAULTS_TEST}[OGMGEParams]"),
    ),
    Mutation(
        "ogm_ge_modulation_ends_60", "baselines/ogm_ge.py",
        "modulation_ends: int = param(50, ge=0)",
        "modulation_ends: int = param(60, ge=0)",
        guard(f"{DEFAULTS_TEST}[OGMGEParams]"),
    ),
    Mutation(
        "augmix_lam_10", "baselines/augmix.py",
        "lam: float = 12.0",
        "lam: float = 10.0",
        guard(f"{DEFAULTS_TEST}[AugMixParams]"),
    ),
    # ------------------------------------------------------------------ ETMC
    Mutation(
        "etmc_pseudo_view_dropped", "baselines/etmc.py",
        "return combine_evidence([views[m] for m in self.ctx.modalities] + [pseudo])",
        "return combine_evidence([views[m] for m in self.ctx.modalities])",
        ("tests/test_etmc.py::test_etmc_evidence_combination_and_loss_match_the_reference",
         "tests/test_etmc.py::test_pseudo_view_is_vacuous_unless_every_modality_is_present"),
        "the fused opinion is TMC's: the pseudo view is trained but never combined",
    ),
    Mutation(
        "etmc_annealing_epochs_50", "baselines/etmc.py",
        "annealing_epochs: int = 10",
        "annealing_epochs: int = 50",
        ("tests/test_etmc.py::test_defaults_registration_and_annealing_follow_the_reference",
         *guard(f"{DEFAULTS_TEST}[ETMCParams]")),
        "the TMC ICLR code's lambda_epochs instead of train_ETMC_nyud2.py's 10",
    ),
    # ------------------------------------------------------------------ MD
    Mutation(
        "md_confidence_weighting_inverted", "baselines/md.py",
        "{m: hidden[m] * confidence[m].unsqueeze(1) for m in self.ctx.modalities}, batch)",
        "{m: hidden[m] / confidence[m].unsqueeze(1) for m in self.ctx.modalities}, batch)",
        ("tests/test_md.py::test_md_outputs_and_every_loss_term_match_the_reference",),
        "the fused input h_m / t_m: the less confident modality weighs more",
    ),
    Mutation(
        "md_gate_sparsity_term_dropped", "baselines/md.py",
        "loss = (ce + p.sparsity_weight * sparsity + p.confidence_weight * confidence",
        "loss = (ce + p.confidence_weight * confidence",
        ("tests/test_md.py::test_md_outputs_and_every_loss_term_match_the_reference",
         "tests/test_md.py::test_md_loss_weights_scale_their_terms"),
        "the L1 term mean(w_m) on the informativeness gates is left out of the loss",
    ),
    Mutation(
        # dropping the confidence mask alone is behaviour-neutral (the next statement zeroes
        # the absent modality's block t_m h_m anyway; only MDOutputs.confidence would change),
        # so the mutation drops both: the absent modality is weighted by its own confidence
        "md_absent_confidence_not_masked", "baselines/md.py",
        "        confidence = self.mask_absent(confidence, batch)  # absent: weight 0\n"
        "        weighted = self.mask_absent(\n"
        "            {m: hidden[m] * confidence[m].unsqueeze(1) for m in self.ctx.modalities}, "
        "batch)",
        "        weighted = (\n"
        "            {m: hidden[m] * confidence[m].unsqueeze(1) for m in self.ctx.modalities})",
        ("tests/test_md.py::test_md_absent_modality_does_not_influence_the_prediction",
         "tests/test_md.py::test_md_absent_modality_terms_average_over_present_samples"),
        "an absent modality keeps its confidence t_m and enters the fused prediction",
    ),
    Mutation(
        "md_absent_block_not_masked", "baselines/md.py",
        "        weighted = self.mask_absent(\n"
        "            {m: hidden[m] * confidence[m].unsqueeze(1) for m in self.ctx.modalities}, "
        "batch)",
        "        weighted = (\n"
        "            {m: hidden[m] * confidence[m].unsqueeze(1) for m in self.ctx.modalities})",
        ("tests/test_md.py::test_md_absent_modality_does_not_influence_the_prediction",),
        "the block t_m h_m of an absent modality is 0 * h_m: NaN for a non-finite absent input",
    ),
    # ------------------------------------------------------------------ Tent
    Mutation(
        "tent_prediction_after_step", "baselines/tent.py",
        "        return logits.detach()",
        "        return self.method(batch).detach()",
        (TENT_STEP,),
        "the batch's prediction is a forward after the step, not the one the step was taken on",
    ),
    Mutation(
        # `layer.train()` -> `layer.eval()` alone is behaviour-neutral: with running_mean and
        # running_var None a BatchNorm normalises with the batch's statistics in eval mode too
        # (tent.py:106, "force use of batch stats in train and eval modes"); so the mutation
        # also keeps the running statistics
        "tent_running_statistics", "baselines/tent.py",
        "            layer.train()  # batch statistics, in train and eval mode alike\n"
        "            layer.track_running_stats = False\n"
        "            layer.running_mean = None\n"
        "            layer.running_var = None\n",
        "            layer.eval()  # the running statistics of training\n",
        (TENT_STEP,),
        "the BN layers stay in eval mode with their running statistics",
    ),
    Mutation(
        "tent_non_affine_parameter_adapted", "baselines/tent.py",
        "        method.requires_grad_(False)\n"
        "        self.parameters: list[nn.Parameter] = []\n",
        "        self.parameters: list[nn.Parameter] = [p for p in method.parameters()\n"
        "                                               if p.dim() > 1]\n",
        (TENT_STEP,),
        "the model is not frozen and its weight matrices join the BN affines in the optimiser",
    ),
    Mutation(
        "tent_lr_default_1e-4", "baselines/tent.py",
        "lr: float = 1e-3",
        "lr: float = 1e-4",
        guard(f"{DEFAULTS_TEST}[TentParams]"),
    ),
    Mutation(
        "md_dropout_default_0", "baselines/md.py",
        "dropout: float = param(0.5, ge=0)",
        "dropout: float = param(0.0, ge=0)",
        guard(f"{DEFAULTS_TEST}[MDParams]"),
    ),
    # ------------------------------------------------------------------ the TTA harness
    Mutation(
        "tta_labels_passed_to_the_adaptation", "rambench/evaluate.py",
        "logits = adapter.adapt(dataclasses.replace(batch, y=None))",
        "logits = adapter.adapt(batch)",
        ("tests/test_tta.py::"
         "test_labels_never_reach_an_adaptation_and_the_stream_keeps_its_order",),
        "the adaptation sees the test labels",
    ),
    Mutation(
        "tta_trained_model_adapted_in_place", "rambench/evaluate.py",
        "adapter = adaptation.cls(copy.deepcopy(method), adaptation.params)",
        "adapter = adaptation.cls(method, adaptation.params)",
        ("tests/test_tta.py::test_every_cell_starts_from_the_trained_model",),
        "the trained model itself is adapted: each cell starts where the previous one ended",
    ),
    Mutation(
        "pdf_selected_by_the_calibrated_fusion", "baselines/pdf.py",
        'select_by: Literal["training_fusion", "calibrated"] = "training_fusion"',
        'select_by: Literal["training_fusion", "calibrated"] = "calibrated"',
        ("tests/test_method_guards.py::test_baseline_defaults_are_the_references[PDFParams]",),
        "PDF picks its best epoch by the calibrated fusion (the reference validates 'pdf_train')",
    ),
    Mutation(
        "selection_by_forward", "rambench/evaluate.py",
        "                            logits_of=method.validation_logits)",
        "                            logits_of=None)",
        ("tests/test_method_api.py::"
         "test_the_best_epoch_is_chosen_by_validation_logits_and_the_test_by_forward",),
        "training selects by forward, ignoring a method's validation_logits",
    ),
    Mutation(
        "reused_feature_shared_with_the_caller", "rambench/feature_cache.py",
        "return hit.clone()", "return hit",
        ("tests/test_feature_cache.py::"
         "test_a_clean_modality_is_encoded_once_and_reused_bit_for_bit",),
        "a reused feature is the stored tensor itself: a caller's in-place change corrupts it",
    ),
    Mutation(
        "reused_features_of_a_corrupted_input", "rambench/feature_cache.py",
        "self._offered = {m: ((self._id(source), rows), inputs[m]) for m, source in clean.items()}",
        "self._offered = {m: ((rows,), inputs[m]) for m in inputs}",
        ("tests/test_feature_cache.py::"
         "test_a_study_exports_the_same_values_with_and_without_reuse",),
        "every input is offered under its rows alone: a corrupted batch gets the clean features",
    ),
]


# ---------------------------------------------------------------------- the guard plugin

GUARD_PLUGIN = '''
"""Loaded by benchmarks/mutations.py into pytest runs in a copy of the repository: fails
the run if code was imported from the original checkout, or the mutated file never was."""
import os
import sys

import pytest

COPY = os.path.realpath(os.environ["MUTATION_COPY"])
ORIGINAL = os.path.realpath(os.environ["MUTATION_ORIGINAL"])
PREFIX = os.path.realpath(sys.prefix)  # the virtual environment may live in the checkout
MUTATED = os.environ.get("MUTATION_FILE", "")


def problems(final):
    found, leaked, loaded = [], [], set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.realpath(path)
        loaded.add(path)
        if path.startswith(ORIGINAL + os.sep) and not path.startswith(PREFIX + os.sep):
            leaked.append(f"{name} ({path})")
    if leaked:
        more = f" and {len(leaked) - 3} more" if len(leaked) > 3 else ""
        found.append("imported from the original checkout: " + ", ".join(leaked[:3]) + more)
    for package in ("rambench", "baselines"):
        module = sys.modules.get(package)
        path = os.path.realpath(getattr(module, "__file__", None) or "?")
        if final and not path.startswith(COPY + os.sep):
            found.append(f"{package} is not the copy's: {path}")
    if final and MUTATED and os.path.realpath(os.path.join(COPY, MUTATED)) not in loaded:
        found.append(f"the mutated file {MUTATED} was never imported")
    return found


def pytest_collection_finish(session):
    found = problems(final=False)
    if found:
        pytest.exit("mutation guard: " + "; ".join(found), returncode=LEAK_EXIT)


def pytest_sessionfinish(session, exitstatus):
    found = problems(final=True)
    if found:
        sys.stderr.write("mutation guard: " + "; ".join(found) + "\\n")
        session.exitstatus = LEAK_EXIT
'''.replace("LEAK_EXIT", str(LEAK_EXIT))


# ---------------------------------------------------------------------- running


def repository_files(root: Path) -> list[str]:
    """Tracked files, and untracked ones git does not ignore, that exist in the work tree."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, check=True, capture_output=True).stdout
    names = sorted({n for n in out.decode().split("\0") if n})
    return [n for n in names if (root / n).is_file() or (root / n).is_symlink()]


def copy_repository(root: Path, files: Iterable[str], dest: Path) -> None:
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target, follow_symlinks=False)


def apply(mutation: Mutation, root: Path) -> None:
    """Replace the mutation's old text in root/file; it must occur exactly once."""
    path = root / mutation.file
    text = path.read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise SystemExit(f"mutation {mutation.name}: the old text occurs {count} times in "
                         f"{mutation.file}, not once:\n{textwrap.indent(mutation.old, '    ')}")
    path.write_text(text.replace(mutation.old, mutation.new))


@dataclass
class Outcome:
    # caught | survived | error; unmutated: passes | fails; self-check: refused | not refused
    status: str
    returncode: int
    seconds: float
    output: str


def run_tests(root: Path, files: list[str], tests: Sequence[str], mutation: Mutation | None,
              timeout: float, leak: bool = False) -> Outcome:
    """Copy the repository, apply `mutation` (if any), run pytest on `tests` in the copy.

    leak=True is the guard's self-check: the same run made to import this checkout instead
    of the copy (this checkout first on the path, neither the working folder nor pytest's
    `pythonpath` setting adding the copy); the guard must refuse it."""
    with tempfile.TemporaryDirectory(prefix="rambench-mutation-") as tmp:
        copy, plugins = Path(tmp) / "repo", Path(tmp) / "plugins"
        copy_repository(root, files, copy)
        plugins.mkdir()
        (plugins / "_mutation_guard.py").write_text(GUARD_PLUGIN)
        if mutation is not None:
            apply(mutation, copy)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        first = root if leak else copy
        env.update(PYTHONPATH=os.pathsep.join([str(first), str(plugins)]),
                   PYTHONDONTWRITEBYTECODE="1", MUTATION_COPY=str(copy),
                   MUTATION_ORIGINAL=str(root),
                   MUTATION_FILE=mutation.file if mutation else "")
        options = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                   "-p", "_mutation_guard", *tests]
        cmd = [sys.executable, "-m", "pytest", *options]
        if leak:  # `python -c` puts the working folder first on the path: take it off
            cmd = [sys.executable, "-c", "import sys, pytest; del sys.path[0]; "
                   "sys.exit(pytest.main(sys.argv[1:]))", "-o", "pythonpath=", *options]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                                  timeout=timeout)
            code, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as err:
            code, output = -1, f"timed out after {timeout:.0f} s\n{err.stdout or ''}"
        seconds = time.monotonic() - start
    if leak:
        status = "refused" if code == LEAK_EXIT else "not refused"
    elif mutation is None:
        status = "passes" if code == 0 else "fails"
    else:
        status = {0: "survived", 1: "caught"}.get(code, "error")
    return Outcome(status, code, seconds, output)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(row.rstrip() for row in
                     [fmt.format(*header), line, *(fmt.format(*r) for r in rows)])


def tail(text: str, lines: int = 25) -> str:
    return textwrap.indent("\n".join(text.rstrip().splitlines()[-lines:]), "    | ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NAME", default=[],
                        help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="do not first check that the tests pass without mutations")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds per pytest run (default 300)")
    args = parser.parse_args(argv)

    names = [m.name for m in MUTATIONS]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SystemExit(f"duplicate mutation names: {', '.join(duplicates)}")
    unknown = [n for n in args.only if n not in names]
    if unknown:
        raise SystemExit(f"unknown mutation(s): {', '.join(unknown)}; see --list")
    selected = [m for m in MUTATIONS if not args.only or m.name in args.only]

    if args.list:
        print(table([[m.name, m.file, " ".join(m.tests)] for m in selected],
                    ["mutation", "file", "tests that should catch it"]))
        return 0

    for m in selected:  # fail loudly before running anything
        apply_check = (ROOT / m.file).read_text().count(m.old)
        if apply_check != 1:
            raise SystemExit(f"mutation {m.name}: the old text occurs {apply_check} times in "
                             f"{m.file}, not once:\n{textwrap.indent(m.old, '    ')}")

    files = repository_files(ROOT)
    if not args.skip_baseline:
        tests = list(dict.fromkeys(t for m in selected for t in m.tests))
        print(f"unmutated copy: {len(tests)} test id(s) ...", flush=True)
        base = run_tests(ROOT, files, tests, None, args.timeout)
        if base.status != "passes":
            print(f"the tests fail without any mutation (exit {base.returncode}):")
            print(tail(base.output))
            return 2
        print(f"unmutated copy: the tests pass ({base.seconds:.1f} s)", flush=True)
        check = run_tests(ROOT, files, selected[0].tests, selected[0], args.timeout, leak=True)
        if check.status != "refused":
            print(f"guard self-check: a run importing {ROOT} was not refused "
                  f"(exit {check.returncode}):")
            print(tail(check.output))
            return 2
        print(f"guard self-check: a run importing {ROOT} instead of the copy is refused "
              f"(exit {LEAK_EXIT})\n", flush=True)

    rows, outcomes = [], []
    for m in selected:
        outcome = run_tests(ROOT, files, m.tests, m, args.timeout)
        outcomes.append(outcome)
        rows.append([m.name, m.file, outcome.status, f"{outcome.seconds:.1f}s",
                     " ".join(t.replace(f"{GUARDS}::", "guards::") for t in m.tests)])
        print(f"{m.name}: {outcome.status}", flush=True)
        if outcome.status != "caught":
            print(tail(outcome.output))
    print()
    print(table(rows, ["mutation", "file", "result", "time", "tests"]))
    print(f"(guards:: = {GUARDS}::)")
    caught = sum(o.status == "caught" for o in outcomes)
    print(f"\ncaught {caught} of {len(selected)}")
    return 0 if caught == len(selected) else 1


if __name__ == "__main__":
    sys.exit(main())
