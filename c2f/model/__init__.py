"""The C2F model (HERO encoder + Base/Fusion localizer), its config and checkpoints."""

from c2f.model.c2f import C2FModel, VideoInput, build_video_batch, video_only_segments
from c2f.model.checkpoint import load_checkpoint, save_checkpoint
from c2f.model.config import C2FConfig, get_config

__all__ = [
    "C2FConfig",
    "C2FModel",
    "VideoInput",
    "build_video_batch",
    "get_config",
    "load_checkpoint",
    "save_checkpoint",
    "video_only_segments",
]
