"""C2F model configuration: a small dataclass saved inside every checkpoint (config.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from c2f.errors import CheckpointError

HIGHLIGHT_LOSSES = ("l1-balanced", "l1", "bce")


@dataclass(frozen=True)
class C2FConfig:
    video_dim: int = 1536  # input clip feature size (CLIP 512 + S3D 1024 with the default preset)
    token_dim: int = 512  # input text token size (CLIP text tower width)
    hidden: int = 768  # model width d
    heads: int = 12
    ffn: int = 3072
    cross_layers: int = 6  # f_cross: cross-modal transformer over [clips ; SEP ; subtitle tokens]
    temporal_layers: int = 3  # f_temp: temporal transformer over the whole video
    dropout: float = 0.1
    max_clips: int = 100  # position embeddings of the video timeline
    max_tokens: int = 60  # position embeddings of subtitle/query tokens
    localizer: str = "fusion"  # "base" (HERO Eq. 4) or "fusion" (paper 2.2)
    # training
    margin: float = 0.1  # hinge ranking loss margin
    hard_negatives: int = 20  # top-k negatives weighted x10 after the warm-up, the rest x0.1
    retrieval_weight: float = 8.0  # HERO weighs each ranking direction x8
    localizer_weight: float = 1.0
    # Eq. 10's importance loss (c2f.train.losses.localizer_loss): "l1-balanced" (default), the
    # paper's L1 with inside-span and outside clips weighing half each; "l1" as the paper writes it,
    # which shuts the gate S_h within ~100 steps and stalls Fusion below Base on some seeds; "bce",
    # VSLNet's weighted cross-entropy. Measured: BENCHMARKS.md, README "Fidelity to the paper".
    highlight_loss: str = "l1-balanced"
    # Initial bias of Eq. 7's importance logit (> 0: the gate starts open); a measured alternative
    # remedy for the shut gate, 0 by default
    gate_bias: float = 0.0
    augment: bool = False  # paper 2.4 augmentation of video, subtitle and query embeddings
    augment_prob: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> C2FConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CheckpointError(f"unknown model config fields {sorted(unknown)}")
        # a checkpoint saved before the option existed was trained with the paper's L1
        cfg = cls(**{"highlight_loss": "l1", **data})
        if cfg.localizer not in ("base", "fusion"):
            raise CheckpointError(f"localizer must be 'base' or 'fusion', not {cfg.localizer!r}")
        if cfg.highlight_loss not in HIGHLIGHT_LOSSES:
            raise CheckpointError(
                f"highlight_loss must be one of {', '.join(HIGHLIGHT_LOSSES)}, not {cfg.highlight_loss!r}"
            )
        return cfg


PRESETS: dict[str, C2FConfig] = {
    # Model: HERO's fine-tuning encoder (config/hero_finetune.json: f_config 6 layers, c_config 3
    # layers, hidden 768, 12 heads, FFN 3072, dropout 0.1; train-tvr-8gpu.json max_clip_len 100,
    # max_txt_len 60, margin 0.1, hard_pool_size 20, lw_neg_ctx = lw_neg_q = 8). Paper 2.2: the
    # Fusion localizer; Eq. 10 gives its loss (no weight against the ranking loss: 1.0 here; HERO's
    # lw_st_ed 0.01 weighs its own convolution span head). Paper 2.4: augmentation p = 0.5.
    "paper": C2FConfig(),
    "small": C2FConfig(hidden=256, heads=4, ffn=1024, cross_layers=2, temporal_layers=2),
    "tiny": C2FConfig(hidden=64, heads=2, ffn=128, cross_layers=1, temporal_layers=1, dropout=0.1),
}


def get_config(name: str, **overrides: Any) -> C2FConfig:
    if name not in PRESETS:
        raise CheckpointError(f"unknown model config {name!r}; known: {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


# Training hyper-parameters per preset (fields of c2f.train.TrainSettings), with their sources.
# HERO = linjieli222/HERO config/train-tvr-8gpu.json (VALUE StarterCode's train-tvr-8gpu.json has the
# same values); the paper gives no optimiser settings, it follows HERO.
TRAINING_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "batch_size": 32,  # HERO train_batch_size: 32 queries per GPU, in-batch negatives per GPU
        "grad_accum": 16,  # HERO: 8 GPUs x gradient_accumulation_steps 2 -> 512 queries per update
        "steps": 5000,  # HERO num_train_steps (optimizer updates)
        "lr": 1e-4,  # HERO learning_rate
        "warmup": 500,  # HERO warmup_steps (linear warm-up, then linear decay)
        "weight_decay": 0.01,  # HERO weight_decay (AdamW, betas 0.9 / 0.98 as HERO)
        "grad_clip": 1.0,  # HERO grad_norm
        "hard_negative_after": 2000,  # HERO hard_negative_start_step (pool 20, weight 10)
        "eval_every": 200,  # HERO valid_steps
        "seed": 77,  # HERO seed
        # HERO trains in fp16 (apex O2); C2F uses bf16 autocast on the GPU
    },
}


def training_preset(name: str) -> dict[str, Any]:
    """TrainSettings values of a model preset ({} when the preset has none)."""
    return dict(TRAINING_PRESETS.get(name, {}))
