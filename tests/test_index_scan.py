"""The exact search's scans: each precision's proven bound holds, the float32-accumulation check
tells float32 from half-precision accumulation, every precision (forced, measured or failing
the check) gives the brute-force ranking, and near ties are ordered by video key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import c2f.index.clip_index as clip_index_module
from c2f import tuning
from c2f.index import ClipIndex, ClipIndexError, brute_force_top_videos
from c2f.index.ranking import order_videos_with_ties, tie_tolerance
from c2f.index.scan import (
    PRECISIONS,
    accumulates_in_float32,
    accumulation_probe,
    encode_int8,
    int8_residual_a_priori,
    make_scan,
)


def assert_same(hits, ref):
    """Same videos in the same order with the same best clips; scores to float64 rounding."""
    assert [(h.video_key, h.best_clip) for h in hits] == [(h.video_key, h.best_clip) for h in ref]
    np.testing.assert_allclose([h.score for h in hits], [h.score for h in ref], rtol=0, atol=1e-12)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def hard_rows(rng, n: int, dim: int) -> np.ndarray:
    """Worst-case-ish unit rows: Gaussian, one dominant component (int8's worst case), all
    positive (every product adds up), and tiny components (subnormal copies)."""
    gauss = rng.normal(size=(n, dim))
    spike = rng.normal(size=(n, dim)) * 1e-3
    spike[np.arange(n), rng.integers(0, dim, n)] = 1.0
    positive = np.abs(rng.normal(size=(n, dim)))
    tiny = rng.normal(size=(n, dim)) * rng.choice([1e-7, 1.0], size=(n, dim), p=[0.3, 0.7])
    return unit_rows(np.concatenate([gauss, spike, positive, tiny]))


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dim", [16, 64, 512])
def test_every_scan_stays_within_its_bound(precision, dim):
    rng = np.random.default_rng(dim)
    x = hard_rows(rng, 250, dim)
    queries = [unit_rows(rng.normal(size=(1, dim)))[0], x[0], np.full(dim, dim**-0.5, np.float32)]
    for stored in (x, x.astype(np.float16)):  # float16 storage: a float16 scan reads it directly
        scan = make_scan(precision, dim, lambda stored=stored: stored).build()
        for q in queries:
            approx = scan.scores(q)
            exact = stored.astype(np.float64) @ q.astype(np.float64)
            assert (np.abs(approx - exact) <= scan.error(approx)).all(), (precision, dim)


def test_int8_residuals_are_within_the_a_priori_bound():
    rng = np.random.default_rng(1)
    x = hard_rows(rng, 200, 512)
    codes, scales, residuals = encode_int8(x)
    c = scales.float().numpy()
    assert (c >= np.abs(x).max(1) / 127).all() and codes.abs().max() <= 127
    measured = np.linalg.norm(codes.double().numpy() * c[:, None] - x, axis=1)
    assert (residuals.numpy() >= measured).all()
    assert all(r <= int8_residual_a_priori(512, float(s)) for r, s in zip(residuals.tolist(), c, strict=True))


# --- the float32-accumulation check -------------------------------------------------------------
def float32_accumulation(x, q):
    return torch.mv(torch.from_numpy(x), torch.from_numpy(q)).half().numpy()  # float32 sums, half result


def sequential(dtype):
    def product(x, q):
        rows, query = torch.from_numpy(x).to(dtype), torch.from_numpy(q).to(dtype)
        acc = torch.zeros(len(x), dtype=dtype)
        for j in range(x.shape[1]):
            acc = acc + rows[:, j] * query[j]  # every partial sum rounded to dtype
        return acc.float().numpy()

    return product


def pairwise_float16(x, q):
    terms = x.astype(np.float16) * q.astype(np.float16)  # (R, d) exact products
    while terms.shape[1] > 1:
        if terms.shape[1] % 2:
            terms = np.concatenate([terms, np.zeros((len(terms), 1), np.float16)], axis=1)
        terms = terms[:, ::2] + terms[:, 1::2]  # a tree of float16 sums
    return terms[:, 0]


@pytest.mark.parametrize("dim", [16, 64, 512])
def test_accumulation_check_tells_float32_from_half_accumulation(dim):
    x, q, exact = accumulation_probe(dim)
    assert (x.astype(np.float64) @ q.astype(np.float64) == exact).all()
    assert accumulates_in_float32(float32_accumulation, dim)
    assert not accumulates_in_float32(sequential(torch.float16), dim)
    assert not accumulates_in_float32(sequential(torch.bfloat16), dim)
    assert not accumulates_in_float32(pairwise_float16, dim)
    assert not accumulates_in_float32(lambda x, q: np.zeros(3), dim)  # wrong shape
    assert not accumulates_in_float32(lambda x, q: 1 / 0, dim)  # a missing kernel


def test_a_precision_that_fails_the_check_falls_back_to_float32(monkeypatch):
    monkeypatch.setattr(clip_index_module, "scan_is_safe", lambda precision, dim: precision == "float32")
    rng = np.random.default_rng(2)
    corpus = {key: hard_rows(rng, 3, 32)[::4] for key in range(60)}
    index = ClipIndex(32, scan="float16")
    index.add_many(corpus)
    for q in rng.normal(size=(4, 32)).astype(np.float32):
        assert_same(index.search_videos(q, 5)[0], brute_force_top_videos(corpus, q, 5))
    assert index.scan_precision == "float32"


# --- every precision, the same ranking ----------------------------------------------------------
def corpus_with_near_ties(rng, videos=90, dim=48):
    """Videos around a few shared directions (scores ~1e-4 apart), plus exact duplicates."""
    bases = rng.normal(size=(3, dim))
    out = {}
    for key in range(videos):
        n = int(rng.integers(1, 30))
        x = bases[key % 3] + rng.normal(size=(n, dim)) * (0.01 if key % 2 else 0.5)
        out[7 * key + 3] = unit_rows(x)
    out[1] = out[10].copy()  # a duplicate: an exact tie broken by key
    return out, bases


@pytest.mark.parametrize("storage", ["float32", "float16"])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_gives_the_brute_force_ranking_through_updates(storage, precision):
    rng = np.random.default_rng(3)
    corpus, bases = corpus_with_near_ties(rng)
    index = ClipIndex(48, storage=storage, scan=precision)
    index.add_many(corpus)

    def check(expected):
        keys, starts = index.storage_layout()
        lengths = np.diff(np.append(starts, index.num_clips))
        stored = {
            int(k): index.vectors()[s : s + n].astype(np.float32)
            for k, s, n in zip(keys, starts, lengths, strict=True)
        }
        assert set(stored) == set(expected)
        for q in np.concatenate([bases + rng.normal(size=bases.shape) * 0.1, rng.normal(size=(2, 48))]):
            for k in (1, 4, 25):
                assert_same(
                    index.search_videos(q, k)[0], brute_force_top_videos(stored, q, k, normalise=False)
                )

    check(corpus)
    assert index.scan_precision == precision
    for key in list(corpus)[::5]:
        index.remove(key)
    kept = {k: v for k, v in corpus.items() if k not in list(corpus)[::5]}
    check(kept)
    extra = {5000 + i: unit_rows(bases[i % 3] + rng.normal(size=(4, 48)) * 0.01) for i in range(12)}
    index.add_many(extra)
    check({**kept, **extra})
    reads_storage = precision == "float32" or (precision, storage) == ("float16", "float16")
    assert (index.memory_bytes()["scan_copy"] == 0) == reads_storage


def test_env_override_and_measured_choice(monkeypatch):
    monkeypatch.setattr(tuning, "_choices", {})
    rng = np.random.default_rng(4)
    corpus, _ = corpus_with_near_ties(rng)
    q = rng.normal(size=48).astype(np.float32)
    reference = brute_force_top_videos(corpus, q, 10)

    monkeypatch.setenv("C2F_TUNE_SCAN", '{"precision": "int8"}')
    index = ClipIndex(48)
    index.add_many(corpus)
    assert_same(index.search_videos(q, 10)[0], reference)
    assert index.scan_precision == "int8"
    assert index.scan_choice.source == "env"

    monkeypatch.setenv("C2F_TUNE_SCAN", '{"precision": "int4"}')
    with pytest.raises(ClipIndexError, match="C2F_TUNE_SCAN"):
        index.search_videos(q, 10)

    monkeypatch.delenv("C2F_TUNE_SCAN")
    monkeypatch.setattr(clip_index_module, "_TUNE_MIN_ROWS", 0)  # measure even this small index
    monkeypatch.setattr(clip_index_module, "_TUNE_ROWS", 300)  # on a sample of its videos
    measured = ClipIndex(48)
    measured.add_many(corpus)
    assert_same(measured.search_videos(q, 10)[0], reference)
    choice = measured.scan_choice
    assert choice.source in ("measured", "cache") and set(choice.timings_ms) == {
        f"precision={p}" for p in PRECISIONS
    }
    assert measured.scan_precision == choice.setting["precision"]


# --- ties -----------------------------------------------------------------------------------------
def test_order_videos_with_ties_groups_from_the_leader():
    scores = np.array([0.5, 0.5 + 1e-13, 0.3, 0.5 - 0.5e-13, 0.5 - 1.5e-13])
    keys = np.array([9, 8, 1, 2, 3])
    # {8, 9, 2} tie with the leader 8; 3 is within 2e-13 of 2 but not of the leader: no chaining
    assert order_videos_with_ties(scores, keys, 2e-13).tolist() == [3, 1, 0, 4, 2]
    assert order_videos_with_ties(scores, keys, 0.0).tolist() == [1, 0, 3, 4, 2]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_near_ties_below_the_tolerance_go_by_key_above_it_by_score(precision):
    """Two videos whose exact scores differ by 2^-q1 (q1 the query's second component): 2^-50
    (below the tie tolerance, ~7e-15 at d = 16) is a tie, ordered by key; 2^-40 (~9e-13, above
    it, yet far below float32 resolution) is told apart."""
    dim = 16
    assert 2.0**-50 < tie_tolerance(dim) < 2.0**-40
    a = np.zeros((1, dim), np.float32)
    a[0, 0] = 1.0
    b = a.copy()
    b[0, 1] = 2.0**-30  # still unit in float32: 1 + 2^-60 rounds to 1
    filler = unit_rows(np.random.default_rng(5).normal(size=(20, dim)) - 3 * a)  # far below
    index = ClipIndex(dim, scan=precision)
    index.add_many({2: b, 1: a, **{100 + i: filler[i : i + 1] for i in range(20)}})
    for exponent, expected in ((-20, [1, 2]), (-10, [2, 1])):
        q = a[0].copy()
        q[1] = 2.0**exponent  # exactly representable; norm rounds to 1 in float32
        hits = index.search_videos(q, 2)[0]
        assert [h.video_key for h in hits] == expected, exponent
        assert [h.video_key for h in brute_force_top_videos({1: a, 2: b}, q, 2)] == expected


def test_a_loaded_index_with_non_unit_rows_is_refused_before_it_is_scanned(tmp_path):
    """The bounds assume unit rows: a file holding others (edited, or written by other code)
    gets a clear error at the first exact search, not a wrong ranking."""
    rng = np.random.default_rng(6)
    index = ClipIndex(32, scan="float16")
    index.add_many({key: unit_rows(rng.normal(size=(4, 32))) for key in range(10)})
    index.save(tmp_path / "good")
    assert ClipIndex.load(tmp_path / "good").search_videos(rng.normal(size=32), 3)[0]
    index.vectors()[5] *= 1.01  # the view is faiss's own storage
    index.save(tmp_path / "bad")
    with pytest.raises(ClipIndexError, match="not unit length"):
        ClipIndex.load(tmp_path / "bad").search_videos(rng.normal(size=32), 3)


@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_coarse_scans_on_spiky_vectors_still_rank_exactly(precision):
    """Rows with one dominant component: the int8 residual (and so its bound) is large, most
    videos stay in reach, and the search falls back to the float32 scan: still exact."""
    rng = np.random.default_rng(7)
    corpus = {key: hard_rows(rng, 3, 64)[rng.permutation(12)[:6]] for key in range(80)}
    index = ClipIndex(64, scan=precision)
    index.add_many(corpus)
    for q in np.concatenate([rng.normal(size=(3, 64)), corpus[5][:2]]):
        for k in (1, 7):
            assert_same(index.search_videos(q, k)[0], brute_force_top_videos(corpus, q, k))
