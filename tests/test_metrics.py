"""Robustness metrics and statistics on small hand-made tidy tables, against hand arithmetic."""

import numpy as np
import pandas as pd
import pytest

from rambench import metrics
from rambench import stats as st
from rambench.metrics.frame import tidy_frame, tidy_rows
from rambench.schema import Clean, Corrupt, RandomMissing, make_record

REF = "late_fusion"
CLEAN_SPEC = metrics.SPECS["clean"]
KIND = {"visual": "image", "audio": "audio"}
FAMILY = {"fog": "weather", "reverb": "room"}


CLEAN = Clean()


def cell(method, accuracy, condition=CLEAN, seed=0, metric="accuracy", higher=True):
    """One tidy row, as the writer makes it (a record with the condition's kind, the
    modality's kind and the corruption's family)."""
    modality, corruption = condition.axes()["test_modality"], condition.axes()["corruption"]
    reads = {"audio_only": ("audio",), "visual_only": ("visual",)}.get(method,
                                                                      ("visual", "audio"))
    record = make_record(key=f"{method}-{seed}-{condition.label}", method=method, seed=seed,
                         condition=condition, modality_kind=KIND.get(modality),
                         corruption_family=FAMILY.get(corruption), n=100, modalities=reads)
    row = tidy_rows(record)[0]
    return {**row, "metric": metric, "value": accuracy, "higher_is_better": higher}


def table(rows):
    frame = tidy_frame([])
    return pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).astype(
        {"severity": "Int64", "missing_rate": float})


# Seed 0. Errors E = 1 - accuracy in brackets.
#            clean       fog s1     fog s3     reverb s1  reverb s3  rate .2  rate .6
# reference  .90 (.10)   .80 (.20)  .60 (.40)  .70 (.30)  .50 (.50)  .85      .60
# m          .95 (.05)   .90 (.10)  .70 (.30)  .80 (.20)  .70 (.30)  .90      .70
ACC = {REF: [.90, .80, .60, .70, .50, .85, .60], "m": [.95, .90, .70, .80, .70, .90, .70]}
CELLS = [Clean(), Corrupt("visual", "fog", 1), Corrupt("visual", "fog", 3),
         Corrupt("audio", "reverb", 1), Corrupt("audio", "reverb", 3), RandomMissing(0.2),
         RandomMissing(0.6)]


def study(acc=ACC, seed=0, **kw):
    return [cell(m, a, c, seed=seed, **kw) for m, values in acc.items()
            for a, c in zip(values, CELLS, strict=True)]


@pytest.fixture
def tidy():
    return table(study())


def value(frame, method="m", **scope):
    rows = frame[frame["method"] == method]
    for k, v in scope.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, rows
    return rows["value"].iloc[0]


def test_clean_mpc_and_rpc(tidy):
    assert value(metrics.clean_accuracy(tidy)) == pytest.approx(.95)
    # mPC = mean over corruptions of the mean over severities:
    # fog (.9 + .7) / 2 = .8, reverb (.8 + .7) / 2 = .75 -> (.8 + .75) / 2 = .775
    assert value(metrics.mpc(tidy)) == pytest.approx(.775)
    assert value(metrics.mpc(tidy), REF) == pytest.approx((.7 + .6) / 2)  # (.7 + .6) / 2
    by_modality = metrics.mpc(tidy, by="modality")
    assert value(by_modality, test_modality="visual") == pytest.approx(.8)
    assert value(by_modality, test_modality="audio") == pytest.approx(.75)
    by_family = metrics.mpc(tidy, by="family")  # fog: weather; reverb: room
    assert value(by_family, corruption_family="weather") == pytest.approx(.8)
    assert value(by_family, corruption_family="room") == pytest.approx(.75)
    # rPC = .775 / .95
    assert value(metrics.rpc(tidy)) == pytest.approx(.775 / .95)


