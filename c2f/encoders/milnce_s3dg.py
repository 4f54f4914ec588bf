"""MIL-NCE S3D-G (HowTo100M): video tower (`mixed_5c` 1024-d, joint `video_embedding` 512-d) and
its text tower (word vocabulary -> 512-d sentence embedding in the same joint space).

Architecture (Xie et al. 2018, as trained by Miech et al. 2020, "End-to-End Learning of Visual
Representations from Uncurated Instructional Videos"):
- space-to-depth stem: (B, 3, T, H, W) -> (B, 24, T/2, H/2, W/2), then a 2x4x4 convolution whose
  first output row/column/frame is dropped (it reproduces TensorFlow's 'SAME' padding);
- separable 3D convolutions (a 1xkxk spatial then a kx1x1 temporal convolution, each with
  BatchNorm + ReLU) and self-gating (sigmoid of a linear map of the space-time mean, per channel);
- max pools with TensorFlow 'SAME' padding (zero padding, ceil mode);
- nine inception blocks, the global mean of `mixed_5c` (1024) and one linear map to 512.
Text: lower-case, words = runs of [\\w'], unknown words dropped, the first 16 known words (id 0 pads),
word embeddings (300) -> ReLU(linear 2048) -> max over the 16 positions (padding included) -> 512.

Module names equal the keys of the released `s3d_howto100m.pth`, which loads strictly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from c2f.device import forced_cpu_bf16, full_precision, pick_device
from c2f.encoders.clip import resize_center_crop
from c2f.errors import CheckpointError
from c2f.weights import resolve_weights

# Inception blocks in order: (name, branch widths 1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj).
FULL_BLOCKS: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("mixed_5c", (384, 192, 384, 48, 128, 128)),
)
POOL_BEFORE = {"mixed_4b": "maxpool_4a", "mixed_5b": "maxpool_5a"}  # T, H, W halved before these
WORD_PATTERN = re.compile(r"[\w']+")


@dataclass(frozen=True)
class S3DGConfig:
    stem_dim: int = 64  # conv1 and conv_2b outputs
    conv_2c_dim: int = 192
    blocks: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = FULL_BLOCKS
    embed_dim: int = 512  # joint text-video space
    vocab_size: int = 66250  # word embedding rows (row 0 = padding / no known word)
    word_dim: int = 300
    text_hidden: int = 2048
    max_words: int = 16

    @property
    def mixed_5c_dim(self) -> int:
        b0, _, b1, _, b2, b3 = self.blocks[-1][1]
        return b0 + b1 + b2 + b3

    @classmethod
    def tiny(cls) -> S3DGConfig:
        """Random test model: every width / 16 (mixed_5c 64-d), a 32-d joint space."""
        blocks = tuple((name, tuple(max(2, w // 16) for w in widths)) for name, widths in FULL_BLOCKS)
        return cls(
            stem_dim=4,
            conv_2c_dim=12,
            blocks=blocks,  # type: ignore[arg-type]
            embed_dim=32,
            vocab_size=len(TINY_VOCABULARY) + 1,
            word_dim=16,
            text_hidden=32,
        )


# Vocabulary of the tiny random text tower (the real one is `s3d_dict.npy`).
TINY_VOCABULARY: tuple[str, ...] = (
    "a", "the", "man", "woman", "person", "dog", "car", "walks", "runs", "opens", "door",
    "into", "room", "kitchen", "cooks", "food", "talks", "phone", "sits", "down",
)  # fmt: skip


class ConvBNReLU3d(nn.Module):
    """One 3D convolution (+ BatchNorm + ReLU), or with `separable` a 1xkxk spatial then kx1x1
    temporal convolution, each with its BatchNorm + ReLU. Bias-free, as in the checkpoint."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int], stride=1, padding=0, separable=False):
        super().__init__()
        self.separable = separable
        if separable:
            kt, kh, kw = kernel
            pt = padding[0] if isinstance(padding, tuple) else padding
            ps = padding[1:] if isinstance(padding, tuple) else (padding, padding)
            self.conv1 = nn.Conv3d(c_in, c_out, (1, kh, kw), stride=(1, stride, stride), padding=(0, *ps), bias=False)
            self.bn1 = nn.BatchNorm3d(c_out)
            self.conv2 = nn.Conv3d(c_out, c_out, (kt, 1, 1), stride=(stride, 1, 1), padding=(pt, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(c_out)
        else:
            self.conv1 = nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
            self.bn1 = nn.BatchNorm3d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.separable:
            x = F.relu(self.bn2(self.conv2(x)))
        return x


class SelfGating(nn.Module):
    """x * sigmoid(W mean_{t,h,w}(x) + b), one gate per channel."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        gate = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))  # (B, C)
        return x * gate[:, :, None, None, None]


class MaxPoolSame3d(nn.Module):
    """Max pool with TensorFlow 'SAME' padding: max(k - s, 0) zeros split low/high (the extra one
    high), then ceil mode. Zeros are safe: the inputs come out of a ReLU."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        pads = []
        for k, s in reversed(list(zip(kernel, stride, strict=True))):  # F.pad wants (W, H, T)
            along = max(k - s, 0)
            pads += [along // 2, along - along // 2]
        self.pads = tuple(pads)
        self.pool = nn.MaxPool3d(kernel, stride, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, self.pads))


class InceptionBlock(nn.Module):
    """Four branches (1x1; 1x1 -> sep 3x3; 1x1 -> sep 3x3; 3x3 max pool -> 1x1), each self-gated."""

    def __init__(self, c_in: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.conv_b0 = ConvBNReLU3d(c_in, b0, (1, 1, 1))
        self.conv_b1_a = ConvBNReLU3d(c_in, b1a, (1, 1, 1))
        self.conv_b1_b = ConvBNReLU3d(b1a, b1b, (3, 3, 3), padding=1, separable=True)
        self.conv_b2_a = ConvBNReLU3d(c_in, b2a, (1, 1, 1))
        self.conv_b2_b = ConvBNReLU3d(b2a, b2b, (3, 3, 3), padding=1, separable=True)
        self.maxpool_b3 = nn.MaxPool3d(3, stride=1, padding=1)
        self.conv_b3_b = ConvBNReLU3d(c_in, b3b, (1, 1, 1))
        self.gating_b0, self.gating_b1 = SelfGating(b0), SelfGating(b1b)
        self.gating_b2, self.gating_b3 = SelfGating(b2b), SelfGating(b3b)
        self.output_dim = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(self.maxpool_b3(x)))
        return torch.cat((b0, b1, b2, b3), dim=1)


class SentenceEmbedding(nn.Module):
    def __init__(self, config: S3DGConfig) -> None:
        super().__init__()
        self.word_embd = nn.Embedding(config.vocab_size, config.word_dim)
        self.fc1 = nn.Linear(config.word_dim, config.text_hidden)
        self.fc2 = nn.Linear(config.text_hidden, config.embed_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, max_words) -> (B, embed_dim)
        x = F.relu(self.fc1(self.word_embd(ids)))  # (B, L, hidden)
        return self.fc2(x.max(dim=1).values)


class S3DG(nn.Module):
    """The MIL-NCE network. `forward(video)`: float (B, 3, T, H, W) in [0, 1], T, H, W even."""

    def __init__(self, config: S3DGConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or S3DGConfig()
        self.conv1 = ConvBNReLU3d(24, cfg.stem_dim, (2, 4, 4), padding=(1, 2, 2))
        self.maxpool_2a = MaxPoolSame3d((1, 3, 3), (1, 2, 2))
        self.conv_2b = ConvBNReLU3d(cfg.stem_dim, cfg.stem_dim, (1, 1, 1))
        self.conv_2c = ConvBNReLU3d(cfg.stem_dim, cfg.conv_2c_dim, (3, 3, 3), padding=1, separable=True)
        self.gating = SelfGating(cfg.conv_2c_dim)
        self.maxpool_3a = MaxPoolSame3d((1, 3, 3), (1, 2, 2))
        self.maxpool_4a = MaxPoolSame3d((3, 3, 3), (2, 2, 2))
        self.maxpool_5a = MaxPoolSame3d((2, 2, 2), (2, 2, 2))
        c = cfg.conv_2c_dim
        for name, widths in cfg.blocks:
            block = InceptionBlock(c, widths)
            self.add_module(name, block)
            c = block.output_dim
        self.fc = nn.Linear(c, cfg.embed_dim)
        self.text_module = SentenceEmbedding(cfg)

    @staticmethod
    def space_to_depth(x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 8C, T/2, H/2, W/2); channel = ((dt * 2 + dh) * 2 + dw) * C + c."""
        b, c, t, h, w = x.shape
        x = x.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
        return x.reshape(b, 8 * c, t // 2, h // 2, w // 2)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        t, h, w = video.shape[2:]
        if t % 2 or h % 2 or w % 2:
            raise ValueError(f"S3D-G needs an even number of frames, height and width, got {t}x{h}x{w}")
        x = self.conv1(self.space_to_depth(video))[:, :, 1:, 1:, 1:]  # drop row 0: TF 'SAME'
        x = self.maxpool_2a(x)
        x = self.gating(self.conv_2c(self.conv_2b(x)))
        x = self.maxpool_3a(x)
        for name, _ in self.config.blocks:
            if name in POOL_BEFORE:
                x = getattr(self, POOL_BEFORE[name])(x)
            x = getattr(self, name)(x)
        mixed_5c = x.mean(dim=(2, 3, 4))  # (B, 1024)
        return {"mixed_5c": mixed_5c, "video_embedding": self.fc(mixed_5c)}


@dataclass
class WordTokenizer:
    """MIL-NCE's tokenisation: lower-case, words = runs of [\\w'], words not in the vocabulary are
    dropped, the first `max_words` known words kept, id 0 pads (a text with no known word is all 0)."""

    vocabulary: list[str]
    max_words: int = 16
    word_to_id: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.word_to_id = {}
        for i, word in enumerate(self.vocabulary):
            self.word_to_id[word] = i + 1  # a repeated word keeps its last id, as a dict update does

    def __call__(self, texts: list[str]) -> torch.Tensor:  # -> (B, max_words) int64
        ids = torch.zeros(len(texts), self.max_words, dtype=torch.long)
        for row, text in enumerate(texts):
            known = [self.word_to_id[w] for w in WORD_PATTERN.findall(str(text).lower()) if w in self.word_to_id]
            known = known[: self.max_words]
            ids[row, : len(known)] = torch.tensor(known, dtype=torch.long)
        return ids


def load_vocabulary(path: str | Path) -> list[str]:
    """`s3d_dict.npy`: a numpy array of words; word i has id i + 1."""
    try:
        words = np.load(str(path), allow_pickle=False)  # never unpickle a downloaded file
    except ValueError as exc:
        raise CheckpointError(
            f"{path}: not a plain numpy array of words ({exc}); if you trust the file, rewrite it once with "
            f"np.save(path, np.load(path, allow_pickle=True).astype(str))"
        ) from None
    return [str(w) for w in words.tolist()]


def seeded_random_model(config: S3DGConfig, seed: int = 0) -> S3DG:
    """A reproducible random model whose features depend on the input: He-scaled convolutions and
    small positive BatchNorm shifts (PyTorch's default init shrinks activations layer by layer
    until a narrow tiny layer is all zero after its ReLU, and so is every feature after it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = S3DG(config)
        for m in model.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.uniform_(m.bias, 0.0, 0.2)
        return model.eval()


class MilNceS3DGEncoder:
    """`encode_clips` -> mixed_5c (the VALUE/HERO "mil-nce" feature), `encode_video` -> also the joint
    `video_embedding`, `encode_text` -> the joint `text_embedding` (score = dot product, as trained)."""

    def __init__(self, weights: str = "howto100m", image_size: int = 224, device: torch.device | str | None = None):
        self.weights, self.image_size = weights, image_size
        self.device = pick_device(str(device) if device is not None else None)
        if weights == "random":  # tiny test model
            model = seeded_random_model(S3DGConfig.tiny())
            vocabulary = list(TINY_VOCABULARY)
        elif weights == "howto100m":
            vocabulary = load_vocabulary(resolve_weights("s3d:howto100m-dict"))
            model = S3DG(S3DGConfig())
            path = resolve_weights("s3d:howto100m")
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[:2]
                raise CheckpointError(f"{path}: not the MIL-NCE S3D-G state dict ({' '.join(first)})") from None
        else:
            raise CheckpointError(f"unknown S3D-G weights {weights!r}; known: 'howto100m', 'random'")
        self.config = model.config
        self.dim = self.config.mixed_5c_dim
        self.embed_dim = self.config.embed_dim
        self.tokenizer = WordTokenizer(vocabulary, self.config.max_words)
        # float32 on every device, never under autocast (MIL-NCE's and HERO's extractor precision),
        # or bfloat16 on a CPU when C2F_CPU_BF16=1 (not measured per machine, unlike the other
        # encoders: on one AMX Xeon bfloat16 3D convolutions ran slower than float32)
        cpu_bf16 = self.device.type == "cpu" and forced_cpu_bf16() is True
        self.dtype = torch.bfloat16 if cpu_bf16 else torch.float32
        self.model = model.eval().to(self.device, self.dtype)
        # Clips per forward pass: on the CPU one full-size clip's activations (~50 MB after the
        # stem) already fill the cache; the tiny model batches freely.
        self.batch_size = 8 if self.device.type == "cuda" or weights == "random" else 1

    def _video_input(self, clips: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (b, T, H, W, 3) -> (b, 3, T, S, S) in [0, 1]: no mean/std, as MIL-NCE was trained."""
        x = torch.as_tensor(clips).to(self.device)
        b, t = x.shape[:2]
        x = x.flatten(0, 1).permute(0, 3, 1, 2).float().div_(255.0)  # (b*T, 3, H, W)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = resize_center_crop(x, self.image_size)
        return x.view(b, t, 3, self.image_size, self.image_size).transpose(1, 2).to(self.dtype)

    @torch.inference_mode()
    def encode_video(
        self, clips: np.ndarray | torch.Tensor, batch_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (B, T, H, W, 3) -> (mixed_5c (B, 1024), video_embedding (B, 512)), float32 on the CPU."""
        batch_size = batch_size or self.batch_size
        pooled, joint = [], []
        for s in range(0, len(clips), batch_size):
            x = self._video_input(clips[s : s + batch_size])
            with full_precision():
                out = self.model(x)
            pooled.append(out["mixed_5c"].float().cpu())
            joint.append(out["video_embedding"].float().cpu())
        if not pooled:
            return torch.zeros(0, self.dim), torch.zeros(0, self.embed_dim)
        return torch.cat(pooled), torch.cat(joint)

    def encode_clips(self, clips: np.ndarray | torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """uint8 (B, T, H, W, 3) -> mixed_5c (B, 1024) float32, not normalised."""
        return self.encode_video(clips, batch_size)[0]

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """(B,) texts -> text_embedding (B, 512) float32, not normalised (MIL-NCE scores dot products)."""
        ids = self.tokenizer(texts).to(self.device)
        with full_precision():
            out = self.model.text_module(ids)
        return out.float().cpu()
