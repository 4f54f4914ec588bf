"""Sentence embeddings (transformers): a BERT-style encoder, mean-pooled over real tokens and
L2-normalised, so that the inner product of two embeddings is the cosine of two texts.

Default: all-MiniLM-L6-v2 (6 layers, 384-d, trained for semantic similarity; fast on a CPU).
"tiny-test": a tiny random BERT built here (TINY TEST MODE: its scores are meaningless).
"""

from __future__ import annotations

import numpy as np
import torch

from c2f.device import pick_device
from c2f.errors import C2FError
from c2f.speech.tiny import random_sentence_encoder

DEFAULT_SENTENCE_MODEL = "all-MiniLM-L6-v2"
TINY_SENTENCE_MODEL = "tiny-test"
SENTENCE_MODELS = (DEFAULT_SENTENCE_MODEL, TINY_SENTENCE_MODEL)
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (longer texts are cut)


class SentenceEncoder:
    def __init__(self, model: str = DEFAULT_SENTENCE_MODEL, device: str | None = None) -> None:
        if model not in SENTENCE_MODELS:
            raise C2FError(f"unknown sentence encoder {model!r}: use one of {', '.join(SENTENCE_MODELS)}")
        self.device = pick_device(device)
        self.is_tiny = model == TINY_SENTENCE_MODEL
        if self.is_tiny:
            net, self.tokenizer = random_sentence_encoder()
            self.label = "tiny-test sentence encoder (TINY TEST MODE: random weights)"
        else:
            from transformers import AutoModel, AutoTokenizer

            from c2f.weights import resolve_model_folder

            folder = resolve_model_folder(f"sentence:{model}")
            net = AutoModel.from_pretrained(folder, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self.label = model
        self.model = net.to(self.device).eval()
        self.name = model
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(B, d) float32, L2-normalised mean of the last hidden states over each text's tokens."""
        out = []
        for s in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[s : s + batch_size],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state.float()  # (B, L, d)
            mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, L, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, d)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
