"""Moment localizers: HERO's Base (Eq. 4) and the paper's Fusion localizer (section 2.2, from VSLNet)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from c2f.model.config import C2FConfig
from c2f.model.encoder import NEG, QueryEncoder


@dataclass
class LocalizerOutput:
    start_logits: torch.Tensor  # (B, N), padding at NEG
    end_logits: torch.Tensor  # (B, N)
    importance: torch.Tensor | None  # (B, N) in [0, 1] (fusion only), 0 on padding


class BaseLocalizer(nn.Module):
    """s_t = Linear(q) . V_temp_t; two Conv1d(1->1, k=5, no bias) filters give start/end logits."""

    def __init__(self, cfg: C2FConfig) -> None:
        super().__init__()
        self.q_proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.start = nn.Conv1d(1, 1, 5, padding=2, bias=False)
        self.end = nn.Conv1d(1, 1, 5, padding=2, bias=False)

    def forward(self, v_temp, v_mask, q, q_emb, q_mask) -> LocalizerOutput:
        sim = torch.einsum("bd,bnd->bn", self.q_proj(q), v_temp).masked_fill(~v_mask, 0)[:, None]  # (B, 1, N)
        st = self.start(sim).squeeze(1).masked_fill(~v_mask, NEG)
        ed = self.end(sim).squeeze(1).masked_fill(~v_mask, NEG)
        return LocalizerOutput(st, ed, None)


class ContextQueryAttention(nn.Module):
    """Trilinear S_ij = w_c.c_i + w_q.q_j + (c_i * w_m).q_j; A = S_r Q; B = S_r S_c^T C;
    V_q = FC([C; A; C*A; C*B]) (Eq. 5-6)."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.w_c = nn.Linear(d, 1, bias=False)
        self.w_q = nn.Linear(d, 1, bias=False)
        self.w_m = nn.Parameter(torch.empty(1, 1, d).uniform_(-(d**-0.5), d**-0.5))
        self.fc = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)

    def similarity(
        self, c: torch.Tensor, q: torch.Tensor
    ) -> torch.Tensor:  # (B, N, d), (B, L, d) -> (B, N, L)
        return self.w_c(c) + self.w_q(q).transpose(1, 2) + torch.einsum("bnd,bld->bnl", c * self.w_m, q)

    def forward(self, c, c_mask, q, q_mask) -> torch.Tensor:
        s = self.similarity(self.drop(c), self.drop(q))
        s_r = s.masked_fill(~q_mask[:, None, :], NEG).softmax(dim=2)  # over query tokens
        s_c = s.masked_fill(~c_mask[:, :, None], NEG).softmax(dim=1)  # over clips
        a = torch.bmm(s_r, q)  # (B, N, d)
        b = torch.bmm(torch.bmm(s_r, s_c.transpose(1, 2)), c)  # (B, N, d)
        return self.fc(torch.cat([c, a, c * a, c * b], dim=-1))


class FusionLocalizer(nn.Module):
    """Paper 2.2 over V_temp and the query's token embeddings W^emb_{s_q} (not its f_cross states):
    CQA (Eq. 5-6), q_c from a second query encoder over W^emb, importance S_h (Eq. 7-8) and the
    conditioned LSTM span predictor (Eq. 9)."""

    def __init__(self, cfg: C2FConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.cqa = ContextQueryAttention(d, cfg.dropout)
        self.sentence_encoder = QueryEncoder(cfg)  # "another query encoder" -> q_c
        self.highlight = nn.Conv1d(2 * d, 1, kernel_size=1)  # Eq. 7
        nn.init.constant_(self.highlight.bias, cfg.gate_bias)
        self.lstm_st = nn.LSTM(d, d, batch_first=True)
        self.lstm_ed = nn.LSTM(d, d, batch_first=True)
        self.fc_st = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 1))
        self.fc_ed = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, v_temp, v_mask, q, q_emb, q_mask) -> LocalizerOutput:
        vq = self.cqa(v_temp, v_mask, q_emb, q_mask)  # (B, N, d): A = S_r W^emb (Eq. 5)
        qc = self.sentence_encoder(q_emb, q_mask)  # (B, d)
        both = torch.cat([vq, qc[:, None].expand_as(vq)], dim=-1)  # (B, N, 2d)
        importance = torch.sigmoid(self.highlight(both.transpose(1, 2)).squeeze(1)) * v_mask  # (B, N)
        v = vq * importance[..., None]  # Eq. 8
        h_st, _ = self.lstm_st(v)
        h_ed, _ = self.lstm_ed(h_st)  # conditioned on the start encoder (Eq. 9)
        st = self.fc_st(torch.cat([h_st, v], -1)).squeeze(-1).masked_fill(~v_mask, NEG)
        ed = self.fc_ed(torch.cat([h_ed, v], -1)).squeeze(-1).masked_fill(~v_mask, NEG)
        return LocalizerOutput(st, ed, importance)
