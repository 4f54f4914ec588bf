"""The `value` extraction: VALUE/HERO's "clip-vit_mil-nce" features of a video, computed as
HERO_Video_Feature_Extractor does (clip/ and mil-nce/), so that a checkpoint trained on the released
TVR features reads features of the user's own videos.

Both streams decode with the same ffmpeg filters as those loaders (`fps`, `scale`, `crop`, rgb24), on
the stream's stored width/height (ffprobe's, as they do: rotation and pixel aspect are not applied):
  scale to (W, H) = short side S, long side int(long * S / short); centre crop S x S at
  (int((W - S) / 2), int((H - S) / 2)).

CLIP: `fps=0.6666666666666666` (= 2/3; `fps=2/max(int(d), 1)` for a video shorter than 1.6 s). The fps
filter (rounding `near`, no start time) shows at output frame k the last source frame whose pts is
before (k + 1/2) x 1.5 s, pts counted from the first frame (a frame exactly on the half is the next
slot's), and stops after round(duration / 1.5) frames. Raw `encode_image` output, rounded to float16.
Precision as HERO's extractor, never under autocast: CLIP with float16 weights on a GPU (as OpenAI's
clip.load converts them: layer norms in float32) and float32 on a CPU (bfloat16 only when
C2F_CPU_BF16=1, as S3D-G), not in the setting the tuner measured for the shared encoder: a bfloat16
tower passes the tuner's bound (cosine 0.9999 to float32) yet moves the raw values far more than
their float16 rounding, and which one a process had would depend on what it encoded before.
S3D-G in float32 on every device (bfloat16 on a CPU only when C2F_CPU_BF16=1).

S3D-G: `fps=30`; the frames are padded to whole seconds by repeating the last frame, then to a
multiple of 3 seconds by repeating the last second (30 frames), cut into 45-frame clips, and the
first ceil(d / 1.5) clips are kept (d = the stream's duration from ffprobe; all clips when it has
none). Of each clip HERO's temporal_sampling takes frames linspace(0, 64 x fps / 30 - 1, 32) (float32,
clamped to 0..44, truncated to int), fps = floor(the stream's avg_frame_rate). Input in [0, 1],
mixed_5c global mean, rounded to float16.

The video has N = min(CLIP frames, S3D clips) clips (VALUE's collect_video_feature_paths), features
[CLIP; S3D] (N, 1536) float32 (float16 values), not normalised.
"""

from __future__ import annotations

import copy
import math
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import nn

from c2f.device import forced_cpu_bf16, full_precision
from c2f.encoders.clip import ClipEncoder
from c2f.encoders.registry import create_clip_encoder, create_s3d_encoder
from c2f.errors import EmptyVideoError, FeatureMismatchError, VideoError
from c2f.features.settings import FeatureSettings
from c2f.features.store import ClipFeatures, Subtitle, VideoMeta
from c2f.video import VideoInfo
from c2f.video.pipe import FfmpegPipe, OutputLimit, frame_limit
from c2f.video.tools import ffmpeg_exe

S3D_FPS = 30  # mil-nce/extract.py --target_framerate
CLIP_SECONDS = Fraction(3, 2)  # --clip_len 3/2
S3D_CLIP_FRAMES = 45  # 1.5 s at 30 fps
S3D_NUM_FRAMES, S3D_SAMPLING_RATE = 32, 2  # mil-nce/preprocessing.py
SHORT_VIDEO_SECONDS = 1.5 + 0.1  # clip/video_loader.py: below this CLIP decodes at 2 / int(d) fps


@dataclass(frozen=True)
class ValueProbe:
    """What VALUE's loaders read from ffprobe's first video stream."""

    width: int  # stored width (no rotation, no pixel aspect)
    height: int
    fps: int  # floor(avg_frame_rate)
    duration: float  # the stream's duration; -1 when ffprobe gives no duration or frame count


def value_probe(path: str | Path) -> ValueProbe:
    import ffmpeg

    from c2f.video.tools import ffprobe_exe

    try:
        meta = ffmpeg.probe(str(path), cmd=ffprobe_exe())
    except ffmpeg.Error as exc:
        raise VideoError(str(path), "ffprobe could not read it") from exc
    stream = next((s for s in meta.get("streams", []) if s.get("codec_type") == "video"), None)
    if stream is None:
        raise VideoError(str(path), "no video stream")
    # VALUE: floor(avg_frame_rate) (it fails on "0/0"; then the nominal r_frame_rate is taken)
    fps = _floor_rate(stream.get("avg_frame_rate")) or _floor_rate(stream.get("r_frame_rate"))
    try:  # as VALUE: both fields, or no duration at all
        int(stream["nb_frames"])
        duration = float(stream["duration"])
    except (KeyError, ValueError):
        duration = -1.0
    return ValueProbe(int(stream["width"]), int(stream["height"]), fps, duration)


