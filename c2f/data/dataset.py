"""Feature corpora and query tokens for training and evaluation.

Text tokens must come from the same frozen encoder at training and inference: a checkpoint records
it as `text_encoder` = {"kind": "clip", "arch", "weights"} (CLIP text tower per-token outputs) or
{"kind": "words", "vectors": {word: [...]}} (the synthetic benchmark's word table).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from c2f.errors import C2FError
from c2f.features import ClipFeatures, FeatureSettings, load_features
from c2f.features.subtitles import align_subtitles
from c2f.model.c2f import VideoInput
from c2f.model.config import C2FConfig
from c2f.model.inference import Corpus

TokenEncoder = Callable[[list[str]], list[np.ndarray]]


def text_token_encoder(
    spec: dict[str, Any], settings: FeatureSettings | None = None, device: str | None = None
) -> TokenEncoder:
    if spec.get("kind") == "words":
        table = {w: np.asarray(v, np.float32) for w, v in spec["vectors"].items()}
        unknown = np.zeros_like(next(iter(table.values())))

        def words(texts: list[str]) -> list[np.ndarray]:
            return [np.stack([table.get(w, unknown) for w in ["<s>", *t.split(), "</s>"]]) for t in texts]

        return words
    if spec.get("kind") == "clip":
        from dataclasses import replace

        from c2f.encoders import create_clip_encoder
        from c2f.features import get_preset

        base = settings or get_preset("clip-only")
        enc = create_clip_encoder(
            replace(base, clip_model=spec["arch"], clip_weights=spec["weights"]), device
        )

        def clip_tokens(texts: list[str]) -> list[np.ndarray]:
            if not texts:
                return []
            emb = enc.encode_text(texts)
            return [emb.tokens[i, emb.mask[i]].numpy() for i in range(len(texts))]

        return clip_tokens
    raise C2FError(f"unknown text encoder {spec!r}")


def video_input(feats: ClipFeatures, encode_tokens: TokenEncoder | None) -> VideoInput:
    """Features + subtitle segments (HERO alignment); subtitle tokens from `encode_tokens`."""
    al = align_subtitles(feats.subtitles, feats.num_clips, feats.settings.clip_seconds)
    texts = [feats.subtitles[k].text for k, _ in al.segments if k >= 0]
    toks = iter(encode_tokens(texts) if (encode_tokens and texts) else [])
    segments = [
        (clips, next(toks) if (k >= 0 and encode_tokens and texts) else None) for k, clips in al.segments
    ]
    return VideoInput(feats.features, segments)


def corpus_from_feature_dir(
    directory: str | Path, meta: dict[str, Any], cfg: C2FConfig, encode_tokens: TokenEncoder | None = None
) -> tuple[Corpus, FeatureSettings | None]:
    """Every <vid_name>.safetensors in a folder, checked against the checkpoint's feature settings."""
    d = Path(directory)
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise C2FError(f"no feature files (*.safetensors) in {d}")
    expected = FeatureSettings.from_dict(meta["feature_settings"]) if meta.get("feature_settings") else None
    names, videos, durations = [], [], []
    for f in files:
        feats = load_features(f, expected=expected)
        if feats.dim != cfg.video_dim:
            raise C2FError(f"{f.name}: {feats.dim}-d features, the model expects {cfg.video_dim}")
        names.append(f.stem)
        videos.append(video_input(feats, encode_tokens))
        durations.append(feats.video.duration)
    return Corpus(names, videos, durations, expected.clip_seconds if expected else 1.5), expected