def test_mce_and_relative_mce_by_hand(tidy):
    # CE_fog = (.1 + .3) / (.2 + .4) = 2/3; CE_reverb = (.2 + .3) / (.3 + .5) = .625
    ce = metrics.corruption_errors(tidy, REF)
    assert value(ce, corruption="fog") == pytest.approx(2 / 3)
    assert value(ce, corruption="reverb") == pytest.approx(.625)
    assert value(metrics.mce(tidy, REF)) == pytest.approx((2 / 3 + .625) / 2)
    # relative: fog ((.1-.05) + (.3-.05)) / ((.2-.1) + (.4-.1)) = .3 / .4 = .75
    #           reverb ((.2-.05) + (.3-.05)) / ((.3-.1) + (.5-.1)) = .4 / .6 = 2/3
    assert value(metrics.relative_mce(tidy, REF)) == pytest.approx((.75 + 2 / 3) / 2)
    by_modality = metrics.mce(tidy, REF, by="modality")
    assert value(by_modality, test_modality="visual") == pytest.approx(2 / 3)


def test_reference_mce_is_exactly_one(tidy):
    assert value(metrics.mce(tidy, REF), REF) == 1.0
    assert value(metrics.relative_mce(tidy, REF), REF) == 1.0
    assert (metrics.corruption_errors(tidy, REF).query("method == @REF")["value"] == 1.0).all()


def test_direction_is_handled_explicitly(tidy):
    # The same results stored as an error rate (lower is better) give the same metrics.
    errors = {m: [round(1 - a, 10) for a in v] for m, v in ACC.items()}
    as_error = table(study(errors, metric="error", higher=False))
    assert value(metrics.mce(as_error, REF, metric="error")) == pytest.approx(
        value(metrics.mce(tidy, REF)))
    assert value(metrics.mpc(as_error, metric="error")) == pytest.approx(.775)
    mixed = pd.concat([tidy, as_error.assign(metric="accuracy")])
    with pytest.raises(ValueError, match="both directions"):
        metrics.mpc(mixed)


def test_missing_reference_cell_is_named(tidy):
    gone = tidy[~((tidy["method"] == REF) & (tidy["corruption"] == "reverb")
                  & (tidy["severity"] == 3))]
    with pytest.raises(metrics.MissingReferenceError) as err:
        metrics.mce(gone, REF)
    for part in ["'late_fusion'", "seed 0", "test_modality 'audio'", "corruption 'reverb'",
                 "severity 3"]:
        assert part in str(err.value)
    no_clean = tidy[~((tidy["method"] == REF) & (tidy["condition_kind"] == "clean"))]
    with pytest.raises(metrics.MissingReferenceError, match="condition 'clean'"):
        metrics.relative_mce(no_clean, REF)
    with pytest.raises(metrics.MissingReferenceError, match="method 'nobody'"):
        metrics.effective_robustness(tidy, "nobody")


def test_zero_and_negative_denominators_are_reported_not_divided():
    acc = {k: list(v) for k, v in ACC.items()}
    acc[REF][1:3] = [1.0, 1.0]  # reference perfect under fog: sum of its errors is 0
    acc[REF][3:5] = [.95, .92]  # reverb errors .05, .08 below the clean .10: relative sum < 0
    tidy = table(study(acc))
    ce = metrics.corruption_errors(tidy, REF)
    fog = ce[(ce["method"] == "m") & (ce["corruption"] == "fog")].iloc[0]
    assert np.isnan(fog["value"]) and "<= 0" in fog["note"]
    # mCE leaves fog out (for every method alike): reverb (.2 + .3) / (.05 + .08)
    mce = metrics.mce(tidy, REF)
    assert value(mce) == pytest.approx(.5 / .13)
    assert "left out" in mce[mce["method"] == "m"]["note"].iloc[0]
    assert value(mce, REF) == 1.0
    # relative reverb denominator (.05 - .1) + (.08 - .1) = -.07 <= 0, fog's is -.2: all NaN
    rel = metrics.relative_mce(tidy, REF)
    assert np.isnan(value(rel)) and metrics.notes(rel)
    # rPC with a clean accuracy of 0
    zero = table(study({"m": [0.0, .5, .5, .5, .5, .5, .5]}))
    r = metrics.rpc(zero)
    assert np.isnan(value(r)) and "<= 0" in r["note"].iloc[0]