def _floor_rate(text: object) -> int:
    num, _, den = str(text).partition("/")
    try:
        return math.floor(float(num) / float(den or 1))
    except (ValueError, ZeroDivisionError):
        return 0


def scaled_size(probe: ValueProbe, size: int) -> tuple[int, int]:
    """(width, height) of VALUE's scale filter: short side `size`, long side truncated."""
    w, h = probe.width, probe.height
    if h >= w:
        return size, int(h * size / w)
    return int(w * size / h), size


def ffmpeg_command(path: str | Path, fps: float | int, probe: ValueProbe, size: int) -> list[str]:
    """The command ffmpeg-python builds in VALUE's loaders: fps -> scale -> centre crop -> rgb24."""
    w, h = scaled_size(probe, size)
    x, y = int((w - size) / 2.0), int((h - size) / 2.0)
    graph = f"[0]fps=fps={fps}[s0];[s0]scale={w}:{h}[s1];[s1]crop={size}:{size}:{x}:{y}[s2]"
    return [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-filter_complex", graph,
            "-map", "[s2]", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]  # fmt: skip


def clip_fps(probe: ValueProbe) -> float:
    """CLIP's decoding rate: 1 / 1.5 s, or 2 / int(d) frames per second for a video under 1.6 s."""
    if 0 < probe.duration < SHORT_VIDEO_SECONDS:
        return 2 / max(int(probe.duration), 1)
    return 1 / float(CLIP_SECONDS)


def iter_ffmpeg_frames(
    cmd: list[str], size: int, chunk: int, path: str, limit: OutputLimit | None = None
) -> Iterator[np.ndarray]:
    """uint8 (t <= chunk, size, size, 3) from an ffmpeg rawvideo pipe; the process ends with the
    caller. More than `limit` refuses the file (CorruptVideoError)."""
    frame_bytes = size * size * 3
    with FfmpegPipe(cmd, path, limit=limit) as pipe:
        while True:
            raw = pipe.read(frame_bytes * chunk)  # writable (torch refuses read-only buffers)
            n = len(raw) // frame_bytes
            if n:
                yield np.frombuffer(raw, np.uint8, count=n * frame_bytes).reshape(n, size, size, 3)
            if n < chunk:
                break
        if pipe.wait() != 0:
            reason = pipe.last_line()
            raise VideoError(path, "ffmpeg failed" + (f" ({reason})" if reason else ""))


def s3d_frame_pick(fps: int) -> np.ndarray:
    """HERO's temporal_sampling of one 45-frame clip: (32,) frame indices."""
    span = S3D_NUM_FRAMES * S3D_SAMPLING_RATE * fps / S3D_FPS  # frames of the source rate, at 30 fps
    index = torch.linspace(0, span - 1, S3D_NUM_FRAMES)  # float32, as torch computes it there
    return torch.clamp(index, 0, S3D_CLIP_FRAMES - 1).long().numpy()


def s3d_clip_count(probe: ValueProbe) -> int | None:
    """ceil(d / 1.5) clips, or None (every decoded clip) when ffprobe gives no duration."""
    return math.ceil(probe.duration / float(CLIP_SECONDS)) if probe.duration > 0 else None


