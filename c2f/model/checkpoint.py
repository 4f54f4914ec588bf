"""Checkpoints: `model.safetensors` + `config.json` (model config, feature settings, text encoder,
training summary) in one folder; loadable with no extra flags, never a pickle."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from c2f.device import pick_device
from c2f.errors import CheckpointError
from c2f.features.settings import FeatureSettings
from c2f.model.c2f import C2FModel
from c2f.model.config import C2FConfig

# Bumped whenever the architecture changes. 2: the Fusion localizer reads the query's token
# embeddings W^emb (Eq. 5) and has its own query encoder for q_c; the query encoder is one module.
FORMAT = "c2f-checkpoint-2"


def save_checkpoint(
    directory: str | Path,
    model: C2FModel,
    feature_settings: FeatureSettings | None,
    text_encoder: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "model": model.cfg.to_dict(),
        "feature_settings": feature_settings.to_dict() if feature_settings else None,
        "text_encoder": text_encoder,
        "extra": extra or {},
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".safetensors")
    os.close(fd)
    save_file(state, tmp)
    os.replace(tmp, d / "model.safetensors")
    (d / "config.json.tmp").write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(d / "config.json.tmp", d / "config.json")
    return d


def read_checkpoint_meta(directory: str | Path) -> dict[str, Any]:
    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise CheckpointError(f"{d}: not a C2F checkpoint (expected config.json and model.safetensors in it)")
    try:
        meta = json.loads((d / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{d}/config.json is not valid JSON ({exc})") from None
    if meta.get("format") == "c2f-checkpoint-1":
        raise CheckpointError(
            f"{d}: checkpoint format c2f-checkpoint-1 is from an older C2F model (before {FORMAT}); "
            "its weights do not fit the current architecture: train it again"
        )
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{d}: unknown checkpoint format {meta.get('format')!r} (expected {FORMAT})")
    return meta


def load_checkpoint(
    directory: str | Path,
    device: str | torch.device | None = None,
    expected_features: FeatureSettings | None = None,
) -> tuple[C2FModel, dict[str, Any]]:
    from safetensors.torch import load_file

    d = Path(directory)
    meta = read_checkpoint_meta(d)
    cfg = C2FConfig.from_dict(meta["model"])
    if expected_features is not None and meta.get("feature_settings"):
        FeatureSettings.from_dict(meta["feature_settings"]).check_compatible(
            expected_features, what="features"
        )
    model = C2FModel(cfg)
    try:
        state = load_file(str(d / "model.safetensors"))
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # truncated file, wrong tensors
        raise CheckpointError(
            f"{d}/model.safetensors does not fit its config ({type(exc).__name__}: {exc})"
        ) from None
    model.to(pick_device(str(device) if device is not None else None)).eval()
    return model, meta


def checkpoint_fingerprint(directory: str | Path) -> str:
    """Names the index built from a checkpoint's V_temp vectors."""
    h = hashlib.sha256((Path(directory) / "model.safetensors").read_bytes()).hexdigest()
    return h[:16]