def test_areas_under_severity_and_missing_rate(tidy):
    # fog: x = 0, 1, 3; y = .95, .9, .7: (1 (.95 + .9) / 2 + 2 (.9 + .7) / 2) / 3 = 2.525 / 3
    # reverb: y = .95, .8, .7: (.875 + 1.5) / 3 = 2.375 / 3
    per = metrics.severity_auc(tidy, per_corruption=True)
    assert value(per, corruption="fog") == pytest.approx(2.525 / 3)
    assert value(metrics.severity_auc(tidy)) == pytest.approx((2.525 + 2.375) / 6)
    # missing: x = 0, .2, .6; y = .95, .9, .7: (.2 (.925) + .4 (.8)) / .6 = .505 / .6
    assert value(metrics.missing_rate_auc(tidy)) == pytest.approx(.505 / .6)
    assert metrics.trapezoid_weights([3, 0, 1]) == pytest.approx([1 / 3, 1 / 6, 1 / 2])


def test_effective_robustness(tidy):
    # fog: s1 (.9 - .95) - (.8 - .9) = .05; s3 (.7 - .95) - (.6 - .9) = .05 -> .10
    # reverb: s1 (.8 - .95) - (.7 - .9) = .05; s3 (.7 - .95) - (.5 - .9) = .15 -> .20
    per = metrics.effective_robustness(tidy, REF, per_corruption=True)
    assert value(per, corruption="fog") == pytest.approx(.10)
    assert value(per, corruption="reverb") == pytest.approx(.20)
    assert value(metrics.effective_robustness(tidy, REF)) == pytest.approx(.15)
    assert value(metrics.effective_robustness(tidy, REF), REF) == 0.0


def test_per_seed_then_mean_and_std():
    seed1 = {REF: ACC[REF], "m": [.85, .80, .60, .70, .60, .80, .60]}
    tidy = table(study() + study(seed1, seed=1))
    clean = metrics.summarise(metrics.clean_accuracy(tidy)).set_index("method")
    # (.95 + .85) / 2 = .9; std (ddof 1) = sqrt(2 * .05^2 / 1)
    assert clean.loc["m", "mean"] == pytest.approx(.9)
    assert clean.loc["m", "std"] == pytest.approx(np.sqrt(2 * .05 ** 2))
    assert clean.loc["m", "seeds"] == 2
    # rPC per seed: .775 / .95 and ((.8 + .6) / 2 + (.7 + .6) / 2) / 2 / .85 = .675 / .85
    rpc = metrics.summarise(metrics.rpc(tidy)).set_index("method")
    assert rpc.loc["m", "mean"] == pytest.approx((.775 / .95 + .675 / .85) / 2)
    one_seed = metrics.summarise(metrics.clean_accuracy(table(study())))
    assert one_seed["std"].isna().all()


def test_method_variants_are_methods_of_their_own(tidy):
    variant = tidy[tidy["method"] == "m"].assign(method="m[norm=hard]", value=.5)
    out = metrics.clean_accuracy(pd.concat([tidy, variant]))
    assert set(out["method"]) == {REF, "m", "m[norm=hard]"}
    assert value(out, "m[norm=hard]") == .5 and value(out, "m") == pytest.approx(.95)


def test_a_cell_stored_twice_is_refused(tidy):
    with pytest.raises(metrics.DuplicateCellError, match="condition 'visual:fog@1'"):
        metrics.mpc(pd.concat([tidy, tidy[tidy["condition"] == "visual:fog@1"]]))


# ----------------------------------------------------------------------------- statistics


def test_bootstrap_ci_covers_the_true_accuracy_about_95_percent():
    rng = np.random.default_rng(123)
    truth, covered = 0.8, 0
    for i in range(200):
        sample = rng.random(400) < truth
        ci = st.bootstrap_ci(sample, seed=i)
        assert ci.low <= sample.mean() <= ci.high
        covered += ci.low <= truth <= ci.high
    assert 0.90 <= covered / 200 <= 0.99


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    correct = rng.random((170, 400)) < 0.8
    first = st.bootstrap_ci(correct)
    assert st.bootstrap_ci(correct) == first
    assert first.value == pytest.approx(correct.mean())


def corr_frame(a: np.ndarray, b: np.ndarray, seeds=(0,)):
    rows = []
    for seed in seeds:
        for method, c in (("a", a), ("b", b)):
            rows.append(make_record(key=f"{method}{seed}", method=method, seed=seed,
                                    correct=c))
    return st.correctness(rows)


