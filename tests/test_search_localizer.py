"""The training-free localizer on planted similarity curves: exact spans, curves, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from c2f.search.localizer import boundary_probs, importance_curve, localize_curve, runs_above, smooth


def planted(n: int, events: list[tuple[int, int, float]], base: float = 0.1) -> np.ndarray:
    """A flat curve at `base` with plateaus (first, last inclusive, height)."""
    sim = np.full(n, base)
    for a, b, h in events:
        sim[a : b + 1] = h
    return sim


def test_single_plateau_is_recovered_exactly() -> None:
    sim = planted(20, [(6, 11, 0.3)])
    loc = localize_curve(sim, max_spans=3)
    a, b, score = loc.spans[0]
    assert (a, b) == (6, 11)
    assert score == pytest.approx(0.3)
    assert loc.importance.argmax() in range(6, 12)
    assert loc.importance.min() == 0.0 and loc.importance.max() == 1.0


def test_two_plateaus_ranked_by_height_and_both_exact() -> None:
    sim = planted(30, [(3, 6, 0.25), (18, 25, 0.4)])
    loc = localize_curve(sim, max_spans=3)
    spans = [(a, b) for a, b, _ in loc.spans]
    assert spans[:2] == [(18, 25), (3, 6)]
    assert [s for _, _, s in loc.spans[:2]] == pytest.approx([0.4, 0.25])


def test_plateau_at_both_edges() -> None:
    sim = planted(12, [(0, 2, 0.5), (9, 11, 0.45)])
    spans = [(a, b) for a, b, _ in localize_curve(sim, max_spans=2).spans]
    assert spans == [(0, 2), (9, 11)]


def test_no_nested_or_duplicate_spans() -> None:
    # A plateau with a higher peak inside: the sweep finds both, only one may be kept.
    sim = planted(20, [(5, 12, 0.3), (8, 9, 0.35)])
    spans = localize_curve(sim, max_spans=5).spans
    for i, (a, b, _) in enumerate(spans):
        for c, d, _ in spans[i + 1 :]:
            shared = max(0, min(b, d) - max(a, c) + 1)
            assert shared <= 0.5 * min(b - a + 1, d - c + 1)


def test_max_spans_and_score_order() -> None:
    sim = planted(40, [(2, 4, 0.3), (10, 14, 0.5), (20, 22, 0.4), (30, 35, 0.35)])
    loc = localize_curve(sim, max_spans=2)
    assert len(loc.spans) == 2
    # Selection by contrast * sqrt(length): the long 0.35 event beats the short 0.4 one.
    assert [(a, b) for a, b, _ in loc.spans] == [(10, 14), (30, 35)]
    assert [s for _, _, s in localize_curve(sim, max_spans=4).spans] == pytest.approx([0.5, 0.4, 0.35, 0.3])


def test_boundary_probabilities_peak_at_planted_edges() -> None:
    sim = planted(20, [(6, 11, 0.3)])
    loc = localize_curve(sim)
    assert loc.start_prob.sum() == pytest.approx(1.0) and loc.end_prob.sum() == pytest.approx(1.0)
    # The smoothed rise spans clips 5..6 and the fall 11..12.
    assert loc.start_prob.argmax() in (5, 6)
    assert loc.end_prob.argmax() in (11, 12)
    start, end = boundary_probs(np.array([1.0, 1.0]))
    assert start.argmax() == 0 and end.argmax() == 1  # a whole-video event starts at 0, ends at N-1


def test_flat_and_single_clip_curves() -> None:
    flat = localize_curve(np.full(7, 0.2))
    assert flat.spans[0][:2] == (0, 6)
    assert np.all(flat.importance == 1.0)
    one = localize_curve(np.array([0.3]))
    assert one.spans == [(0, 0, pytest.approx(0.3))]


def test_helpers_against_hand_values() -> None:
    assert smooth(np.array([0.0, 3.0, 0.0])).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert runs_above(np.array([1, 1, 0, 1, 0, 0, 1], bool)) == [(0, 1), (3, 3), (6, 6)]
    assert importance_curve(np.array([0.0, 0.0, 3.0, 3.0, 0.0, 0.0])).tolist() == pytest.approx(
        [0, 0.5, 1, 1, 0.5, 0]
    )


@pytest.mark.parametrize("bad", [np.zeros(0), np.zeros((2, 2)), np.array([0.1, np.nan])])
def test_bad_curves_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        localize_curve(bad)


def test_noisy_plateau_within_one_clip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = int(rng.integers(2, 30))
        b = a + int(rng.integers(3, 12))
        sim = planted(50, [(a, b, 0.3)]) + rng.normal(0, 0.01, 50)
        first, last, _ = localize_curve(sim).spans[0]
        assert abs(first - a) <= 1 and abs(last - b) <= 1, (a, b, first, last)


def test_near_ties_go_to_the_earlier_then_the_shorter_span() -> None:
    # Two equal bumps: whichever float noise makes larger, the earlier one is the first moment.
    base = np.full(20, 0.1)
    base[[3, 4, 13, 14]] = 0.5
    for bump in (0.0, 3e-9, -3e-9, 4e-6, -4e-6):
        sim = base.copy()
        sim[13:15] += bump  # the later bump a hair above or below the earlier one
        first, last, _ = localize_curve(sim, max_spans=1).spans[0]
        assert (first, last) == (3, 4), bump
    # A clear difference (well above the tolerance) still wins.
    sim = base.copy()
    sim[13:15] += 1e-3
    assert localize_curve(sim, max_spans=1).spans[0][:2] == (13, 14)
    # Kept spans of (near-)equal score come out earlier first.
    spans = localize_curve(base, max_spans=2).spans
    assert [(a, b) for a, b, _ in spans] == [(3, 4), (13, 14)]
    assert spans[0][2] == pytest.approx(spans[1][2])


def test_order_cosines_with_ties_prefers_earlier_then_shorter() -> None:
    from c2f.ranking import SCORE_TOLERANCE, order_cosines_with_ties

    scores = [0.3, 0.3 + SCORE_TOLERANCE / 2, 0.3 - SCORE_TOLERANCE / 3, 0.31, 0.2]
    starts = [5, 7, 5, 9, 0]
    lengths = [4, 1, 2, 3, 1]
    # 0.31 first (clearly best); then the three near-equal 0.3s by start, then length; 0.2 last.
    assert order_cosines_with_ties(scores, [starts, lengths]) == [3, 2, 0, 1, 4]
    assert order_cosines_with_ties([], [[]]) == []


def test_moments_do_not_depend_on_float_noise() -> None:
    # Piecewise-constant curves with few levels make exact ties everywhere (equal contrasts, values on
    # the thresholds); noise at float32 rounding size must not change a single span.
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(4, 40))
        levels = rng.choice([0.1, 0.2, 0.3, 0.4, 0.5], size=int(rng.integers(2, 8)))
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(len(levels) - 1, n - 1), replace=False))
        sim = np.repeat(levels[: len(cuts) + 1], np.diff(np.concatenate([[0], cuts, [n]])))
        clean = [(a, b) for a, b, _ in localize_curve(sim, max_spans=3).spans]
        for _ in range(3):
            noisy = sim + rng.normal(0, float(rng.choice([1e-8, 1e-7, 1e-6])), n)
            assert [(a, b) for a, b, _ in localize_curve(noisy, max_spans=3).spans] == clean
