"""CLIP (open_clip): image embeddings per frame, text embeddings per query, pooled and per token."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from c2f.device import autocast_dtype, pick_device
from c2f.encoders.tuning import batch_of, dtype_names, dtype_of, memory_format_of, tile_rows, tune
from c2f.tuning import Setting
from c2f.weights import resolve_weights

CONFIG_DIR = Path(__file__).parent / "configs"
# CPU candidates, defaults first. The extractor hands over 16 (with S3D) or 32 frames a call, so
# larger batches could not be used; channels_last only changes the patch-embedding convolution.
IMAGE_BATCHES = [16, 8, 32]
IMAGE_MEMORY_AXIS = ["contiguous", "channels_last"]
TEXT_TUNE_ROWS = 4  # token rows the text tower is timed on
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
        # float32 until each tower's first use picks its dtype (and batch, memory format) by
        # measurement on a CPU; float32 + autocast on CUDA
        self.model = model.eval().to(self.device)
        self.image_setting: Setting | None = None
        self.text_setting: Setting | None = None
        self._lock = threading.Lock()
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
        """uint8 (T, H, W, 3) -> normalised float32 (T, 3, S, S): resize short side (bicubic) + centre crop."""
        x = torch.as_tensor(frames).to(self.device).permute(0, 3, 1, 2)  # uint8 (T, 3, H, W)
        h, w = x.shape[-2:]
        if min(h, w) == self.image_size:  # decoded at the right size already: crop before converting
            x = center_crop(x, self.image_size)
        x = x.float().div_(255.0)
        return resize_center_crop(x, self.image_size).sub_(self.mean).div_(self.std)

    @property
    def dtype(self) -> torch.dtype | None:
        """The image tower's dtype (None before the first image is encoded)."""
        return dtype_of(self.image_setting) if self.image_setting else None

    # ----- images -------------------------------------------------------------------------------
    def tune_images(self, sample: torch.Tensor | None = None) -> Setting:
        """dtype, batch and memory format of the image tower: on a CPU measured on first use on
        `sample` (normalised (T, 3, S, S); seeded noise when None) and cached; CUDA: float32 under
        autocast, 64 a call. The other candidates' copies of the tower are dropped after."""
        with self._lock:
            if self.image_setting is None:
                if self.device.type == "cuda":
                    chosen = {"dtype": "float32", "batch": 64, "memory_format": "contiguous"}
                else:
                    if sample is None:
                        gen = torch.Generator().manual_seed(0)
                        sample = torch.randn(
                            max(IMAGE_BATCHES), 3, self.image_size, self.image_size, generator=gen
                        )
                    inputs = tile_rows(sample, max(IMAGE_BATCHES))
                    variants = {("float32", "contiguous"): self.model.visual}
                    axes = {
                        "dtype": dtype_names(),
                        "batch": IMAGE_BATCHES,
                        "memory_format": IMAGE_MEMORY_AXIS,
                    }
                    run = lambda st: self._encode_image(variants, inputs[: st["batch"]], st)  # noqa: E731
                    chosen = tune(
                        "clip-image", f"{self.arch}/{self.weights} {self.image_size}px", axes, run
                    ).setting
                    batch_of(chosen)  # an override naming a bad batch fails here, clearly
                    self.model.visual = _converted(variants, chosen)
                self.image_setting = chosen
            return self.image_setting

    def _encode_image(
        self, variants: dict, x: torch.Tensor, setting: Setting, normalize: bool = True
    ) -> torch.Tensor:
        """normalised float32 (T, 3, S, S) -> (T, d) float32 (L2-normalised unless told not to), with
        the tower variant of `setting` (made from the float32 master on first need)."""
        visual = _converted(variants, setting)
        x = x.to(dtype_of(setting)).contiguous(memory_format=memory_format_of(setting))
        with torch.autocast(self.device.type, dtype=self._amp, enabled=self._amp is not None):
            emb = visual(x).float()  # open_clip's encode_image(x) is visual(x)
        return F.normalize(emb, dim=-1) if normalize else emb

    @torch.inference_mode()
    def encode_images(
        self, frames: np.ndarray | torch.Tensor, batch_size: int | None = None, normalize: bool = True
    ) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> (T, d) float32 on the CPU, L2-normalised (raw with normalize=False)."""
        if len(frames) == 0:
            return torch.zeros(0, self.image_dim)
        setting = self.image_setting or self.tune_images(self.preprocess(frames[: max(IMAGE_BATCHES)]))
        batch_size = batch_size or batch_of(setting)
        tower = {(setting["dtype"], setting["memory_format"]): self.model.visual}
        out = []
        for s in range(0, len(frames), batch_size):
            x = self.preprocess(frames[s : s + batch_size])  # (b, 3, S, S)
            out.append(self._encode_image(tower, x, setting, normalize).cpu())
        return torch.cat(out)

    # ----- text ---------------------------------------------------------------------------------
    def tune_text(self, ids: torch.Tensor | None = None) -> Setting:
        """dtype of the text tower: measured on first use on a CPU on token ids `ids` (B, L)
        (a stock sentence when None), float32 under autocast on CUDA. Texts come one query at a time
        in a search, so no batch size is tuned."""
        with self._lock:
            if self.text_setting is None:
                if self.device.type == "cuda":
                    chosen = {"dtype": "float32"}
                else:
                    if ids is None:
                        ids = self.tokenizer(["a person hands another person a set of keys"]).to(self.device)
                    ids = tile_rows(ids, TEXT_TUNE_ROWS)
                    master = _TextTower(self.model)
                    variants = {("float32", "contiguous"): master}
                    run = lambda st: self._encode_tokens(variants, ids, st)[0]  # noqa: E731
                    shape = f"{self.arch}/{self.weights} {self.context_length} tokens"
                    chosen = tune("clip-text", shape, {"dtype": dtype_names()}, run).setting
                    _converted(variants, chosen).install(self.model)
                self.text_setting = chosen
            return self.text_setting

    def _encode_tokens(
        self, variants: dict, ids: torch.Tensor, setting: Setting
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, L) -> pooled (B, d) L2-normalised and token states (B, L, w), both float32."""
        tower = _converted(variants, setting)
        with torch.autocast(self.device.type, dtype=self._amp, enabled=self._amp is not None):
            x = tower(ids).float()  # (B, L, w)
        eot = (ids == self.eot_token_id).int().argmax(dim=-1)  # (B,)
        pooled = x[torch.arange(len(ids)), eot] @ self.model.text_projection.float()
        return F.normalize(pooled, dim=-1), x

    @torch.inference_mode()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> TextEmbedding:
        """Texts longer than the context are cut (open_clip's tokenizer keeps the end token)."""
        pooled, tokens, masks = [], [], []
        for s in range(0, len(texts), batch_size):
            ids = self.tokenizer(texts[s : s + batch_size]).to(self.device)  # (B, L)
            setting = self.text_setting or self.tune_text(ids)
            p, x = self._encode_tokens(
                {(setting["dtype"], "contiguous"): _TextTower(self.model)}, ids, setting
            )
            eot = (ids == self.eot_token_id).int().argmax(dim=-1)  # (B,)
            pooled.append(p.cpu())
            tokens.append(x.cpu())
            masks.append((torch.arange(ids.shape[1], device=ids.device)[None] <= eot[:, None]).cpu())
        return TextEmbedding(pooled=torch.cat(pooled), tokens=torch.cat(tokens), mask=torch.cat(masks))


class _TextTower(nn.Module):
    """The parts of an open_clip CLIP that turn token ids into token states, as one module, so that
    it can be copied and cast to a candidate dtype on its own (the image tower stays as it is)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) -> token states (B, L, w) after ln_final."""
        x = self.token_embedding(ids) + self.positional_embedding
        return self.ln_final(self.transformer(x, attn_mask=self.attn_mask))

    def install(self, model: nn.Module) -> None:
        """Put these parts back into `model` (after a cast: one copy of the weights, not two)."""
        model.token_embedding, model.positional_embedding = self.token_embedding, self.positional_embedding
        model.transformer, model.ln_final, model.attn_mask = self.transformer, self.ln_final, self.attn_mask


def _converted(variants: dict, setting: Setting) -> nn.Module:
    """The float32 master `variants[("float32", "contiguous")]` in the setting's dtype and memory
    format; copies are made once and kept in `variants`."""
    key = (setting["dtype"], setting.get("memory_format", "contiguous"))
    if key not in variants:
        master = variants[("float32", "contiguous")]
        variants[key] = (
            copy.deepcopy(master).to(dtype_of(setting)).to(memory_format=memory_format_of(setting))
        )
    return variants[key]


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