def test_paired_bootstrap_difference_ci_and_p():
    rng = np.random.default_rng(1)
    b = rng.random(400) < 0.7
    same = st.paired_bootstrap(corr_frame(b, b), "a", "b", CLEAN_SPEC)
    assert same.diff == 0 and same.p == 1.0
    a = b.copy()
    a[np.flatnonzero(~b)[:40]] = True  # 40 more correct samples out of 400: +10 points
    better = st.paired_bootstrap(corr_frame(a, b, seeds=(0, 1)), "a", "b", CLEAN_SPEC)
    assert better.diff == pytest.approx(0.10)
    assert better.low > 0 and better.p < 0.01 and better.seeds == 2 and better.cells == 2
    worse = st.paired_bootstrap(corr_frame(b, a), "a", "b", CLEAN_SPEC)
    assert worse.diff == pytest.approx(-0.10) and worse.high < 0
    none = st.paired_bootstrap(corr_frame(a, b), "a", "zzz", CLEAN_SPEC)
    assert none.cells == 0 and np.isnan(none.p)


def test_wilcoxon_with_rank_biserial_by_hand():
    from scipy.stats import wilcoxon

    a = np.array([0.6, 0.7, 0.5, 0.9, 0.8])
    b = np.array([0.5, 0.5, 0.8, 0.5, 0.8])  # differences .1 .2 -.3 .4 0 (dropped)
    result = st.wilcoxon(a, b)
    # ranks of |d| = 1 2 3 4; R+ = 1 + 2 + 4 = 7, R- = 3 -> r = (7 - 3) / 10 = .4
    assert result.rank_biserial == pytest.approx(0.4)
    assert result.pairs == 4
    assert result.p == pytest.approx(wilcoxon([.1, .2, -.3, .4]).pvalue)
    tie = st.wilcoxon(a, a)
    assert tie.p == 1.0 and tie.rank_biserial == 0.0


def test_redundancy_gap_against_the_unimodal_model_of_the_intact_modality():
    from rambench.schema import Drop

    fog1, fog3, contrast = (Corrupt("visual", "fog", 1), Corrupt("visual", "fog", 3),
                            Corrupt("visual", "contrast", 1))
    reverb, no_visual = Corrupt("audio", "reverb", 1), Drop("visual")
    fused = {fog1: 0.8, fog3: 0.6, contrast: 0.5, reverb: 0.9, no_visual: 0.65}
    rows = [cell("fused", v, c) for c, v in fused.items()]
    rows += [cell("audio_only", 0.7, c) for c in (fog1, fog3, contrast, no_visual)]
    rows += [cell("audio_only", 0.2, reverb), cell("visual_only", 0.85, reverb)]
    rows += [cell("visual_only", v, c) for c, v in ((fog1, 0.5), (fog3, 0.3),
                                                    (contrast, 0.4), (no_visual, 0.1))]
    gap = metrics.redundancy_gap(pd.DataFrame(rows))
    fused_gap = gap[gap["method"] == "fused"].set_index(["test_modality", "condition_kind"])
    # fog: mean(0.8 - 0.7, 0.6 - 0.7) = 0; contrast: 0.5 - 0.7; mean over corruptions
    assert fused_gap.loc[("visual", "corruption"), "value"] == pytest.approx(-0.1)
    assert fused_gap.loc[("visual", "drop"), "value"] == pytest.approx(-0.05)
    assert fused_gap.loc[("audio", "corruption"), "value"] == pytest.approx(0.9 - 0.85)
    # a unimodal model against the other one when its own modality is degraded
    own = gap[gap["method"] == "visual_only"].set_index(["test_modality", "condition_kind"])
    assert own.loc[("visual", "drop"), "value"] == pytest.approx(0.1 - 0.7)
    without = pd.DataFrame([r for r in rows if r["method"] != "audio_only"])
    with pytest.raises(metrics.MissingReferenceError, match="unimodal model of 'audio'"):
        metrics.redundancy_gap(without)


