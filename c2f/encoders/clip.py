"""CLIP (open_clip): image embeddings per frame, text embeddings per query, pooled and per token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from c2f.device import autocast_dtype, encoder_weight_dtype, pick_device
from c2f.weights import resolve_weights

CONFIG_DIR = Path(__file__).parent / "configs"
_REGISTERED = False


def _register_configs() -> None:
    """Make our tiny test architectures known to open_clip's factory (once)."""
    global _REGISTERED
    if not _REGISTERED:
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        _REGISTERED = True


@dataclass
class TextEmbedding:
    pooled: torch.Tensor  # (B, d) L2-normalised, in the joint image-text space
    tokens: torch.Tensor  # (B, L, w) per-token outputs of the text transformer after ln_final
    mask: torch.Tensor  # (B, L) bool, True for real tokens (start token .. end token)


class ClipEncoder:
    def __init__(self, arch: str, weights: str, device: torch.device | str | None = None) -> None:
        import open_clip

        _register_configs()
        self.arch, self.weights = arch, weights
        self.device = pick_device(str(device) if device is not None else None)
        if weights == "random":
            # Tiny test model: seeded so that features are reproducible across runs and processes.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = open_clip.create_model(arch, pretrained=None)
        else:
            path = resolve_weights(f"clip:{arch}:{weights}")
            model = open_clip.create_model(arch, pretrained=str(path), **pretrained_kwargs(arch, weights))
        # bfloat16 weights on a CPU with native bf16 (~4x faster), float32 + autocast on CUDA
        self.dtype = encoder_weight_dtype(self.device)
        self.model = model.eval().to(self.device, self.dtype)
        self.tokenizer = open_clip.get_tokenizer(arch)
        pcfg = dict(self.model.visual.preprocess_cfg)
        if weights != "random":  # the tag's normalisation wins, as when open_clip loads by tag
            from open_clip.pretrained import get_pretrained_cfg

            tag_cfg = get_pretrained_cfg(arch, weights) or {}
            pcfg.update({k: tag_cfg[k] for k in ("mean", "std") if k in tag_cfg})
        self.image_size = int(
            self.model.visual.image_size[0]
            if isinstance(self.model.visual.image_size, tuple)
            else self.model.visual.image_size
        )
        self.mean = torch.tensor(
            pcfg.get("mean", (0.48145466, 0.4578275, 0.40821073)), device=self.device
        ).view(1, 3, 1, 1)
        self.std = torch.tensor(
            pcfg.get("std", (0.26862954, 0.26130258, 0.27577711)), device=self.device
        ).view(1, 3, 1, 1)
        self.image_dim = int(self.model.visual.output_dim)
        self.text_dim = self.image_dim
        self.token_dim = int(self.model.transformer.width)
        self.context_length = int(self.model.context_length)
        self.eot_token_id = int(self.tokenizer.eot_token_id)
        self._amp = autocast_dtype(self.device)

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> normalised (T, 3, S, S): resize short side (bicubic) + centre crop."""
        x = torch.as_tensor(frames).to(self.device).permute(0, 3, 1, 2)  # uint8 (T, 3, H, W)
        h, w = x.shape[-2:]
        if min(h, w) == self.image_size:  # decoded at the right size already: crop before converting
            x = center_crop(x, self.image_size)
        x = x.float().div_(255.0)
        return resize_center_crop(x, self.image_size).sub_(self.mean).div_(self.std).to(self.dtype)

    @torch.inference_mode()
    def encode_images(self, frames: np.ndarray | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> (T, d) float32 L2-normalised, on the CPU."""
        out = []
        for s in range(0, len(frames), batch_size):
            x = self.preprocess(frames[s : s + batch_size])
            with torch.autocast(self.device.type, dtype=self._amp, enabled=self._amp is not None):
                emb = self.model.encode_image(x)
            out.append(F.normalize(emb.float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.image_dim)

    @torch.inference_mode()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> TextEmbedding:
        """Texts longer than the context are cut (open_clip's tokenizer keeps the end token)."""
        pooled, tokens, masks = [], [], []
        for s in range(0, len(texts), batch_size):
            ids = self.tokenizer(texts[s : s + batch_size]).to(self.device)  # (B, L)
            m = self.model
            with torch.autocast(self.device.type, dtype=self._amp, enabled=self._amp is not None):
                x = m.token_embedding(ids) + m.positional_embedding
                x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask))  # (B, L, w)
            x = x.float()
            eot = (ids == self.eot_token_id).int().argmax(dim=-1)  # (B,)
            pooled_x = x[torch.arange(len(ids)), eot] @ m.text_projection.float()
            pooled.append(F.normalize(pooled_x, dim=-1).cpu())
            tokens.append(x.cpu())
            masks.append((torch.arange(ids.shape[1], device=ids.device)[None] <= eot[:, None]).cpu())
        return TextEmbedding(pooled=torch.cat(pooled), tokens=torch.cat(tokens), mask=torch.cat(masks))


def pretrained_kwargs(arch: str, weights: str) -> dict:
    """open_clip factory options that the pretrained tag implies.

    open_clip applies a tag's settings only when it downloads by tag; given a file path it would
    build ViT-B-32 with plain GELU while the OpenAI weights were trained with QuickGELU, which
    silently changes every embedding. So the tag's activation choice is passed explicitly.
    """
    from open_clip.pretrained import get_pretrained_cfg

    tag_cfg = get_pretrained_cfg(arch, weights) or {}
    return {"force_quick_gelu": bool(tag_cfg.get("quick_gelu", False))}


def resize_center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """(T, 3, H, W) float -> (T, 3, size, size), as torchvision's Resize(size) + CenterCrop(size)."""
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)
    return center_crop(x, size)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """(..., H, W) -> (..., size, size) around the centre; H, W >= size."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]
