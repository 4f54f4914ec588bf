"""The C2F model: shapes, masks, Eq. 3 vs brute force, CQA vs a loop reference, checkpoints, losses,
augmentation, and training runs on the synthetic benchmark where Fusion beats Base on each seed."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from c2f.data.synthetic import make_synthetic
from c2f.errors import CheckpointError, FeatureMismatchError
from c2f.features import get_preset
from c2f.model import (
    C2FConfig,
    C2FModel,
    VideoInput,
    build_video_batch,
    get_config,
    load_checkpoint,
    save_checkpoint,
    video_only_segments,
)
from c2f.model.inference import pad_tokens
from c2f.model.localizers import ContextQueryAttention
from c2f.train import TrainSettings, train_model
from c2f.train.augment import OPS, augment, draw_ops
from c2f.train.losses import highlight_target, localizer_loss, ranking_loss

CFG = get_config("tiny", video_dim=12, token_dim=8)


def batch(lengths, seed=0, subtitle_tokens=False):
    rng = np.random.default_rng(seed)
    vids = []
    for n in lengths:
        segs = video_only_segments(n)
        if subtitle_tokens:
            segs = [(c, rng.normal(size=(3, 8)).astype(np.float32)) for c, _ in segs]
        vids.append(VideoInput(rng.normal(size=(n, 12)).astype(np.float32), segs))
    return vids


@pytest.mark.parametrize("localizer", ["base", "fusion"])
def test_shapes_and_padding_never_wins(localizer):
    torch.manual_seed(0)
    model = C2FModel(get_config("tiny", video_dim=12, token_dim=8, localizer=localizer)).eval()
    vids = batch([5, 9, 3], subtitle_tokens=True)
    vb = build_video_batch(vids, 8)
    v, m = model.encode_videos(vb)
    assert v.shape == (3, 9, 64) and m.sum(1).tolist() == [5, 9, 3]
    tok, tm = pad_tokens(
        [np.ones((4, 8), np.float32), np.ones((2, 8), np.float32), np.ones((6, 8), np.float32)]
    )
    q, w_emb = model.encode_queries(tok, tm)
    assert q.shape == (3, 64) and w_emb.shape == (3, 6, 64)
    out = model.localize(v, m, q, w_emb, tm)
    assert out.start_logits.shape == (3, 9)
    assert (out.start_logits[~m] < -1e3).all() and (out.end_logits[~m] < -1e3).all()
    if localizer == "fusion":
        assert out.importance.shape == (3, 9) and (out.importance[~m] == 0).all()
    # garbage in the padded clip positions and padded tokens changes nothing in the real ones
    vb2 = build_video_batch(vids, 8)
    vb2.feats[~vb2.mask] = 1e4
    v2, _ = model.encode_videos(vb2)
    torch.testing.assert_close(v2[m], v[m], atol=1e-4, rtol=1e-4)
    tok2 = tok.clone()
    tok2[~tm] = 1e4
    q2, w_emb2 = model.encode_queries(tok2, tm)
    torch.testing.assert_close(q2, q, atol=1e-4, rtol=1e-4)
    out2 = model.localize(v2, m, q2, w_emb2, tm)
    torch.testing.assert_close(out2.start_logits[m], out.start_logits[m], atol=1e-3, rtol=1e-3)


def perturb(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.5)


def test_eq5_reads_the_query_token_embeddings_before_f_cross():
    # Eq. 5: A = S_r W^emb_{s_q}, the text embedder's output, not the f_cross states of the query
    torch.manual_seed(4)
    model = C2FModel(get_config("tiny", video_dim=12, token_dim=8, dropout=0.0)).eval()
    tok, tm = pad_tokens([np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)] * 2)
    with torch.no_grad():
        q, w_emb = model.encode_queries(tok, tm)
        torch.testing.assert_close(w_emb, model.encoder.embed_tokens(tok))
        perturb(model.encoder.cross)  # f_cross changes q (Eq. 3) but not W^emb
        q2, w_emb2 = model.encode_queries(tok, tm)
    assert not torch.allclose(q2, q, atol=1e-3)
    torch.testing.assert_close(w_emb2, w_emb)


def test_q_c_comes_from_a_second_query_encoder_over_w_emb():
    # paper 2.2: q_c is "another query encoder" applied to W^emb: the importance S_h depends on the
    # Fusion localizer's own query encoder, not on the one that gives q
    torch.manual_seed(5)
    model = C2FModel(get_config("tiny", video_dim=12, token_dim=8, dropout=0.0)).eval()
    vb = build_video_batch(batch([6, 6]), 8)
    tok, tm = pad_tokens([np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)] * 2)
    with torch.no_grad():
        v, m = model.encode_videos(vb)
        q, w_emb = model.encode_queries(tok, tm)
        ref = model.localize(v, m, q, w_emb, tm).importance
        perturb(model.encoder.query_encoder)
        q2, w_emb2 = model.encode_queries(tok, tm)
        assert not torch.allclose(q2, q, atol=1e-3)
        torch.testing.assert_close(model.localize(v, m, q2, w_emb2, tm).importance, ref)
        perturb(model.localizer.sentence_encoder)
        assert not torch.allclose(model.localize(v, m, q2, w_emb2, tm).importance, ref, atol=1e-4)


def test_clips_in_no_segment_are_encoded():
    # HERO: a subtitled video's unmatched clips get no cross-modal pass; a batch may have no segment
    torch.manual_seed(6)
    model = C2FModel(CFG).eval()
    feats = np.random.default_rng(2).normal(size=(4, 12)).astype(np.float32)
    with torch.no_grad():
        v, m = model.encode_videos(build_video_batch([VideoInput(feats, [])], 8))
        assert v.shape == (1, 4, 64) and m.all() and torch.isfinite(v).all()
        tokens = np.ones((3, 8), np.float32)
        part = build_video_batch([VideoInput(feats, [(np.array([0, 2]), tokens)])], 8)
        assert part.seg_clips.tolist() == [[0, 2]]
        assert torch.isfinite(model.encode_videos(part)[0]).all()


def test_video_scores_equal_brute_force_eq3():
    torch.manual_seed(1)
    model = C2FModel(CFG).eval()
    vb = build_video_batch(batch([4, 7, 2]), 8)
    with torch.no_grad():
        v, m = model.encode_videos(vb)
        q = torch.randn(5, 64)
        s = model.video_scores(q, v, m)
    for i in range(5):
        for j in range(3):
            n = int(m[j].sum())
            ref = max(torch.nn.functional.cosine_similarity(q[i], v[j, t], dim=0).item() for t in range(n))
            assert abs(s[i, j].item() - ref) < 1e-5


def test_cqa_against_loop_reference():
    torch.manual_seed(2)
    cqa = ContextQueryAttention(6, dropout=0.0).eval()
    c, q = torch.randn(1, 4, 6), torch.randn(1, 3, 6)
    cm, qm = torch.tensor([[1, 1, 1, 0]], dtype=torch.bool), torch.tensor([[1, 1, 0]], dtype=torch.bool)
    out = cqa(c, cm, q, qm)
    wc, wq, wm = cqa.w_c.weight[0], cqa.w_q.weight[0], cqa.w_m[0, 0]
    s = torch.zeros(4, 3)
    for i in range(4):
        for j in range(3):
            s[i, j] = wc @ c[0, i] + wq @ q[0, j] + (c[0, i] * wm) @ q[0, j]
    sr = torch.zeros(4, 3)
    for i in range(4):  # softmax over the two real query tokens
        e = torch.exp(s[i, :2] - s[i, :2].max())
        sr[i, :2] = e / e.sum()
    sc = torch.zeros(4, 3)
    for j in range(3):  # softmax over the three real clips
        e = torch.exp(s[:3, j] - s[:3, j].max())
        sc[:3, j] = e / e.sum()
    a = sr @ q[0]
    b = sr @ sc.T @ c[0]
    ref = cqa.fc(torch.cat([c[0], a, c[0] * a, c[0] * b], -1))
    torch.testing.assert_close(out[0], ref, atol=1e-5, rtol=1e-5)


def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(3)
    model = C2FModel(CFG).eval()
    settings = get_preset("tiny-clip-only")
    save_checkpoint(tmp_path / "ck", model, settings, {"kind": "words", "vectors": {}}, {"step": 7})
    back, meta = load_checkpoint(tmp_path / "ck", "cpu")
    assert meta["extra"]["step"] == 7 and back.cfg == CFG
    vb = build_video_batch(batch([6]), 8)
    with torch.no_grad():
        torch.testing.assert_close(back.encode_videos(vb)[0], model.encode_videos(vb)[0])
    with pytest.raises(FeatureMismatchError):
        load_checkpoint(tmp_path / "ck", "cpu", expected_features=get_preset("tiny"))
    with pytest.raises(CheckpointError, match="not a C2F checkpoint"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(tmp_path / "ck")
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    cfg["model"]["localizer"] = "magic"
    (tmp_path / "ck" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="localizer"):
        load_checkpoint(tmp_path / "ck")
    # a checkpoint of the model before the Eq. 5 / q_c fix says so instead of loading
    cfg["model"]["localizer"], cfg["format"] = "fusion", "c2f-checkpoint-1"
    (tmp_path / "ck" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"older C2F model.*train it again"):
        load_checkpoint(tmp_path / "ck")


def test_ranking_loss_hand_computed():
    s = torch.tensor([[0.5, 0.45], [0.2, 0.9]])
    pos = torch.eye(2, dtype=torch.bool)
    l_ctx, l_q = ranking_loss(s, pos, margin=0.1)
    # query 0: 0.1 + 0.45 - 0.5 = 0.05; query 1: 0.1 + 0.2 - 0.9 < 0 -> mean 0.025
    assert abs(l_ctx.item() - 0.025) < 1e-6
    # video 0: other query 0.2 -> 0.1 + 0.2 - 0.5 < 0; video 1: 0.1 + 0.45 - 0.9 < 0
    assert l_q.item() == 0.0


def test_localizer_loss_and_highlight_target():
    y = highlight_target(torch.tensor([10]), torch.tensor([19]), 30)  # length 10 -> widened by 1 each side
    assert y[0].nonzero().squeeze(1).tolist() == list(range(9, 21))
    logits = torch.full((1, 5), -10.0)
    logits[0, 2] = 10.0
    perfect = localizer_loss(logits, logits, None, torch.ones(1, 5), torch.tensor([2]), torch.tensor([2]), "l1")
    assert perfect.item() < 1e-6


def test_highlight_losses_hand_computed():
    # 4 clips, the last one padding; span = clip 1 only (length 1: no widening) -> Y_h = [0, 1, 0, 0]
    logits = torch.zeros(1, 4)
    s_h = torch.tensor([[0.25, 0.5, 0.75, 0.9]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    ce = math.log(4)  # uniform logits: each CE is log 4, their half-sum too
    one, two = torch.tensor([1]), torch.tensor([1])
    l1 = localizer_loss(logits, logits, s_h, mask, one, two, "l1")
    assert abs(l1.item() - (ce + (0.25 + 0.5 + 0.75) / 3)) < 1e-6
    # VSLNet: -(y log p + (1-y) log(1-p)), inside-span clips x2, mean over valid clips
    want = ce + (-math.log(0.75) - 2 * math.log(0.5) - math.log(0.25)) / 3
    bce = localizer_loss(logits, logits, s_h, mask, one, two, "bce")
    assert abs(bce.item() - want) < 1e-6
    # balanced L1: the one inside clip weighs 1/2, the two outside ones 1/4 each
    balanced = localizer_loss(logits, logits, s_h, mask, one, two, "l1-balanced")
    assert abs(balanced.item() - (ce + 0.5 * 0.5 + 0.25 * (0.25 + 0.75))) < 1e-6
    # a gate with no information (the same S_h everywhere) costs 1/2 whatever its value: nothing
    # pulls it shut, where the plain L1's optimum is 0 (most clips are outside the span)
    for value in (0.1, 0.5, 0.9):
        flat = torch.tensor([[value] * 3 + [0.0]])
        assert abs(localizer_loss(logits, logits, flat, mask, one, two, "l1-balanced").item() - ce - 0.5) < 1e-6
    # the importance term's weight (the ramp of a warm-up) scales only L_h
    half = localizer_loss(logits, logits, s_h, mask, one, two, "l1", highlight_weight=0.5)
    assert abs(half.item() - (ce + 0.5 * (0.25 + 0.5 + 0.75) / 3)) < 1e-6
    # a saturated gate (S_h exactly 0 or 1) stays finite; the gradient raises S_h inside the span,
    # lowers it outside, and never reaches padding
    sat = torch.tensor([[0.0, 0.1, 0.9, 1.0]], requires_grad=True)
    loss = localizer_loss(logits, logits, sat, mask, one, two, "bce")
    loss.backward()
    assert math.isfinite(loss.item()) and sat.grad[0, 1] < 0 < sat.grad[0, 2] and sat.grad[0, 3] == 0
    edge = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert math.isfinite(localizer_loss(logits, logits, edge, mask, one, two, "bce").item())
    with pytest.raises(ValueError, match="'l1', 'l1-balanced' or 'bce'"):
        localizer_loss(logits, logits, s_h, mask, one, two, "l2")
    # the choice is part of the model config saved in checkpoints, checked on load
    assert C2FConfig.from_dict({**CFG.to_dict(), "highlight_loss": "bce"}).highlight_loss == "bce"
    with pytest.raises(CheckpointError, match="highlight_loss"):
        C2FConfig.from_dict({**CFG.to_dict(), "highlight_loss": "l2"})
    old = CFG.to_dict()
    del old["highlight_loss"]  # a checkpoint written before the option trains and loads as the paper's L1
    assert C2FConfig.from_dict(old).highlight_loss == "l1"


def test_augmentation_split_and_shapes():
    gen = torch.Generator().manual_seed(0)
    ops = draw_ops(20000, 0.5, gen)
    freq = {op: ops.count(op) / len(ops) for op in OPS}
    # 50 % unchanged by the coin, plus the 15 % "unchanged" share of the other half
    assert abs(freq["none"] - (0.5 + 0.5 * 0.15)) < 0.02
    assert abs(freq["shuffle"] - 0.2) < 0.02 and abs(freq["dropout"] - 0.075) < 0.01
    x = torch.randn(64, 7, 5)
    mask = torch.ones(64, 7, dtype=torch.bool)
    mask[:, 5:] = False
    y = augment(x, mask, p=1.0, generator=gen)
    assert y.shape == x.shape and torch.equal(y[:, 5:], x[:, 5:])  # padding untouched
    assert not torch.equal(y, x)


def test_synthetic_benchmark_needs_token_order():
    data = make_synthetic(num_videos=20, seed=1)
    by_video = {}
    for q in data.train + data.val:
        by_video.setdefault(q.vid_name, []).append(q)
    for qs in by_video.values():
        assert len(qs) == 2
        a, b = qs[0].desc.split(" then "), qs[1].desc.split(" then ")
        assert a == b[::-1] and qs[0].ts != qs[1].ts  # same words, other order, other moment
    assert not {q.vid_name for q in data.train} & {q.vid_name for q in data.val}


def train_synthetic(cfg, data, settings: TrainSettings, out_dir):
    """Train on the synthetic benchmark's train split, validating on its val split."""
    return train_model(
        cfg,
        data.corpus(),
        data.train,
        [data.tokens(q.desc) for q in data.train],
        data.val,
        [data.tokens(q.desc) for q in data.val],
        settings,
        out_dir=out_dir,
        progress=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two 1000-step trainings: ~3 min on 2 calm cores, far more on a loaded one
@pytest.mark.parametrize("seed", [0, 1])
def test_fusion_beats_base_on_each_seed(tmp_path, seed):
    # Table 3's first step (Base -> +Fusion) under the default recipe (benchmarks/ablation.py: 400
    # videos, tiny config, lr 1e-3, Eq. 10 with the class-balanced L1) on 1000 steps, a third of the
    # ablation's budget, to fit CI: Fusion must win on each seed, not on the mean. The metrics are the
    # ones whose margin no CPU kernel can flip at this budget: VCMR 0.7-R@10 and SVMR 0.7-R@1 (measured,
    # results_ablation_1000.json, seeds 0-3: VCMR 0.7-R@10 43-50 vs Base 13-20, SVMR 0.7-R@1 81-94 vs
    # 23-40). VCMR 0.7-R@1 is a query or two apart here (seed 1: Fusion 3.12 vs 1.25 on AVX-512,
    # 0.62 vs 1.25 under the AVX2 limit); its claim is made at 3000 steps on 4 seeds (BENCHMARKS.md).
    # With the paper's plain L1 ("l1"), Fusion sat at chance for 500-1500 steps: the regression this
    # guards. Chance VCMR R@1 at IoU 0.7 is ~1 / (400 videos x ~100 spans).
    data = make_synthetic(num_videos=400, num_concepts=20, seed=seed)
    settings = dict(batch_size=32, lr=1e-3, warmup=30, eval_every=500, seed=seed)
    best, history = {}, {}
    for localizer in ("base", "fusion"):
        cfg = get_config("tiny", video_dim=data.video_dim, token_dim=data.token_dim, localizer=localizer)
        result = train_synthetic(
            cfg, data, TrainSettings(steps=1000, hard_negative_after=500, **settings), tmp_path / localizer
        )
        best[localizer], history[localizer] = result.best_metrics, result.history
    for task, key in (("VCMR", "0.7-r10"), ("SVMR", "0.7-r1")):
        assert best["fusion"][task][key] > best["base"][task][key], (task, key, history)
    assert best["fusion"]["SVMR"]["0.7-r1"] >= 50.0, history
    assert (tmp_path / "fusion" / "best" / "model.safetensors").is_file()
    # resuming continues from the saved step instead of starting over, its history kept (500, 1000)
    more = train_model(
        cfg,
        data.corpus(),
        data.train,
        [data.tokens(q.desc) for q in data.train],
        [],
        [],
        TrainSettings(steps=1010, **settings),
        out_dir=tmp_path / "fusion",
        resume=True,
        progress=False,
    )
    assert more.history[0]["step"] == 500 and more.history[-1]["step"] == 1010


def test_cli_train_synthetic(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "c2f",
            "train",
            "--synthetic",
            "--synthetic-videos",
            "40",
            "--config",
            "tiny",
            "--steps",
            "20",
            "--eval-every",
            "10",
            "--lr",
            "1e-3",
            "--highlight-loss",
            "bce",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert "VCMR" in out["best_val"]
    model, meta = load_checkpoint(tmp_path / "out" / "best")
    assert meta["text_encoder"]["kind"] == "words"
    assert model.cfg.highlight_loss == "bce"  # the option travels in the checkpoint's config


def test_cli_offers_every_highlight_loss(capsys):
    from c2f.cli import build_parser
    from c2f.model.config import HIGHLIGHT_LOSSES

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--synthetic", "--out", "x", "--highlight-loss", "l2"])
    err = capsys.readouterr().err
    assert "invalid choice: 'l2'" in err and all(f"'{name}'" in err for name in HIGHLIGHT_LOSSES)
    assert build_parser().parse_args(["train", "--synthetic", "--out", "x"]).highlight_loss is None
    assert C2FConfig().highlight_loss == "l1-balanced"  # what None trains with
