"""Randomly initialised models built here, without any download: the TINY TEST MODE of speech
(tiny Whisper, tiny sentence encoder) and the full-size Whisper architectures the speed benchmark
times. Their words and scores are meaningless; only the plumbing around them can be checked.

The Whisper tokenizer is a byte-level BPE (every text can be encoded) followed by Whisper's special
tokens in Whisper's order: <|endoftext|>, <|startoftranscript|>, one token per language,
<|translate|>, <|transcribe|>, <|startoflm|>, <|startofprev|>, <|nospeech|>, <|notimestamps|>, then
the 1501 timestamp tokens <|0.00|> .. <|30.00|> (0.02 s apart).
"""

from __future__ import annotations

import torch

TIME_PRECISION = 0.02  # seconds between Whisper's timestamp tokens
NUM_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>
TINY_LANGUAGES = ("en", "fr", "de")
_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("e", "r"), ("Ġ", "s"), ("o", "n")]

# Full-size Whisper architectures (the published model configurations), for timing only.
FULL_SIZE_DIMS = {  # size -> (d_model, layers per stack, attention heads, feed-forward dim)
    "tiny": (384, 4, 6, 1536),
    "base": (512, 6, 8, 2048),
    "small": (768, 12, 12, 3072),
}
FULL_TEXT_TOKENS = 50257  # GPT-2 byte-level BPE of the multilingual Whisper models
FULL_LANGUAGES = 99  # tiny .. large-v2 (vocabulary 51865)


def whisper_test_tokenizer(text_tokens: int | None = None, languages: tuple[str, ...] = TINY_LANGUAGES):
    """A WhisperTokenizer with a small BPE vocabulary (padded with unused tokens up to `text_tokens`
    so that the special tokens sit where a full-size model expects them)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import WhisperTokenizer

    vocab = {sym: i for i, sym in enumerate(sorted(ByteLevel.alphabet()))}
    for a, b in _MERGES:
        vocab[a + b] = len(vocab)
    while text_tokens is not None and len(vocab) < text_tokens:
        vocab[f"<unused{len(vocab)}>"] = len(vocab)
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in languages),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
        *(f"<|{i * TIME_PRECISION:.2f}|>" for i in range(NUM_TIMESTAMPS)),
    ]
    for token in specials:
        vocab[token] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=list(_MERGES))
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    return tokenizer


def whisper_generation_config(tokenizer, languages: tuple[str, ...], max_length: int):
    """Whisper's generation settings (token ids of the prompt, languages, timestamps) for `tokenizer`."""
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    return GenerationConfig(
        decoder_start_token_id=ids("<|startoftranscript|>"),
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        no_timestamps_token_id=ids("<|notimestamps|>"),
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in languages},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        is_multilingual=True,
        max_initial_timestamp_index=50,
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
        max_length=max_length,
    )


def random_whisper(size: str = "tiny-test", seed: int = 0):
    """(model, tokenizer, feature extractor) with random weights: "tiny-test" (d_model 32, one layer
    each side: tests) or a full-size architecture of FULL_SIZE_DIMS (the benchmark)."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    if size == "tiny-test":
        languages, text_tokens, dims, max_target = TINY_LANGUAGES, None, (32, 1, 2, 64), 64
    else:
        from transformers.models.whisper.tokenization_whisper import LANGUAGES

        languages = tuple(list(LANGUAGES)[:FULL_LANGUAGES])
        text_tokens, dims, max_target = FULL_TEXT_TOKENS, FULL_SIZE_DIMS[size], 448
    tokenizer = whisper_test_tokenizer(text_tokens, languages)
    d_model, layers, heads, ffn = dims
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=ffn,
        max_source_positions=1500,  # 30 s of 10 ms frames, halved by the encoder's stride-2 conv
        max_target_positions=max_target,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        suppress_tokens=[],
        begin_suppress_tokens=[eot],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = whisper_generation_config(tokenizer, languages, max_target)
    return model, tokenizer, WhisperFeatureExtractor(feature_size=80)


_WORDS = (
    "the a an and of to in on is was he she it they you i we his her their him them this that with "
    "for at by from hands keys car door opens closes runs walks talks says dog cat man woman person "
    "table kitchen street house red blue green ball music song water food eat drink sit stand look"
)
TINY_SENTENCE_WORDS = tuple(_WORDS.split())


def random_sentence_encoder(seed: int = 0):
    """(model, tokenizer) of a tiny random BERT (hidden 32, 2 layers) with a WordPiece vocabulary of
    common words plus single letters (so that any word can be split)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab: dict[str, int] = {}
    for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_SENTENCE_WORDS]:
        vocab.setdefault(token, len(vocab))
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(f"##{ch}", len(vocab))
    tokenizer = BertTokenizer(vocab=vocab)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config, add_pooling_layer=False).eval()
    return model, tokenizer
