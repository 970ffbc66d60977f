"""Missing-modality protocols beyond drop and one global rate: a missing rate per modality
(`missing: {visual: 0.3, audio: 0.7}`) and a time segment lost inside a modality
(`missing_segments`), from the grid to the report."""

from __future__ import annotations

import numpy as np
import pytest

from corruptions.missing import SEGMENT_FRACTIONS, lose_segments, segment_span, uneven_missing_mask
from rambench.datasets import datasets
from rambench.datasets.limited import Limited
from rambench.errors import UsageError
from rambench.grid import expand_conditions
from rambench.schema import ModalityMissing, SegmentLoss, condition_from_json
from rambench.test_inputs import build_test_inputs

KINDS = {"visual": "image", "audio": "audio"}


def test_uneven_masks_follow_each_rate_given_one_modality_is_kept():
    """P(visual missing | not both) = r_v (1 - r_a) / (1 - r_v r_a): 0.3 x 0.3 / 0.79 for
    (0.3, 0.7); audio 0.7 x 0.7 / 0.79; never both."""
    masks = np.stack([uneven_missing_mask((0.3, 0.7), s) for s in range(20_000)])
    assert not masks.all(axis=1).any()
    expected = np.array([0.3 * 0.3, 0.7 * 0.7]) / (1 - 0.3 * 0.7)
    sem = np.sqrt(expected * (1 - expected) / len(masks))
    assert np.all(np.abs(masks.mean(axis=0) - expected) < 5 * sem)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        uneven_missing_mask((1.0, 0.2), 0)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_a_lost_segment_is_one_zeroed_span_of_the_severitys_fraction(severity):
    x = np.random.default_rng(0).uniform(0.1, 1, (6, 1000)).astype(np.float32)
    out, spans = lose_segments(x, severity, range(6))
    for row, clean, (start, length) in zip(out, x, spans, strict=True):
        assert length == round(SEGMENT_FRACTIONS[severity - 1] * 1000)
        assert 0 <= start <= 1000 - length
        np.testing.assert_array_equal(row[start:start + length], 0)
        keep = np.ones(1000, bool)
        keep[start:start + length] = False
        np.testing.assert_array_equal(row[keep], clean[keep])
    assert len({s for s, _ in spans}) > 1  # placed per sample
    clips = np.ones((2, 10, 4, 4, 3), np.uint8)  # clips lose whole frames
    out, spans = lose_segments(clips, severity, [3, 4])
    for clip, (start, length) in zip(out, spans, strict=True):
        assert length == round(SEGMENT_FRACTIONS[severity - 1] * 10)
        lost = clip.reshape(10, -1).max(axis=1) == 0
        assert list(np.flatnonzero(lost)) == list(range(start, start + length))
    assert segment_span(3, 1, 0)[1] == 1  # at least one step


def test_the_grid_language():
    out = expand_conditions({"clean": False, "missing": [{"visual": 0.3, "audio": 0.7},
                                                         {"audio": 0.5}],
                             "missing_segments": {"severities": [2, 4]}}, KINDS, "g")
    assert out == [ModalityMissing((("visual", 0.3), ("audio", 0.7))),
                   ModalityMissing((("visual", 0.0), ("audio", 0.5))),
                   SegmentLoss("audio", 2), SegmentLoss("audio", 4)]
    assert [c.label for c in out[:2]] == ["missing:visual=0.3,audio=0.7",
                                          "missing:visual=0,audio=0.5"]
    assert out[1].tested_modalities() == ("audio",)
    assert all(condition_from_json(c.to_json()) == c for c in out)
    for spec, message in (({"missing": {"vidual": 0.3}}, "unknown modality 'vidual'"),
                          ({"missing": {"audio": 1.0}}, r"expected a rate in \[0, 1\)"),
                          ({"missing": {"audio": 0}}, "nothing would be missing"),
                          ({"missing": []}, "the list is empty"),
                          ({"missing_segments": {"severities": [6]}}, "allowed values"),
                          ({"missing_segments": {"modalitys": "all"}}, "unknown key")):
        with pytest.raises(UsageError, match=message):
            expand_conditions(spec, KINDS, "g")


def test_test_inputs_mask_per_modality_and_zero_a_segment():
    dataset = Limited(datasets.get("avdigits")(), 400)
    split = dataset.split("test")
    uneven = build_test_inputs(dataset, split, ModalityMissing((("visual", 0.3),
                                                               ("audio", 0.7))), 0, "ab" * 10)
    visual, audio = uneven.missing["visual"], uneven.missing["audio"]
    assert not (visual & audio).any()
    assert visual.mean() < 0.3 < audio.mean()
    lost = build_test_inputs(dataset, split, SegmentLoss("audio", 3), 0, "cd" * 10)
    spans = lost.drawn["audio"]["segment"]
    length = split.inputs["audio"].shape[1]
    for i, (start, n) in enumerate(spans):
        assert n == round(0.3 * length)
        np.testing.assert_array_equal(lost.inputs["audio"][i, start:start + n], 0)
    np.testing.assert_array_equal(lost.inputs["visual"], split.inputs["visual"])


def test_a_study_with_both_protocols_reports_their_rows(cli, tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("conditions:\n  clean: true\n  missing: {visual: 0.3, audio: 0.7}\n"
                    "  missing_segments: {severities: [2]}\n")
    cli("run", "--method", "late_fusion", "--grid", str(grid), "--study", "m", "--out",
        str(tmp_path), "--epochs", "1", "--limit", "24")
    table = cli("table", "--study", "m", "--out", str(tmp_path), "--view", "missing").stdout
    assert "| visual 0.3, audio 0.7 " in table and "| audio segment s2 " in table
    rows = cli("table", "--study", "m", "--out", str(tmp_path), "--view", "conditions").stdout
    assert "missing visual=0.3, audio=0.7" in rows and "audio segment lost s2" in rows
    still = tmp_path / "still.yaml"
    still.write_text("conditions:\n  missing_segments: {modalities: [visual]}\n")
    bad = cli("run", "--method", "late_fusion", "--grid", str(still), "--out", str(tmp_path),
              check=False)
    assert bad.exit_code == 2 and "holds still images" in bad.stderr
    assert "Traceback" not in bad.stderr
