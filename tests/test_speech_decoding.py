"""Whisper's batched greedy decoding (c2f/speech/decoding.py) with the tiny random model: the
rules equal transformers' logits processors, the tokens equal transformers' `generate`, and a
window's tokens do not depend on the batch it is decoded in (alone, with others, in a padded batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import GenerationConfig
from transformers.generation import GenerationMixin, LogitsProcessorList
from transformers.generation.logits_process import (
    MinLengthLogitsProcessor,
    SuppressTokensAtBeginLogitsProcessor,
    SuppressTokensLogitsProcessor,
    WhisperTimeStampLogitsProcessor,
)

from c2f.speech.audio import SAMPLE_RATE
from c2f.speech.decoding import NONE, GreedyDecoder, RowState, RuleMasks, apply_rules
from c2f.speech.whisper import WhisperTranscriber

LENGTHS = (30.0, 12.5, 30.0, 0.7, 30.0, 21.0)  # seconds of audio per window: full, short, tiny


@pytest.fixture(scope="module")
def tiny() -> WhisperTranscriber:
    return WhisperTranscriber("tiny-test", language="en", device="cpu", batch_size=1)


@pytest.fixture(scope="module")
def windows() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(round(s * SAMPLE_RATE)) * 0.1).astype(np.float32) for s in LENGTHS]


def encoded(tiny: WhisperTranscriber, windows: list[np.ndarray]) -> torch.Tensor:
    with torch.inference_mode():
        return tiny.model.model.encoder(input_features=tiny._input_features(windows)).last_hidden_state


def prompt(tiny: WhisperTranscriber) -> list[int]:
    gen = tiny.model.generation_config
    return [int(gen.decoder_start_token_id), tiny.languages["en"], int(gen.task_to_id["transcribe"])]


def reference_generate(tiny: WhisperTranscriber, features: torch.Tensor, forced: int) -> torch.Tensor:
    """transformers' greedy `generate` with Whisper's timestamp processor: the path C2F used before."""
    gen, start = tiny.model.generation_config, prompt(tiny)
    config = GenerationConfig(
        max_length=len(start) + tiny.max_new_tokens,
        min_length=len(start) + forced,
        eos_token_id=tiny.eot_id,
        pad_token_id=tiny.eot_id,
        decoder_start_token_id=start[0],
        suppress_tokens=list(gen.suppress_tokens or []),
        begin_suppress_tokens=list(gen.begin_suppress_tokens or []),
        do_sample=False,
        num_beams=1,
    )
    with torch.inference_mode():
        return GenerationMixin.generate(
            tiny.model,
            input_features=features,
            decoder_input_ids=torch.tensor([start] * len(features)),
            attention_mask=torch.ones(features.shape[0], features.shape[-1], dtype=torch.long),
            generation_config=config,
            logits_processor=LogitsProcessorList(
                [WhisperTimeStampLogitsProcessor(gen, begin_index=len(start))]
            ),
        )


def test_rules_equal_transformers_logits_processors(tiny):
    rules, gen = tiny.decoder.rules, tiny.model.generation_config
    vocab = tiny.model.config.vocab_size
    masks = RuleMasks(rules, vocab, torch.device("cpu"))
    start, ts, eot = prompt(tiny), rules.timestamp_begin, rules.eot
    text = [5, 17, 40]
    histories = [  # generated tokens so far, each rule's case
        [],  # first token
        [ts],  # a first lone timestamp: text next
        [ts + 3, 5],  # open segment
        [ts + 3, 5, ts + 9],  # closing timestamp: a timestamp or eot next, not below it
        [ts + 3, 5, ts + 9, ts + 9],  # a pair: text next, timestamps above it
        [ts + 3, *text, ts + 20, ts + 20, 17],
        text,  # text without timestamps
        [ts, 5, ts + 4, ts + 4, 17, ts + 30, eot],  # ended
    ]
    generator = torch.Generator().manual_seed(0)
    for min_new in (0, 3):
        for history in histories:
            ids = torch.tensor([start + history] * 4)
            scores = torch.randn(4, vocab, generator=generator) * 3
            scores[1, ts:] += 6  # a row where the timestamps' mass wins
            expected = scores.clone()
            for processor in (
                MinLengthLogitsProcessor(len(start) + min_new, eot),
                SuppressTokensLogitsProcessor(list(rules.suppress) or [vocab + 5]),
                SuppressTokensAtBeginLogitsProcessor(list(rules.begin_suppress), len(start)),
                WhisperTimeStampLogitsProcessor(gen, begin_index=len(start)),
            ):
                expected = processor(ids, expected)
            state = RowState.empty(4, torch.device("cpu"))
            for token in history:
                state.advance(torch.full((4,), token), rules)
            got = apply_rules(scores.clone(), state, rules, masks, not history, len(history) >= min_new)
            assert torch.equal(got, expected), (history, min_new)


@pytest.mark.parametrize("forced", [0, 20])
def test_tokens_equal_transformers_generate(tiny, windows, forced):
    features = tiny._input_features(windows)
    ours = torch.cat([tiny.decoder.generate(encoded(tiny, [w]), prompt(tiny), forced) for w in windows])
    theirs = reference_generate(tiny, features, forced)
    n = theirs.shape[1]  # transformers stops when every row has ended; ours pads with eot
    assert torch.equal(ours[:, :n], theirs)
    assert (ours[:, n:] == tiny.eot_id).all()
    assert ours.shape == (len(windows), 3 + tiny.max_new_tokens)


def test_window_tokens_do_not_depend_on_the_batch(tiny, windows):
    memory = encoded(tiny, windows)  # (6, 1500, d)
    alone = torch.cat([tiny.decoder.generate(memory[i : i + 1], prompt(tiny)) for i in range(len(windows))])
    for batch, pad in ((4, False), (4, True), (6, False)):  # 4 + 2: a partial last batch, padded or not
        decoder = GreedyDecoder(
            tiny.model, tiny.decoder.rules, batch, tiny.max_new_tokens, graphs=False, pad_batches=pad
        )
        batched = torch.cat(
            [decoder.generate(memory[i : i + batch], prompt(tiny)) for i in range(0, len(windows), batch)]
        )
        assert torch.equal(batched, alone), (batch, pad)


def test_batched_transcripts_equal_unbatched(windows):
    audio = np.concatenate(windows + windows[:2])  # 144 s: 7 overlapping windows, the last one short
    one = WhisperTranscriber("tiny-test", language="en", device="cpu", batch_size=1, max_new_tokens=16)
    three = WhisperTranscriber("tiny-test", language="en", device="cpu", batch_size=3, max_new_tokens=16)
    expected = one.transcribe_audio(audio).segments
    assert expected and three.transcribe_audio(audio).segments == expected  # batches of 3, 3 and 1


def test_state_starts_empty_and_ended_rows_emit_eot(tiny):
    rules = tiny.decoder.rules
    state = RowState.empty(2, torch.device("cpu"))
    assert state.last.tolist() == [NONE, NONE] and not state.finished.any()
    state.advance(torch.tensor([rules.eot, rules.timestamp_begin + 2]), rules)
    recorded = state.advance(torch.tensor([7, 7]), rules)
    assert recorded.tolist() == [rules.eot, 7] and state.finished.tolist() == [True, False]
    assert state.last_timestamp.tolist() == [NONE, rules.timestamp_begin + 2]
