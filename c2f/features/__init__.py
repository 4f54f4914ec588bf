"""Clip-level features: settings, the on-disk format, extraction and subtitles."""

from c2f.features.settings import PRESETS, FeatureSettings, get_preset
from c2f.features.store import ClipFeatures, Subtitle, VideoMeta, load_features, save_features

__all__ = [
    "PRESETS",
    "ClipFeatures",
    "FeatureSettings",
    "Subtitle",
    "VideoMeta",
    "get_preset",
    "load_features",
    "save_features",
]
