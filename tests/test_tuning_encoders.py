"""Encoder settings chosen by measurement: a valid candidate wins, a lossy one is rejected, the choice
is cached and reused, environment overrides win, and a tuned encoder agrees with float32."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from c2f import tuning
from c2f.encoders.clip import IMAGE_BATCHES, IMAGE_MEMORY_AXIS, ClipEncoder
from c2f.encoders.tuning import MIN_COSINE, greedy_grid, min_row_cosine, tune
from c2f.errors import C2FError
from c2f.features import get_preset

TINY = get_preset("tiny")
FRAMES = np.random.default_rng(7).integers(0, 255, (6, 64, 96, 3), dtype=np.uint8)


def tiny_clip() -> ClipEncoder:
    return ClipEncoder(TINY.clip_model, "random", "cpu")


def made(task: str) -> tuning.Choice:
    return next(c for c in tuning.choices_made() if c.task == task)


def test_greedy_grid_varies_the_first_axis_fastest():
    grid = greedy_grid({"dtype": ["float32", "bfloat16"], "batch": [2, 1]})
    assert grid == [
        {"dtype": "float32", "batch": 2},
        {"dtype": "bfloat16", "batch": 2},
        {"dtype": "float32", "batch": 1},
        {"dtype": "bfloat16", "batch": 1},
    ]


def test_tuner_picks_a_candidate_and_the_cache_is_reused(fresh_cache):
    enc = tiny_clip()
    enc.encode_images(FRAMES)
    first = made("clip-image")
    assert first.source in ("measured", "env")  # "env" never: the fixture cleared the overrides
    assert first.source == "measured"
    assert enc.image_setting == first.setting
    assert first.setting["dtype"] in ("float32", "bfloat16")
    assert first.setting["batch"] in IMAGE_BATCHES and first.setting["memory_format"] in IMAGE_MEMORY_AXIS
    # the chosen candidate was timed and met the bound (a number, not None)
    assert first.timings_ms[tuning.label(first.setting)] is not None
    stored = json.loads(fresh_cache.read_text())
    assert [v["setting"] for k, v in stored.items() if k.endswith(f"|clip-image|{first.shape}")] == [first.setting]

    tuning.forget()  # a new process: the choice comes from the file, nothing is measured
    again = tiny_clip()
    again.encode_images(FRAMES)
    second = made("clip-image")
    assert second.source == "cache" and second.setting == first.setting == again.image_setting


def test_candidate_below_the_cosine_bound_is_rejected(fresh_cache):
    """bfloat16 weights change the embeddings by rounding: with a bound of exactly 1 they fail it,
    and the float32 default is kept."""
    enc = tiny_clip()
    x = enc.preprocess(FRAMES)  # (6, 3, 64, 64)
    master = {("float32", "contiguous"): enc.model.visual}
    run = lambda st: enc._encode_image(master, x[: st["batch"]], st)  # noqa: E731
    axes = {"dtype": ["float32", "bfloat16"], "batch": [6]}
    choice = tune("test-reject", "tiny 64px", axes, run, min_cosine=1.0)
    assert choice.setting == {"dtype": "float32", "batch": 6}
    assert choice.timings_ms["dtype=bfloat16,batch=6"] is None
    assert any(n.startswith("dtype=bfloat16,batch=6: rejected, cosine") for n in choice.notes)
    # the same candidate passes the real bound (bf16 rounding keeps cosine >= 0.999 on this model)
    with torch.inference_mode():
        lossy = run({"dtype": "bfloat16", "batch": 6})
        exact = run({"dtype": "float32", "batch": 6})
    assert 0.999 < min_row_cosine(lossy, exact) < 1.0


def test_environment_override_wins(fresh_cache, monkeypatch):
    monkeypatch.setenv("C2F_TUNE_CLIP_IMAGE", '{"dtype": "float32", "batch": 4}')
    enc = tiny_clip()
    out = enc.encode_images(FRAMES)
    assert enc.image_setting == {"dtype": "float32", "batch": 4, "memory_format": "contiguous"}
    assert made("clip-image").source == "env" and out.shape == (6, enc.image_dim)
    assert not fresh_cache.exists()  # nothing measured, nothing written


@pytest.mark.parametrize("value", ['{"dtype": "float64"}', '{"batch": 0}', "float32"])
def test_bad_override_is_one_clear_error(fresh_cache, monkeypatch, value):
    monkeypatch.setenv("C2F_TUNE_CLIP_IMAGE", value)
    with pytest.raises(C2FError, match="C2F_TUNE_"):
        tiny_clip().encode_images(FRAMES)


def test_tuned_encoder_agrees_with_float32(fresh_cache, monkeypatch):
    """Whatever the measurement picks here, the embeddings stay within the bound of float32 on the
    inputs it was tuned on (image and text towers)."""
    monkeypatch.delenv("C2F_CPU_BF16", raising=False)
    texts = ["she hands him the keys", "a red car drives by"]
    tuned = tiny_clip()
    img, txt = tuned.encode_images(FRAMES), tuned.encode_text(texts)
    monkeypatch.setenv("C2F_TUNE_CLIP_IMAGE", '{"dtype": "float32"}')
    monkeypatch.setenv("C2F_TUNE_CLIP_TEXT", '{"dtype": "float32"}')
    exact = tiny_clip()
    assert min_row_cosine(img, exact.encode_images(FRAMES)) >= MIN_COSINE
    assert min_row_cosine(txt.pooled, exact.encode_text(texts).pooled) >= MIN_COSINE


@pytest.mark.parametrize("flag", ["0", "1"])
def test_forced_dtype_is_used_and_agrees_with_float32(fresh_cache, monkeypatch, flag):
    """C2F_CPU_BF16 overrides the measured dtype (batch and memory format are still measured)."""
    monkeypatch.setenv("C2F_CPU_BF16", flag)
    enc = tiny_clip()
    img, txt = enc.encode_images(FRAMES), enc.encode_text(["she hands him the keys"])
    want = torch.bfloat16 if flag == "1" else torch.float32
    assert enc.dtype == want and enc.text_setting["dtype"] == str(want).removeprefix("torch.")
    assert made("clip-image").shape.endswith(f"C2F_CPU_BF16={flag}")  # cached apart from the measured choice
    monkeypatch.setenv("C2F_TUNE_CLIP_IMAGE", '{"dtype": "float32"}')
    monkeypatch.setenv("C2F_TUNE_CLIP_TEXT", '{"dtype": "float32"}')
    exact = tiny_clip()
    # bf16 weights: rounding only (the tiny random model is less tolerant than the real ones)
    assert min_row_cosine(img, exact.encode_images(FRAMES)) > 0.999
    assert min_row_cosine(txt.pooled, exact.encode_text(["she hands him the keys"]).pooled) > 0.999