def iter_s3d_clips(frames: Iterator[np.ndarray], pick: np.ndarray, limit: int | None) -> Iterator[np.ndarray]:
    """30 fps frames -> (2, 32, S, S, 3) pairs of sampled clips, VALUE's tail padding, at most `limit`.

    Whole 90-frame blocks (3 s = 2 clips) need no padding; the rest (r < 90 frames) is padded to
    whole seconds with its last frame, then to 90 frames with copies of its last second.
    """
    block = 2 * S3D_CLIP_FRAMES
    pending: list[np.ndarray] = []
    have = emitted = 0

    def clips_of(frames90: np.ndarray) -> np.ndarray:  # called only while emitted < limit
        nonlocal emitted
        pair = frames90.reshape(2, S3D_CLIP_FRAMES, *frames90.shape[1:])[:, pick]  # (2, 32, S, S, 3)
        room = 2 if limit is None else min(2, limit - emitted)
        emitted += room
        return pair[:room]

    for chunk in frames:
        pending.append(chunk)
        have += len(chunk)
        while have >= block and (limit is None or emitted < limit):
            buf = np.concatenate(pending)
            yield clips_of(buf[:block])
            pending, have = [buf[block:]], have - block
        if limit is not None and emitted >= limit:
            return
    if have == 0:
        return
    tail = np.concatenate(pending)  # (r, S, S, 3), 0 < r < 90
    whole = -(-len(tail) // S3D_FPS) * S3D_FPS
    tail = np.concatenate([tail, np.repeat(tail[-1:], whole - len(tail), axis=0)])
    last_second = tail[-S3D_FPS:]
    while len(tail) < block:
        tail = np.concatenate([tail, last_second])
    yield clips_of(tail)


def clip_stream_frames(
    path: str | Path, probe: ValueProbe, size: int, duration: float = -1.0
) -> Iterator[np.ndarray]:
    """The frames CLIP sees, uint8 (t, size, size, 3) groups, in order; more than `duration`
    (seconds, <= 0: unknown) allows refuses the file."""
    fps = clip_fps(probe)
    cmd = ffmpeg_command(path, fps, probe, size)
    yield from iter_ffmpeg_frames(cmd, size, 64, str(path), frame_limit(duration, fps, size * size * 3))


def s3d_stream_clips(
    path: str | Path, probe: ValueProbe, size: int, limit: int | None, duration: float = -1.0
) -> Iterator[np.ndarray]:
    """The clips S3D-G sees: uint8 (<= 2, 32, size, size, 3) groups, at most `limit` clips in all;
    more frames than `duration` (seconds, <= 0: unknown) allows refuses the file."""
    cmd = ffmpeg_command(path, S3D_FPS, probe, size)
    frames = iter_ffmpeg_frames(cmd, size, 2 * S3D_CLIP_FRAMES, str(path), frame_limit(duration, S3D_FPS, size * size * 3))
    try:
        yield from iter_s3d_clips(frames, s3d_frame_pick(probe.fps), limit)
    finally:
        frames.close()  # ends ffmpeg when the caller stops early


def _check(settings: FeatureSettings) -> None:
    if settings.s3d_weights is None or settings.s3d_model != "s3dg":
        raise FeatureMismatchError(f"preset {settings.preset!r}: the value extraction needs the MIL-NCE S3D-G stream")
    if settings.clip_seconds != float(CLIP_SECONDS) or settings.s3d_frames_per_clip != S3D_NUM_FRAMES:
        raise FeatureMismatchError(
            f"preset {settings.preset!r}: the value extraction has 1.5 s clips and 32 S3D frames per clip"
        )


def value_tower_dtype(device: torch.device) -> torch.dtype:
    """The dtype of CLIP's weights in VALUE's extraction: float16 on a GPU (OpenAI's clip.load
    converts them there), float32 on a CPU (bfloat16 only when C2F_CPU_BF16=1)."""
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if forced_cpu_bf16() else torch.float32


def value_image_tower(clip_enc: ClipEncoder) -> nn.Module:
    """CLIP's image tower in VALUE's precision (`value_tower_dtype`): the shared encoder's own tower
    when it is wholly in that dtype (float32 or bfloat16 on a CPU), else a copy made once."""
    want = value_tower_dtype(clip_enc.device)
    visual = clip_enc.model.visual
    if want != torch.float16 and next(visual.parameters()).dtype == want:
        return visual
    return _image_tower_in(clip_enc, want)


def openai_half(tower: nn.Module) -> nn.Module:
    """float16 weights as OpenAI's convert_weights leaves them (clip.load on a GPU): convolutions,
    linear layers, attention and the projection in float16; layer norms keep float32 weights and
    compute in float32; the class and position embeddings are cast to the activations' dtype where
    they are added (open_clip's forward does that). In place; returns `tower`."""
    from open_clip.model import convert_weights_to_lp
    from open_clip.transformer import LayerNormFp32

    convert_weights_to_lp(tower, torch.float16)
    for module in tower.modules():
        if isinstance(module, nn.LayerNorm):
            module.__class__ = LayerNormFp32  # same parameters; x.float() in, x's dtype out
    return tower


# encoder -> {dtype: its image tower in that dtype}, kept as long as the encoder is
_towers: weakref.WeakKeyDictionary[ClipEncoder, dict[torch.dtype, nn.Module]] = weakref.WeakKeyDictionary()
_towers_lock = threading.Lock()


@torch.inference_mode(False)  # ordinary parameters, whoever asks
def _image_tower_in(clip_enc: ClipEncoder, dtype: torch.dtype) -> nn.Module:
    """A copy of the encoder's image tower in `dtype` (made once; the encoder's stays as tuned);
    float16 the OpenAI way (`openai_half`)."""
    with _towers_lock:
        kept = _towers.setdefault(clip_enc, {})
        if dtype not in kept:
            visual = clip_enc.model.visual
            if next(visual.parameters()).dtype == torch.float32:
                tower = copy.deepcopy(visual)
            else:  # tuning cast the tower and dropped its float32 weights (rounded now): load them again
                tower = ClipEncoder(clip_enc.arch, clip_enc.weights, clip_enc.device).model.visual
            kept[dtype] = openai_half(tower) if dtype == torch.float16 else tower.to(dtype)
        return kept[dtype]


@torch.inference_mode()
def encode_clip_raw(clip_enc: ClipEncoder, frames: np.ndarray, batch_size: int = 64) -> torch.Tensor:
    """uint8 (T, S, S, 3) -> (T, d) raw CLIP image embeddings (not normalised), float16-rounded.
    Autocast is off: the tower's own dtypes, as in VALUE's extractor."""
    visual = value_image_tower(clip_enc)  # open_clip's encode_image(x) is visual(x) without normalize
    dtype = visual.conv1.weight.dtype  # the input's dtype, as encode_image casts it
    out = []
    for s in range(0, len(frames), batch_size):
        x = clip_enc.preprocess(frames[s : s + batch_size]).to(dtype)  # already S x S: only mean/std
        with full_precision():
            emb = visual(x)
        out.append(emb.float().cpu())
    return torch.cat(out).half().float() if out else torch.zeros(0, clip_enc.image_dim)


def extract_value_features(
    path: str | Path,
    settings: FeatureSettings,
    video_id: str,
    subtitles: list[Subtitle],
    info: VideoInfo,
    content_hash: str,
    device: torch.device | str | None = None,
    progress: Callable[[float, float], None] | None = None,
    clips_per_batch: int | None = None,
) -> ClipFeatures:
    """One video's `value` features (see the module docstring); `info` is C2F's own probe."""
    _check(settings)
    meta = VideoMeta(
        source_name=Path(path).name,
        content_hash=content_hash,
        duration=info.duration,
        fps=info.fps,
        width=info.width,
        height=info.height,
    )
    path = str(path)
    probe = value_probe(path)
    clip_enc = create_clip_encoder(settings, device)
    s3d_enc = create_s3d_encoder(settings, device)
    clip_size, s3d_size = settings.clip_image_size, settings.s3d_image_size

    # CLIP: few frames (one per 1.5 s), encoded in groups as they arrive
    # (both streams refuse more frames than C2F's probed duration allows: timestamps that jump
    # make the fps filter fill the gap with copies, gigabytes of them)
    clip_vecs = [
        encode_clip_raw(clip_enc, frames) for frames in clip_stream_frames(path, probe, clip_size, info.duration)
    ]
    n_clip = sum(len(v) for v in clip_vecs)
    if n_clip == 0:
        raise EmptyVideoError(path, "ffmpeg's fps filter gave no frame (no decodable video frame?)")
    # S3D: 30 fps frames, decoded in a thread while the clips are encoded; stop after CLIP's count
    from c2f.features.extract import _prefetch

    limit = s3d_clip_count(probe)
    limit = n_clip if limit is None else min(limit, n_clip)
    clips = s3d_stream_clips(path, probe, s3d_size, limit, info.duration)
    group = clips_per_batch or 8  # clips per encoder call
    s3d_vecs: list[torch.Tensor] = []
    batch: list[np.ndarray] = []
    done = 0
    try:
        for pair in _prefetch(clips):  # (<= 2, 32, S, S, 3)
            batch.append(pair)
            if sum(len(b) for b in batch) >= group or done + sum(len(b) for b in batch) >= limit:
                s3d_vecs.append(s3d_enc.encode_clips(np.concatenate(batch)))  # (g, 1024)
                done += len(s3d_vecs[-1])
                batch = []
                if progress:
                    progress(min(done * float(CLIP_SECONDS), meta.duration), meta.duration)
    finally:
        clips.close()  # stops ffmpeg once the clips VALUE keeps are decoded
    if batch:
        s3d_vecs.append(s3d_enc.encode_clips(np.concatenate(batch)))
    s3d = torch.cat(s3d_vecs).half().float() if s3d_vecs else torch.zeros(0, s3d_enc.dim)

    n = min(n_clip, len(s3d))
    if n == 0:
        raise EmptyVideoError(path, "no 30 fps frame decoded for the S3D-G stream")
    features = torch.cat([torch.cat(clip_vecs)[:n], s3d[:n]], dim=1).numpy()  # (N, 512 + 1024)
    starts = np.arange(n) * float(CLIP_SECONDS)
    clip_times = np.stack([starts, np.minimum(starts + float(CLIP_SECONDS), meta.duration)], axis=1)
    return ClipFeatures(
        video_id=video_id,
        features=features,
        clip_times=clip_times,
        streams=[("clip", clip_enc.image_dim), ("s3d", s3d_enc.dim)],
        settings=settings,
        video=meta,
        subtitles=subtitles,
    )