def test_mean_value_keeps_a_lower_is_better_metric_as_it_is():
    rows = [cell("m", 0.10, CLEAN, metric="ece", higher=False),
            cell("m", 0.20, Corrupt("visual", "fog", 1), metric="ece", higher=False),
            cell("m", 0.40, Corrupt("visual", "fog", 3), metric="ece", higher=False),
            cell("m", 0.60, Corrupt("visual", "contrast", 1), metric="ece", higher=False)]
    tidy = pd.DataFrame(rows)
    assert metrics.mean_value(tidy, "ece", "clean")["value"].item() == pytest.approx(0.10)
    # mean over corruptions (fog: 0.3, contrast: 0.6) of the mean over severities
    assert metrics.mean_value(tidy, "ece", "corruption")["value"].item() == pytest.approx(0.45)


def _correctness(*units):
    """A correctness frame from (method, seed, per-sample correct) units of one clean cell."""
    return st.correctness([make_record(key=f"{m}-{s}", method=m, seed=s, correct=c)
                           for m, s, c in units])


def _hits(rate, n=500, seed=0):
    return np.random.default_rng(seed).permutation(np.arange(n) < round(rate * n))


def test_paired_bootstrap_of_identical_methods_gives_p_one_and_finds_a_planted_difference():
    same = _correctness(("a", 0, _hits(0.7)), ("b", 0, _hits(0.7)))
    result = st.paired_bootstrap(same, "a", "b", CLEAN_SPEC)
    assert result.diff == 0 and result.p == 1
    planted = _correctness(*[(m, s, _hits(rate, seed=s)) for s in (0, 1, 2)
                             for m, rate in (("a", 0.8), ("b", 0.6))])
    found = st.paired_bootstrap(planted, "a", "b", CLEAN_SPEC)
    assert found.diff == pytest.approx(0.2) and found.p < 0.01 and found.seeds == 3
    assert found.low > 0.1


def test_a_difference_that_flips_sign_between_seeds_is_not_significant():
    # seed 0: a is 30 points better; seed 1: 15 points worse; mean +7.5 points. Each
    # seed alone is far outside test-sample noise (500 samples), the two seeds disagree.
    units = [("a", 0, _hits(0.8)), ("b", 0, _hits(0.5, seed=1)),
             ("a", 1, _hits(0.5, seed=2)), ("b", 1, _hits(0.65, seed=3))]
    corr = _correctness(*units)
    result = st.paired_bootstrap(corr, "a", "b", CLEAN_SPEC)
    assert result.diff == pytest.approx(0.075) and result.seeds == 2
    assert result.p > 0.2 and result.low < 0 < result.high
    one_seed = st.paired_bootstrap(corr[corr["seed"] == 0], "a", "b", CLEAN_SPEC)
    assert one_seed.p < 0.01  # one seed: test-sample noise only


def test_two_level_bootstrap_replicates_resample_seeds():
    reps = [np.full(1000, 1.0), np.full(1000, 3.0)]
    value, out = st.over_seeds([1.0, 3.0], reps, seed=0)
    assert value == 2.0
    # each replicate averages two seeds drawn with replacement: 1, 2 or 3 with 1/4, 1/2, 1/4
    share = {v: np.mean(out == v) for v in (1.0, 2.0, 3.0)}
    assert set(np.unique(out)) == {1.0, 2.0, 3.0}
    assert share[2.0] == pytest.approx(0.5, abs=0.05) and share[1.0] == pytest.approx(0.25,
                                                                                    abs=0.05)


def test_a_rounding_residue_of_zero_is_not_a_denominator():
    # reference: clean .7, fog .8 and .6 -> relative denominator (.2 - .3) + (.4 - .3), a
    # float 5.6e-17, not 0: dividing by it gave relative mCEs of 1e16
    acc = {k: list(v) for k, v in ACC.items()}
    acc[REF][0], acc[REF][1:3] = .7, [.8, .6]
    assert (1 - .8 - (1 - .7)) + (1 - .6 - (1 - .7)) != 0
    rel = metrics.corruption_errors(table(study(acc)), REF, relative=True)
    fog = rel[(rel["method"] == "m") & (rel["corruption"] == "fog")].iloc[0]
    assert np.isnan(fog["value"]) and "denominator is 0 <= 0" in fog["note"]
    assert "seed 0" in fog["note"] and "'m'" not in fog["note"]


# --------------------------------------------------------- every spec, three ways at once

