"""Clip vector index (faiss) with exact video ranking by max over clips."""

from c2f.index.clip_index import ClipIndex, VideoHit, brute_force_top_videos

__all__ = ["ClipIndex", "VideoHit", "brute_force_top_videos"]
