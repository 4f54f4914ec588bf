"""Feature settings: every knob that changes what a clip vector means, stored beside the vectors.

Two feature files (or a file and an index, or a file and a checkpoint) are compatible exactly when
their settings fingerprints are equal; anything else is a `FeatureMismatchError`, never silent reuse.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from c2f.errors import FeatureMismatchError


@dataclass(frozen=True)
class FeatureSettings:
    preset: str  # name it was made from, e.g. "default", "clip-only", "tiny"
    clip_model: str = "ViT-B-32"  # open_clip architecture name
    clip_weights: str = "openai"  # open_clip pretrained tag, or "random" for tiny test models
    s3d_weights: str | None = "KINETICS400_V1"  # torchvision S3D weights; None = no S3D stream
    clip_seconds: float = 1.5  # one feature vector per clip of this length (TVR/VALUE grid)
    clip_frames_per_clip: int = 1  # frames CLIP sees per clip (their embeddings are averaged)
    s3d_frames_per_clip: int = 16  # frames S3D sees per clip, evenly spaced
    clip_image_size: int = 224  # CLIP input (resize short side + centre crop)
    s3d_image_size: int = 224  # S3D input (resize short side + centre crop)
    tiny: bool = False  # randomly initialised tiny models: results are meaningless
    # Added later; left out of the fingerprint at their defaults (older files keep theirs):
    s3d_model: str = "s3d"  # "s3d": torchvision Kinetics S3D; "s3dg": MIL-NCE S3D-G (HowTo100M)
    # "c2f": C2F's own sampling, L2-normalised streams; "value": VALUE/HERO's extraction exactly
    # (c2f/features/value.py: ffmpeg fps/scale/crop, raw float16 outputs, HERO's 32-frame pick)
    extraction: str = "c2f"

    @property
    def uses_s3d(self) -> bool:
        return self.s3d_weights is not None

    @property
    def frames_per_clip(self) -> int:
        """Frames decoded per clip: as many as the stream that needs most."""
        return max(self.clip_frames_per_clip, self.s3d_frames_per_clip if self.uses_s3d else 1)

    @property
    def decode_fps(self) -> float:
        """Frames per second the decoder must deliver so that every stream gets its frames."""
        return self.frames_per_clip / self.clip_seconds

    @property
    def decode_short_side(self) -> int:
        """Short side of the decoded frames: the largest input size of the streams."""
        return max(self.clip_image_size, self.s3d_image_size if self.uses_s3d else 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FeatureMismatchError(f"unknown feature settings {sorted(unknown)}: made by a newer C2F?")
        return cls(**data)

    def fingerprint(self) -> str:
        """Short stable hash of everything that changes the vectors (the preset name excluded)."""
        data = self.to_dict()
        data.pop("preset")
        for name, default in _LATER_FIELDS.items():
            if data[name] == default:
                del data[name]
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def check_compatible(self, other: FeatureSettings, what: str = "features") -> None:
        if self.fingerprint() != other.fingerprint():
            diff = {
                k: (v, other.to_dict()[k])
                for k, v in self.to_dict().items()
                if k != "preset" and other.to_dict()[k] != v
            }
            raise FeatureMismatchError(
                f"{what} were made with other feature settings ({other.preset!r} vs {self.preset!r}); "
                f"differences (expected, found): {diff}. Re-extract them with the expected preset."
            )


_LATER_FIELDS = {"s3d_model": "s3d", "extraction": "c2f"}

PRESETS: dict[str, FeatureSettings] = {
    # VALUE/HERO "clip-vit_mil-nce"-like: CLIP ViT-B/32 (512) + S3D (1024) = 1536-d per 1.5 s clip.
    "default": FeatureSettings(preset="default"),
    # Fast CPU indexing: CLIP only (512-d), one frame per clip.
    "clip-only": FeatureSettings(preset="clip-only", s3d_weights=None),
    # Faster CPU indexing with both streams: S3D sees 160 px instead of 224 px (about half the
    # S3D compute). Its Kinetics weights were trained at 224 px, so the motion stream is a little
    # less faithful; not compatible with "default" features (the fingerprint differs).
    "fast": FeatureSettings(preset="fast", s3d_image_size=160),
    # Tests: tiny random CLIP of the same architecture family + random S3D at a small input size.
    "tiny": FeatureSettings(
        preset="tiny",
        clip_model="c2f-tiny-ViT",
        clip_weights="random",
        s3d_weights="random",
        s3d_frames_per_clip=8,
        clip_image_size=64,
        s3d_image_size=64,
        tiny=True,
    ),
    # VALUE/HERO "clip-vit_mil-nce" exactly (the released TVR features; learned mode, training):
    # CLIP ViT-B/32 openai on one frame per 1.5 s (ffmpeg fps=2/3), short side 224 + 224 centre
    # crop, raw encode_image output; MIL-NCE S3D-G on 1.5 s clips decoded at 30 fps (short side
    # 224 + 224 centre crop), 32 of the 45 frames by HERO's temporal_sampling, input in [0, 1],
    # mixed_5c (1024). Each stream rounded to float16, not normalised; [CLIP; S3D] = 1536-d.
    "value": FeatureSettings(
        preset="value",
        s3d_weights="howto100m",
        s3d_model="s3dg",
        s3d_frames_per_clip=32,
        extraction="value",
    ),
    # Tests: the value pipeline with tiny random CLIP (64 px) and S3D-G (32 px) frames.
    "tiny-value": FeatureSettings(
        preset="tiny-value",
        clip_model="c2f-tiny-ViT",
        clip_weights="random",
        s3d_weights="random",
        s3d_model="s3dg",
        s3d_frames_per_clip=32,
        clip_image_size=64,
        s3d_image_size=32,
        extraction="value",
        tiny=True,
    ),
    "tiny-clip-only": FeatureSettings(
        preset="tiny-clip-only",
        clip_model="c2f-tiny-ViT",
        clip_weights="random",
        s3d_weights=None,
        clip_image_size=64,
        tiny=True,
    ),
}


def get_preset(name: str, **overrides: Any) -> FeatureSettings:
    try:
        base = PRESETS[name]
    except KeyError:
        raise FeatureMismatchError(f"unknown feature preset {name!r}; known: {sorted(PRESETS)}") from None
    return replace(base, **overrides) if overrides else base