def _spec_study(rates: dict[str, tuple[float, float]], seeds=(0, 1), n=400):
    """Records of every condition kind for methods whose per-sample correctness is drawn at
    a clean rate minus a drop per condition times the method's factor, `rates[method]` =
    (clean rate, factor) (so cells differ and errors grow with severity)."""
    from rambench.schema import AVEvent, Drop, Mixed

    conditions = [(CLEAN, 0.0), (Corrupt("visual", "fog", 1), .05), (Corrupt("visual", "fog", 3),
                  .15), (Corrupt("audio", "reverb", 1), .1), (Corrupt("audio", "reverb", 3), .2),
                  (AVEvent("rain", 2, ("visual", "audio")), .12), (Drop("visual"), .25),
                  (RandomMissing(0.2), .05), (RandomMissing(0.6), .18),
                  (Mixed((("visual", "fog"), ("audio", "reverb")), 3), .1)]
    records = []
    for seed in seeds:
        for m, (method, (rate, factor)) in enumerate(rates.items()):
            for c, (condition, drop) in enumerate(conditions):
                rng = np.random.default_rng([seed, m, c])
                correct = rng.random(n) < rate - factor * drop
                records.append(make_record(
                    key=f"{method}-{seed}-{c}", method=method, seed=seed, condition=condition,
                    correct=correct, modality_kind=KIND.get(condition.axes()["test_modality"]),
                    corruption_family=FAMILY.get(condition.axes()["corruption"])))
    return records


@pytest.mark.parametrize("key", list(metrics.SPECS))
def test_every_spec_point_estimate_bootstrap_and_paired_test_agree(key):
    spec = metrics.SPECS[key]
    records = _spec_study({REF: (0.8, 1.5), "a": (0.9, 1.0), "twin": (0.9, 1.0),
                           "worse": (0.75, 2.0)})
    # "twin" gets a's exact predictions: an identical method
    a = {(r.seed, r.condition.label): r for r in records if r.method.name == "a"}
    records = [make_record(**{**r.__dict__, "key": r.key, "correct": a[(r.seed,
                              r.condition.label)].correct, "metrics": a[(r.seed,
                              r.condition.label)].metrics}) if r.method.name == "twin" else r
               for r in records]
    tidy = tidy_frame(records)
    corr = st.correctness(records)
    reference = REF if spec.needs_reference else None
    per_seed = spec.per_seed(tidy, reference)
    # the table's value (mean over seeds of the per-seed value) is the bootstrap's point
    for method in ("a", "worse"):
        table_value = per_seed[per_seed["method"] == method]["value"].mean()
        boot = st.bootstrap(spec, corr, method, reference=reference)
        assert boot["value"].item() == pytest.approx(table_value, abs=1e-12)
        assert boot["low"].item() <= table_value <= boot["high"].item()
    # identical methods: no difference, p = 1
    same = st.paired_bootstrap(corr, "a", "twin", spec, reference=reference)
    assert same.diff == 0 and same.p == 1
    # a planted difference (15 points lower clean, twice the drop under every condition)
    planted = st.paired_bootstrap(corr, "a", "worse", spec, reference=reference)
    difference = (per_seed[per_seed["method"] == "a"]["value"].mean()
                  - per_seed[per_seed["method"] == "worse"]["value"].mean())
    assert planted.diff == pytest.approx(difference, abs=1e-12)
    assert planted.p < 0.05 and (planted.diff > 0) == spec.higher_is_better


def test_unimodal_references_come_from_what_the_records_say_a_method_reads():
    """Any method whose records say it reads one modality is that modality's reference
    (a plug-in too), plain labels first; records of the built-in unimodal methods written
    before rambench recorded this are read as theirs."""
    from rambench.schema import MethodInfo, Record

    rows = [cell("mine:OnlyAudio", 0.5), cell("fused", 0.9), cell("visual_only[x=1]", 0.4),
            cell("visual_only", 0.6)]
    rows[0]["method_modalities"] = "audio"
    assert metrics.unimodal_references(pd.DataFrame(rows)) == {
        "audio": "mine:OnlyAudio", "visual": "visual_only"}
    old = make_record(method="audio_only").to_json()
    del old["method"]["modalities"]
    assert Record.from_json(old).method.modalities == ("audio",)
    assert MethodInfo("m", "m", "f").modalities is None
