"""Video probing and decoding (no models here). Implemented by the integrator; extend in place."""

from c2f.video.decode import FrameChunk, iter_frames, sample_times
from c2f.video.probe import VideoInfo, probe_video

__all__ = ["FrameChunk", "VideoInfo", "iter_frames", "probe_video", "sample_times"]
