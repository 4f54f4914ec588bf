"""HERO pre-training tasks on tiny inputs: what each loss sees and predicts, that pre-training
learns, and that fine-tuning records the checkpoint it started from."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from c2f.data.dataset import text_token_encoder
from c2f.data.synthetic import make_synthetic, subtitled_inputs
from c2f.features import get_preset
from c2f.model import (
    C2FModel,
    VideoInput,
    build_video_batch,
    get_config,
    load_checkpoint,
)
from c2f.train import TrainSettings, train_model
from c2f.train.pretrain import (
    PretrainHeads,
    PretrainSettings,
    choose,
    fom_loss,
    fom_order,
    mfm_loss,
    mlm_loss,
    mlm_positions,
    mlm_predictions,
    nce,
    pretrain_model,
    vsm_loss,
)

CFG = get_config("tiny", video_dim=12, token_dim=8, dropout=0.0)
TINY = get_preset("tiny")


def subtitled_batch(seed=0):
    rng = np.random.default_rng(seed)
    vids = []
    for n in (7, 5):
        segs = [(np.arange(0, 3), rng.normal(size=(4, 8)).astype(np.float32)), (np.arange(3, n), None)]
        vids.append(VideoInput(rng.normal(size=(n, 12)).astype(np.float32), segs))
    return vids, build_video_batch(vids, 8)


def test_masked_content_is_hidden_and_only_masked_positions_are_scored():
    torch.manual_seed(0)
    model, heads = C2FModel(CFG).eval(), PretrainHeads(CFG)
    _, vb = subtitled_batch()
    gen = torch.Generator().manual_seed(0)
    masked = mlm_positions(vb.seg_token_mask, gen)
    # one token per segment with text, never the first token, never padding
    assert masked.sum(1).tolist() == [1, 0, 1, 0]
    assert not masked[:, 0].any() and not (masked & ~vb.seg_token_mask).any()
    pred, target = mlm_predictions(model, heads, vb, masked)
    torch.testing.assert_close(target, vb.seg_tokens[masked])
    # the loss is NCE of the masked outputs against exactly the masked tokens
    torch.testing.assert_close(mlm_loss(model, heads, vb, gen, masked=masked), nce(pred, target))
    # several masked tokens in a row: only the first is scored, the model sees what precedes it
    two = torch.zeros_like(masked)
    two[0, 1] = two[0, 3] = True
    one = torch.zeros_like(masked)
    one[0, 1] = True
    pred2, target2 = mlm_predictions(model, heads, vb, two)
    torch.testing.assert_close(target2, vb.seg_tokens[0, 1:2])
    torch.testing.assert_close(pred2, mlm_predictions(model, heads, vb, one)[0])
    fmask = choose(vb.mask, 0.3, gen)
    v1 = model.encoder.encode_videos(vb, frame_mask=fmask)
    vb.feats[fmask] -= 50.0
    torch.testing.assert_close(model.encoder.encode_videos(vb, frame_mask=fmask), v1)
    assert torch.isfinite(mfm_loss(model, heads, vb, gen, masked=fmask))


def test_mlm_prediction_sees_nothing_from_the_masked_token_on():
    # Causal token features (CLIP) carry token i in every feature after it. The prediction for a
    # masked token i must not change whatever the tokens i, i+1, ... are; the target does.
    torch.manual_seed(1)
    model, heads = C2FModel(CFG).eval(), PretrainHeads(CFG)
    _, vb = subtitled_batch()
    masked = torch.zeros_like(vb.seg_token_mask)
    masked[0, 1] = masked[2, 2] = True
    pred, target = mlm_predictions(model, heads, vb, masked)
    changed = replace(vb, seg_tokens=vb.seg_tokens.clone())
    changed.seg_tokens[0, 1:] = torch.randn(3, 8)
    changed.seg_tokens[2, 2:] = torch.randn(2, 8)
    pred2, target2 = mlm_predictions(model, heads, changed, masked)
    torch.testing.assert_close(pred2, pred)
    assert not torch.allclose(target2, target)
    # what C2F did before (every token of the segment in view, only the masked one replaced)
    # depends on the later tokens: this test would have failed on it
    _, old = model.encoder.encode_videos(vb, token_mask=masked, return_tokens=True)
    _, old2 = model.encoder.encode_videos(changed, token_mask=masked, return_tokens=True)
    assert not torch.allclose(old2[masked], old[masked], atol=1e-3)


def test_mlm_on_clip_tokens_cannot_read_the_masked_word():
    # The tiny CLIP text tower, as `c2f pretrain` feeds it: "a dog runs home" and "a cat runs
    # home" differ at token 2 only, yet the features of tokens 3.. differ too (causal attention).
    # With token 2 masked the model's prediction is the same for both sentences.
    encode = text_token_encoder({"kind": "clip", "arch": TINY.clip_model, "weights": TINY.clip_weights}, TINY)
    dog, cat = encode(["a dog runs home", "a cat runs home"])
    assert dog.shape == cat.shape and dog.shape[0] == 6  # start, 4 words, end
    np.testing.assert_allclose(dog[:2], cat[:2], atol=1e-5)  # before the word: the same
    assert np.abs(dog[3:] - cat[3:]).max() > 1e-2  # after it: the word shows through
    cfg = get_config("tiny", video_dim=12, token_dim=dog.shape[1], dropout=0.0)
    torch.manual_seed(2)
    model, heads = C2FModel(cfg).eval(), PretrainHeads(cfg)
    feats = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    preds = []
    for tokens in (dog, cat):
        vb = build_video_batch([VideoInput(feats, [(np.arange(4), tokens)])], cfg.token_dim)
        masked = torch.zeros_like(vb.seg_token_mask)
        masked[0, 2] = True
        with torch.no_grad():
            preds.append(mlm_predictions(model, heads, vb, masked)[0])
    torch.testing.assert_close(preds[0], preds[1], atol=1e-4, rtol=1e-4)


def test_nce_negatives_are_the_other_masked_items():
    targets = torch.eye(3)
    good = nce(targets * 5, targets)
    swapped = nce(targets[[1, 0, 2]] * 5, targets)
    assert good < 0.01 < swapped
    # identical targets form one class: predicting it is not penalised by its twin
    twins = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]])
    assert nce(twins * 5, twins) < 0.01


def test_fom_labels_are_original_positions():
    gen = torch.Generator().manual_seed(1)
    mask = torch.tensor([[True] * 20, [True] * 8 + [False] * 12])
    order, moved = fom_order(mask, gen)
    for r in range(2):
        assert sorted(order[r].tolist()) == list(range(20))  # a permutation
        assert not moved[r, ~mask[r]].any()  # padding never moves
        assert moved[r].sum() >= 2
    model, heads = C2FModel(CFG).eval(), PretrainHeads(CFG)
    _, vb = subtitled_batch()
    torch.manual_seed(0)
    o, mv = fom_order(vb.mask, torch.Generator().manual_seed(2))
    v = model.encoder.encode_videos(vb, order=o)
    ref = F.cross_entropy(heads.fom(v[mv]), o[mv])
    torch.testing.assert_close(fom_loss(model, heads, vb, torch.Generator().manual_seed(2)), ref)


def test_vsm_uses_subtitles_as_queries():
    model = C2FModel(CFG)
    vids, vb = subtitled_batch()
    loss = vsm_loss(model, CFG, vids, vb, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.encoder.query_encoder.pool.score.weight.grad.abs().sum() > 0  # the global head is trained
    assert model.localizer.fc_st[0].weight.grad.abs().sum() > 0  # and the local one


def test_pretraining_learns_and_fine_tuning_records_it(tmp_path):
    data = make_synthetic(num_videos=20, num_concepts=10, seed=3, extra_videos=60)
    cfg = get_config("tiny", video_dim=data.video_dim, token_dim=data.token_dim)
    _, summary = pretrain_model(
        cfg,
        subtitled_inputs(data),
        PretrainSettings(steps=120, lr=3e-3, batch_size=16),
        out_dir=tmp_path / "pt",
        data_note="unit test",
        progress=False,
    )
    assert set(summary["tasks"]) == {"mlm", "mfm", "fom", "vsm"}
    for task in ("mlm", "mfm", "fom"):
        assert summary["last_loss"][task] < summary["first_loss"][task], summary
    corpus = data.corpus()
    train_model(
        cfg,
        corpus,
        data.train,
        [data.tokens(q.desc) for q in data.train],
        data.val,
        [data.tokens(q.desc) for q in data.val],
        TrainSettings(steps=4, eval_every=4, warmup=1),
        out_dir=tmp_path / "ft",
        init_checkpoint=tmp_path / "pt",
        progress=False,
    )
    _, meta = load_checkpoint(tmp_path / "ft" / "best")
    init = meta["extra"]["init"]
    assert init["tensors_copied"] == init["tensors_total"]
    assert init["pretrain"]["data"] == "unit test" and init["pretrain"]["tasks"]["fom"] == 1


def test_cli_pretrain_synthetic(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "c2f",
            "pretrain",
            "--synthetic",
            "--synthetic-videos",
            "30",
            "--config",
            "tiny",
            "--steps",
            "12",
            "--out",
            str(tmp_path / "pt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["tasks"] == {"mlm": 2, "mfm": 2, "fom": 1, "vsm": 2}
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "c2f",
            "pretrain",
            "--synthetic",
            "--ratio",
            "2:2",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--ratio" in bad.stderr
