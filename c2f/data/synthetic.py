"""A feature-level synthetic VCMR benchmark in TVR format that needs token-level query understanding.

Each video is a sequence of events (runs of 2-4 clips showing one concept: its prototype vector plus
noise) separated by background clips. Queries read "<a> then <b>": the target moment is an event of
<a> immediately followed by an event of <b>. Every target pair is planted together with its
reverse ("<b> then <a>") in the same video, and the reverse pair is queried too: a bag of words
cannot tell the two moments apart, only the order of the tokens can. Token embeddings come from a
seeded word table (the benchmark's "text encoder"); position is left to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from c2f.data.tvr import TVRQuery

WORDS = [
    "dog",
    "car",
    "ball",
    "door",
    "cup",
    "bike",
    "tree",
    "phone",
    "hat",
    "book",
    "chair",
    "lamp",
    "boat",
    "cake",
    "kite",
    "drum",
    "fish",
    "key",
    "rope",
    "sock",
    "bell",
    "fork",
    "coin",
    "leaf",
    "star",
    "box",
    "pen",
    "egg",
    "fan",
    "map",
]
FILLERS = ["then", "<s>", "</s>"]


@dataclass
class SyntheticVCMR:
    videos: dict[str, np.ndarray]  # vid_name -> (N, Dv) clip features
    train: list[TVRQuery]
    val: list[TVRQuery]
    word_vectors: dict[str, np.ndarray]  # word -> (Dt,)
    clip_seconds: float = 1.5
    extra_videos: dict[str, np.ndarray] = field(default_factory=dict)  # unannotated (pre-training)
    extra_subtitles: dict[str, list[tuple[int, int, str]]] = field(
        default_factory=dict
    )  # (first, last clip, text)

    @property
    def token_dim(self) -> int:
        return len(next(iter(self.word_vectors.values())))

    @property
    def video_dim(self) -> int:
        return next(iter(self.videos.values())).shape[1]

    def corpus(self):
        """The annotated videos as a model corpus (video only: groups of 5 clips, no subtitles)."""
        from c2f.model.c2f import VideoInput, video_only_segments
        from c2f.model.inference import Corpus

        names = list(self.videos)
        videos = [VideoInput(self.videos[n], video_only_segments(len(self.videos[n]))) for n in names]
        return Corpus(
            names, videos, [len(self.videos[n]) * self.clip_seconds for n in names], self.clip_seconds
        )

    def tokens(self, text: str) -> np.ndarray:
        """(L, Dt): <s> words </s>."""
        words = ["<s>", *text.split(), "</s>"]
        return np.stack([self.word_vectors[w] for w in words]).astype(np.float32)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_synthetic(
    num_videos: int = 200,
    num_concepts: int = 30,
    video_dim: int = 48,
    token_dim: int = 32,
    noise: float = 0.35,
    val_fraction: float = 0.2,
    extra_videos: int = 0,
    seed: int = 0,
) -> SyntheticVCMR:
    rng = np.random.default_rng(seed)
    concepts = WORDS[:num_concepts]
    protos = _unit(rng, num_concepts, video_dim) * 2.0
    words = {
        w: v
        for w, v in zip(concepts + FILLERS, _unit(rng, num_concepts + len(FILLERS), token_dim), strict=True)
    }

    def event(c: int, length: int) -> np.ndarray:
        return protos[c] + noise * rng.normal(size=(length, video_dim))

    def background(length: int) -> np.ndarray:
        return rng.normal(size=(length, video_dim)) * 0.6

    def render(blocks: list[list[int]]) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Blocks of concepts (events back to back) separated by background; returns features and
        the clip span (inclusive) of each block."""
        parts, spans, t = [background(int(rng.integers(1, 4)))], [], 0
        t = len(parts[0])
        for block in blocks:
            start = t
            for c in block:
                ln = int(rng.integers(2, 5))
                parts.append(event(c, ln))
                t += ln
            spans.append((start, t - 1))
            gap = background(int(rng.integers(1, 4)))
            parts.append(gap)
            t += len(gap)
        return np.concatenate(parts).astype(np.float32), spans

    videos, queries = {}, []
    for v in range(num_videos):
        a, b, c = rng.choice(num_concepts, size=3, replace=False)
        blocks = [[a, b], [b, a], [c]]
        order = rng.permutation(3)
        feats, spans = render([blocks[i] for i in order])
        name = f"synth_{v:04d}"
        videos[name] = feats
        duration = len(feats) * 1.5
        for block_id in (0, 1):
            i, j = spans[int(np.flatnonzero(order == block_id)[0])]
            x, y = blocks[block_id]
            queries.append(
                TVRQuery(
                    desc_id=len(queries),
                    desc=f"{concepts[x]} then {concepts[y]}",
                    vid_name=name,
                    duration=duration,
                    ts=(i * 1.5, (j + 1) * 1.5),
                    type="v",
                )
            )
    extra, extra_subs = {}, {}
    for v in range(extra_videos):
        # unannotated videos whose subtitles name what is on screen (HERO pre-training material)
        blocks = [[int(x)] for x in rng.choice(num_concepts, size=4, replace=False)]
        feats, spans = render(blocks)
        extra[f"extra_{v:04d}"] = feats
        extra_subs[f"extra_{v:04d}"] = [
            (i, j, concepts[b[0]]) for (i, j), b in zip(spans, blocks, strict=True)
        ]
    # split by video so that validation videos are unseen
    names = list(videos)
    val_names = set(rng.choice(names, size=int(len(names) * val_fraction), replace=False).tolist())
    train = [q for q in queries if q.vid_name not in val_names]
    val = [q for q in queries if q.vid_name in val_names]
    return SyntheticVCMR(videos, train, val, words, extra_videos=extra, extra_subtitles=extra_subs)


def subtitled_inputs(data: SyntheticVCMR):
    """The unannotated videos as model inputs: one f_cross segment per subtitle (its event), the
    remaining clips in text-less groups of 5 (HERO)."""
    from c2f.model.c2f import VideoInput

    out = []
    for name, feats in data.extra_videos.items():
        segments, covered = [], np.zeros(len(feats), bool)
        for i, j, text in data.extra_subtitles[name]:
            segments.append((np.arange(i, j + 1), data.tokens(text)))
            covered[i : j + 1] = True
        rest = np.flatnonzero(~covered)
        segments += [(rest[s : s + 5], None) for s in range(0, len(rest), 5)]
        out.append(VideoInput(feats, segments))
    return out
