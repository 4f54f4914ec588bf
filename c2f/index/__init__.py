"""Clip vector index (faiss) with exact video ranking by max over clips. Implemented by the integrator; extend in place."""

from c2f.index.clip_index import ClipIndex, VideoHit, brute_force_top_videos

__all__ = ["ClipIndex", "VideoHit", "brute_force_top_videos"]
