"""Greedy decoding of Whisper windows in batches, with a static KV cache and no host sync per token.

transformers' `generate` costs more per token than a small model's arithmetic: its decoder forward
builds masks and caches in Python, and its Whisper timestamp rules walk every row in Python and
read the tokens back to the host at each step. Here one step is a fixed set of tensor operations
on fixed shapes: the model's own decoder weights over a preallocated cache (SDPA attention), the
decoding rules as masks, argmax, the state update. On a GPU that step is captured once in a CUDA
graph and replayed per token; the host only asks every CHECK_EVERY tokens whether all rows ended.
The encoder, the cross-attention keys/values and the prompt run once per batch, eagerly.

The rules are those transformers' `generate` applies for Whisper (in this order, on float32
logits; see `apply_rules`), so the tokens are those of that path up to float rounding:
 1. eot suppressed until `min_new_tokens` are out (the speed benchmark's forced length);
 2. the model's suppress_tokens always, its begin_suppress_tokens at the first generated token;
 3. WhisperTimeStampLogitsProcessor: <|notimestamps|> never; timestamps in pairs (after a pair,
    or after a first lone timestamp, text or eot; after an opening timestamp, a timestamp or eot);
    never below the last timestamp (strictly above it after a pair); the first token a timestamp
    <= max_initial_timestamp_index; text suppressed when the timestamps' total probability beats
    every single text token.
Rows that ended keep emitting eot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

CHECK_EVERY = 8  # tokens between the host's checks for "every row ended" (each one a device sync)
NONE = -1  # no token yet (state tensors)


@dataclass(frozen=True)
class DecodingRules:
    eot: int
    timestamp_begin: int  # first timestamp token, <|0.00|>
    no_timestamps: int
    suppress: tuple[int, ...]
    begin_suppress: tuple[int, ...]
    max_initial_timestamp_index: int | None


@dataclass
class RowState:
    """Per-row decoding state, (B,) tensors on the device."""

    last: torch.Tensor  # long: last generated token, NONE before the first
    penult: torch.Tensor  # long: the one before, NONE while fewer than two
    last_timestamp: torch.Tensor  # long: last generated timestamp token, NONE while none
    finished: torch.Tensor  # bool: eot emitted

    @classmethod
    def empty(cls, batch: int, device: torch.device) -> RowState:
        none = torch.full((batch,), NONE, dtype=torch.long, device=device)
        return cls(
            none.clone(), none.clone(), none.clone(), torch.zeros(batch, dtype=torch.bool, device=device)
        )

    def reset(self) -> None:
        for t in (self.last, self.penult, self.last_timestamp):
            t.fill_(NONE)
        self.finished.fill_(False)

    def advance(self, chosen: torch.Tensor, rules: DecodingRules) -> torch.Tensor:
        """Record the chosen tokens (B,) (eot for ended rows); returns what was recorded."""
        chosen = torch.where(self.finished, rules.eot, chosen)
        self.penult.copy_(self.last)
        self.last.copy_(chosen)
        self.last_timestamp.copy_(torch.where(chosen >= rules.timestamp_begin, chosen, self.last_timestamp))
        self.finished.logical_or_(chosen == rules.eot)
        return chosen


class RuleMasks:
    """The vocabulary masks of `DecodingRules`, (V,) bool on the device, made once."""

    def __init__(self, rules: DecodingRules, vocab_size: int, device: torch.device) -> None:
        vocab = torch.arange(vocab_size, device=device)
        self.vocab = vocab
        self.timestamp = vocab >= rules.timestamp_begin
        self.text = vocab < rules.eot
        self.always = torch.isin(vocab, torch.tensor([*rules.suppress, rules.no_timestamps], device=device))
        first = vocab < rules.timestamp_begin  # the first token is a timestamp...
        if rules.max_initial_timestamp_index is not None:  # ...no later than this one
            first |= vocab > rules.timestamp_begin + rules.max_initial_timestamp_index
        self.first = first
        self.begin = torch.isin(vocab, torch.tensor(rules.begin_suppress, dtype=torch.long, device=device))


def apply_rules(
    scores: torch.Tensor,
    state: RowState,
    rules: DecodingRules,
    masks: RuleMasks,
    first: bool,
    eot_allowed: torch.Tensor | bool,
) -> torch.Tensor:
    """float32 logits (B, V) -> the same with every forbidden token at -inf (in place). `first`:
    this is the first generated token; `eot_allowed`: bool or a () bool tensor (min_new_tokens)."""
    inf = float("-inf")
    if isinstance(eot_allowed, bool):
        if not eot_allowed:
            scores[:, rules.eot] = inf
    else:
        scores[:, rules.eot].masked_fill_(~eot_allowed, inf)
    scores.masked_fill_(masks.always, inf)
    if first:
        scores.masked_fill_(masks.begin | masks.first, inf)
    else:
        last_is_ts = state.last >= rules.timestamp_begin
        penult_is_ts = (state.penult >= rules.timestamp_begin) | (state.penult == NONE)
        closing = (last_is_ts & penult_is_ts)[:, None]  # a pair just closed: text or eot next
        opening = (last_is_ts & ~penult_is_ts)[:, None]  # a segment just opened... or closed: ts or eot
        scores.masked_fill_(closing & masks.timestamp, inf)
        scores.masked_fill_(opening & masks.text, inf)
        # timestamps never decrease, and <|t|> is not repeated after a pair
        floor = torch.where(
            state.last_timestamp == NONE,
            rules.timestamp_begin,
            torch.where(opening[:, 0], state.last_timestamp, state.last_timestamp + 1),
        )
        scores.masked_fill_(masks.timestamp & (masks.vocab < floor[:, None]), inf)
    logprobs = F.log_softmax(scores, dim=-1)
    timestamp_mass = logprobs[:, rules.timestamp_begin :].logsumexp(dim=-1)
    best_text = logprobs[:, : rules.timestamp_begin].max(dim=-1).values
    scores[:, : rules.timestamp_begin].masked_fill_((timestamp_mass > best_text)[:, None], inf)
    return scores


class StaticDecoder:
    """The decoder of a WhisperForConditionalGeneration over a static KV cache for `batch` rows and
    `length` positions. `start` loads a batch's encoder output; `logits` runs tokens at positions."""

    def __init__(self, model, batch: int, length: int) -> None:
        self.model = model
        decoder = model.model.decoder
        self.decoder = decoder
        cfg = model.config
        self.heads = cfg.decoder_attention_heads
        self.head_dim = cfg.d_model // self.heads
        weight = decoder.embed_tokens.weight
        self.batch, self.length = batch, length
        shape = (len(decoder.layers), batch, self.heads, length, self.head_dim)
        self.keys = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
        self.values = torch.zeros_like(self.keys)
        self.cross_keys: torch.Tensor | None = None  # (layers, B, H, S, hd)
        self.cross_values: torch.Tensor | None = None
        self.key_index = torch.arange(length, device=weight.device)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, q, d) -> (B, H, q, hd)"""
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def start(self, encoder_out: torch.Tensor) -> None:
        """Cross-attention keys and values of a batch (B, S, d), into buffers kept at one address
        (a captured graph reads them there)."""
        keys = torch.stack(
            [self._heads(layer.encoder_attn.k_proj(encoder_out)) for layer in self.decoder.layers]
        )
        values = torch.stack(
            [self._heads(layer.encoder_attn.v_proj(encoder_out)) for layer in self.decoder.layers]
        )
        if self.cross_keys is None or self.cross_keys.shape != keys.shape:
            self.cross_keys, self.cross_values = keys, values
        else:
            self.cross_keys.copy_(keys)
            self.cross_values.copy_(values)

    def logits(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """tokens (B, q) at positions (q,) -> float32 logits (B, V) of the last one; the cache
        keeps their keys and values."""
        b, q = tokens.shape
        x = self.decoder.embed_tokens(tokens) + self.decoder.embed_positions.weight.index_select(0, positions)
        visible = self.key_index[None, :] <= positions[:, None]  # (q, length): causal, filled only
        for i, layer in enumerate(self.decoder.layers):
            attn = layer.self_attn
            h = layer.self_attn_layer_norm(x)
            query = self._heads(attn.q_proj(h) * attn.scaling)
            self.keys[i].index_copy_(2, positions, self._heads(attn.k_proj(h)))
            self.values[i].index_copy_(2, positions, self._heads(attn.v_proj(h)))
            out = F.scaled_dot_product_attention(
                query, self.keys[i], self.values[i], attn_mask=visible, scale=1.0
            )
            x = x + attn.out_proj(out.transpose(1, 2).reshape(b, q, -1))
            cross = layer.encoder_attn
            h = layer.encoder_attn_layer_norm(x)
            query = self._heads(cross.q_proj(h) * cross.scaling)
            out = F.scaled_dot_product_attention(query, self.cross_keys[i], self.cross_values[i], scale=1.0)
            x = x + cross.out_proj(out.transpose(1, 2).reshape(b, q, -1))
            h = layer.final_layer_norm(x)
            x = x + layer.fc2(layer.activation_fn(layer.fc1(h)))
        last = self.decoder.layer_norm(x[:, -1])  # (B, d)
        # the LM head as W @ x.T: on a CPU, MKL's x @ W.T with a few rows ran 3-6x slower (43 vs
        # 7 ms for 3 rows of whisper-tiny's 51865 x 384 head); on a GPU either is one GEMM
        return torch.mm(self.model.proj_out.weight, last.t()).t().float().contiguous()


class _FixedBatch:
    """Decoding state of exactly `batch` rows: cache, tokens, counters and, on a GPU, the step's
    CUDA graph (captured on first use; its inputs and outputs are these tensors)."""

    def __init__(
        self, model, rules: DecodingRules, masks: RuleMasks, batch: int, length: int, graphs: bool
    ) -> None:
        self.rules, self.masks = rules, masks
        device = model.device
        self.decoder = StaticDecoder(model, batch, length)
        self.state = RowState.empty(batch, device)
        self.tokens = torch.full((batch, length), rules.eot, dtype=torch.long, device=device)
        self.position = torch.zeros(1, dtype=torch.long, device=device)  # of the last token written
        self.generated = torch.zeros((), dtype=torch.long, device=device)
        self.min_new = torch.zeros((), dtype=torch.long, device=device)
        self.graphs = graphs and device.type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None

    def step(self) -> None:
        """One token for every row: read the last token at `position`, write the next after it."""
        scores = self.decoder.logits(self.tokens.index_select(1, self.position), self.position)
        scores = apply_rules(
            scores, self.state, self.rules, self.masks, False, self.generated >= self.min_new
        )
        chosen = self.state.advance(scores.argmax(dim=-1), self.rules)
        self.position.add_(1)
        self.tokens.index_copy_(1, self.position, chosen[:, None])
        self.generated.add_(1)

    def capture(self, prompt_length: int) -> None:
        """Record `step` in a CUDA graph. Its warm-up steps write into the cache and the state,
        which the caller resets afterwards; an op that cannot be captured leaves it eager."""
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # kernels chosen, workspaces allocated, outside the graph
                    self.position.fill_(prompt_length - 1)
                    self.step()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            self.position.fill_(prompt_length - 1)
            with torch.cuda.graph(graph):
                self.step()
            self.graph = graph
        except Exception as exc:
            log.warning(
                "Whisper decoding: no CUDA graph (%s: %s); the same step runs eagerly",
                type(exc).__name__,
                exc,
            )
            self.graphs = False

    def run(
        self, encoder_out: torch.Tensor, prompt: list[int], min_new: int, max_new: int, live: int
    ) -> torch.Tensor:
        """encoder output (batch, S, d) -> tokens (batch, prompt + max_new) on the device; stops
        early once the first `live` rows have ended."""
        self.decoder.start(encoder_out)
        if self.graphs and self.graph is None:
            self.capture(len(prompt))
        self.state.reset()
        self.tokens.fill_(self.rules.eot)
        self.tokens[:, : len(prompt)] = torch.tensor(prompt, device=self.tokens.device)
        self.min_new.fill_(min_new)
        # the prompt, eagerly: its keys and values, and the first token
        positions = torch.arange(len(prompt), device=self.tokens.device)
        scores = self.decoder.logits(self.tokens[:, : len(prompt)], positions)
        scores = apply_rules(scores, self.state, self.rules, self.masks, True, min_new <= 0)
        self.tokens[:, len(prompt)] = self.state.advance(scores.argmax(dim=-1), self.rules)
        self.position.fill_(len(prompt))
        self.generated.fill_(1)
        for done in range(1, max_new):
            if done % CHECK_EVERY == 0 and bool(self.state.finished[:live].all()):
                break
            if self.graph is not None:
                self.graph.replay()
            else:
                self.step()
        return self.tokens


class GreedyDecoder:
    """Encoder outputs of windows -> token ids, greedy under `DecodingRules`, `batch` rows at a
    time. `graphs`: on a GPU the token step is a CUDA graph, and every batch is padded to `batch`
    rows (copies of its first window) so that one graph serves all; `pad_batches` pads without
    graphs (the same padding, checkable on a CPU)."""

    def __init__(
        self,
        model,
        rules: DecodingRules,
        batch: int,
        max_new_tokens: int,
        graphs: bool,
        pad_batches: bool = False,
    ) -> None:
        self.model, self.rules, self.batch, self.max_new_tokens = model, rules, batch, max_new_tokens
        self.masks = RuleMasks(rules, model.config.vocab_size, model.device)
        self.graphs = graphs and model.device.type == "cuda"
        self.pad_batches = pad_batches or self.graphs
        self._runs: dict[tuple[int, int], _FixedBatch] = {}  # (rows, length) -> state

    @torch.inference_mode()
    def generate(self, encoder_out: torch.Tensor, prompt: list[int], min_new_tokens: int = 0) -> torch.Tensor:
        """encoder output (b <= batch, S, d) -> token ids (b, prompt + max_new_tokens) on the CPU,
        eot after each row's end."""
        rows = encoder_out.shape[0]
        if rows > self.batch:
            raise ValueError(f"{rows} windows for a batch of {self.batch}")
        if self.pad_batches and rows < self.batch:
            encoder_out = torch.cat([encoder_out, encoder_out[:1].expand(self.batch - rows, -1, -1)])
        key = (encoder_out.shape[0], len(prompt) + self.max_new_tokens)
        if key not in self._runs:
            self._runs[key] = _FixedBatch(self.model, self.rules, self.masks, *key, self.graphs)
        tokens = self._runs[key].run(encoder_out, prompt, min_new_tokens, self.max_new_tokens, rows)
        return tokens[:rows].cpu()
