"""Speech to timed text with Whisper (transformers): 30 s windows with a stride, batched on a GPU.

Long audio is read as a stream (c2f.speech.audio) and cut into windows of WINDOW_SECONDS that
overlap by STRIDE_SECONDS on each side (one every WINDOW_SECONDS - 2 * STRIDE_SECONDS). Each window
is transcribed on its own with timestamps; a segment is kept by the one window that owns its
midpoint (a window owns its centre, the first one from 0 s and the last one to the end), so words
cut at a window's edge come from the neighbour that heard them whole, and nothing is said twice.
Only a few windows are in memory at a time.

Language: automatic by default, detected once per file on its first window (as OpenAI's
`transcribe` does on the first 30 s) and then kept for every window.

Decoding length: a window's text is at most `max_new_tokens` tokens (OpenAI's sample length, half
the decoder context: 224 for the released models). A model with random weights rarely emits the
end token, so it decodes until that limit: the tiny test mode's limit is small, and the benchmark
forces an exact number of tokens per window (`forced_new_tokens`) so its timings mean something.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from c2f.device import autocast_dtype, pick_device
from c2f.errors import C2FError
from c2f.speech.audio import SAMPLE_RATE, iter_audio, probe_audio
from c2f.speech.decoding import DecodingRules, GreedyDecoder
from c2f.speech.models import DEFAULT_WHISPER_MODEL, TINY_TEST_MODEL, WHISPER_MODELS
from c2f.speech.tiny import TIME_PRECISION, random_whisper
from c2f.speech.transcript import Segment, Transcript

WINDOW_SECONDS = 30.0  # Whisper's input length
STRIDE_SECONDS = 5.0  # overlap on each side of a window
# Windows decoded together: at most 8 on a CPU (measured: README "Speed"), 32 on a GPU, fewer when
# the batch's cross-attention keys and values would pass 512 MB (CPU) / 4 GB (GPU): whisper-small
# decodes 4 at a time on a CPU, medium and large one.
CPU_BATCH, GPU_BATCH = 8, 32
CPU_CACHE_BYTES, GPU_CACHE_BYTES = 512 << 20, 4 << 30

# progress(seconds of audio done, seconds in all)
TranscribeProgress = Callable[[float, float], None]


@dataclass(frozen=True)
class Window:
    start: float  # seconds of its first sample in the file
    samples: np.ndarray  # float32 (n,), n <= WINDOW_SECONDS * SAMPLE_RATE
    first: bool
    last: bool

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / SAMPLE_RATE

    def owns(self, t: float) -> bool:
        """Whether a segment centred at t (seconds in the file) belongs to this window."""
        lo = self.start if self.first else self.start + STRIDE_SECONDS
        hi = float("inf") if self.last else self.start + WINDOW_SECONDS - STRIDE_SECONDS
        return lo <= t < hi


def iter_windows(
    chunks: Iterable[np.ndarray], window_s: float = WINDOW_SECONDS, stride_s: float = STRIDE_SECONDS
) -> Iterator[Window]:
    """Overlapping windows over a stream of sample chunks, step = window - 2 * stride. The last
    window is the rest of the audio when the previous one did not reach the end. Holds at most one
    window plus one chunk of samples."""
    size, step = round(window_s * SAMPLE_RATE), round((window_s - 2 * stride_s) * SAMPLE_RATE)
    buf, offset, pending = np.zeros(0, dtype=np.float32), 0, None  # pending: (start sample, samples)
    covered = 0  # samples covered by windows cut so far
    for chunk in chunks:
        buf = np.concatenate([buf, chunk])
        while len(buf) >= size:
            if pending is not None:
                yield Window(pending[0] / SAMPLE_RATE, pending[1], pending[0] == 0, False)
            pending, covered = (offset, buf[:size].copy()), offset + size
            buf, offset = buf[step:], offset + step
    tail = offset + len(buf)  # total samples
    if pending is None:  # shorter than one window
        if len(buf):
            yield Window(0.0, buf.copy(), True, True)
        return
    if tail > covered:
        yield Window(pending[0] / SAMPLE_RATE, pending[1], pending[0] == 0, False)
        yield Window(offset / SAMPLE_RATE, buf.copy(), False, True)
    else:
        yield Window(pending[0] / SAMPLE_RATE, pending[1], pending[0] == 0, True)


def parse_timestamped(
    ids: list[int], eot_id: int, timestamp_begin: int, decode: Callable[[list[int]], str]
) -> list[Segment]:
    """Segments (seconds relative to the window) of one generated sequence: text between pairs of
    timestamp tokens; every other special token (id >= eot_id: prompt, language, task) is skipped;
    text after the last timestamp runs to the next timestamp or stays open (end None -> window end)."""
    segments, start, text = [], None, []
    for t in ids:
        if t >= timestamp_begin:
            time = (t - timestamp_begin) * TIME_PRECISION
            if start is not None and text:
                segments.append(Segment(start, time, decode(text)))
                start, text = None, []
            else:
                start = time
        elif t < eot_id:
            text.append(t)
    if text:
        segments.append(Segment(start or 0.0, float("inf"), decode(text)))
    return segments


class WhisperTranscriber:
    """Whisper through transformers. `model`: a size of WHISPER_MODELS (weights resolved like
    CLIP's: checkpoints/whisper/<size>/ or the Hugging Face cache), or "tiny-test" (random, built
    here: TINY TEST MODE, its words are meaningless). `language`: an ISO code, or None to detect."""

    def __init__(
        self,
        model: str = DEFAULT_WHISPER_MODEL,
        language: str | None = None,
        device: str | None = None,
        max_new_tokens: int | None = None,
        forced_new_tokens: int | None = None,
        batch_size: int | None = None,
        cuda_graphs: bool = True,
        _parts: tuple | None = None,  # (model, tokenizer, feature extractor): the benchmark's random models
    ) -> None:
        if model not in WHISPER_MODELS and _parts is None:
            raise C2FError(f"unknown Whisper model {model!r}: use one of {', '.join(WHISPER_MODELS)}")
        self.device = pick_device(device)
        self.is_tiny = model == TINY_TEST_MODEL
        if _parts is not None:
            net, self.tokenizer, self.features = _parts
            self.label = f"whisper-{model} (random weights)"
        elif self.is_tiny:
            net, self.tokenizer, self.features = random_whisper(TINY_TEST_MODEL)
            self.label = "whisper-tiny-test (TINY TEST MODE: random weights, the words are meaningless)"
        else:
            net, self.tokenizer, self.features = _load_pretrained(model)
            self.label = f"whisper-{model}"
        self.model_name = model
        dtype = autocast_dtype(self.device) or torch.float32
        self.model = net.to(self.device, dtype=dtype).eval()
        self.dtype = dtype
        gen = self.model.generation_config
        self.languages = {token.strip("<|>"): tid for token, tid in (gen.lang_to_id or {}).items()}
        if language is not None and self.languages and language not in self.languages:
            known = ", ".join(sorted(self.languages)[:20])
            raise C2FError(
                f"unknown language {language!r} for whisper-{model}: use an ISO code such as {known}"
            )
        self.language = language
        self.eot_id = int(gen.eos_token_id if not isinstance(gen.eos_token_id, list) else gen.eos_token_id[0])
        self.timestamp_begin = int(gen.no_timestamps_token_id) + 1
        limit = self.model.config.max_target_positions // 2  # OpenAI's sample_len
        self.max_new_tokens = forced_new_tokens or max_new_tokens or limit
        self.forced_new_tokens = forced_new_tokens
        self.batch_size = batch_size or default_batch(self.model.config, self.device, dtype)
        self.prompt_tail = [int(gen.task_to_id["transcribe"])] if self.languages else []  # after <|lang|>
        rules = DecodingRules(
            eot=self.eot_id,
            timestamp_begin=self.timestamp_begin,
            no_timestamps=int(gen.no_timestamps_token_id),
            # the released models' non-speech symbols; the first token is never eot
            suppress=tuple(int(t) for t in gen.suppress_tokens or []),
            begin_suppress=tuple(int(t) for t in gen.begin_suppress_tokens or []),
            max_initial_timestamp_index=getattr(gen, "max_initial_timestamp_index", None),
        )
        self.decoder = GreedyDecoder(self.model, rules, self.batch_size, self.max_new_tokens, cuda_graphs)

    # --- whole files ---------------------------------------------------------------------------
    def transcribe_file(self, path: str | Path, progress: TranscribeProgress | None = None) -> Transcript:
        """The transcript of a file's first audio stream (no audio: no segments, a note)."""
        info = probe_audio(path)
        if not info.has_audio:
            return Transcript([], self.label, None, 0.0, notes=["no audio stream"])
        step = WINDOW_SECONDS - 2 * STRIDE_SECONDS
        return self.transcribe_chunks(iter_audio(path, chunk_seconds=step), info.duration, progress)

    def transcribe_audio(self, samples: np.ndarray) -> Transcript:
        """The transcript of 16 kHz mono float32 samples (n,)."""
        step = round((WINDOW_SECONDS - 2 * STRIDE_SECONDS) * SAMPLE_RATE)
        chunks = (samples[i : i + step] for i in range(0, len(samples), step))
        return self.transcribe_chunks(chunks, len(samples) / SAMPLE_RATE)

    def transcribe_chunks(
        self, chunks: Iterable[np.ndarray], duration: float, progress: TranscribeProgress | None = None
    ) -> Transcript:
        segments: list[Segment] = []
        language = self.language
        end = 0.0
        batch: list[Window] = []
        for window in iter_windows(chunks):
            batch.append(window)
            if len(batch) == self.batch_size or window.last:
                if language is None:
                    language = self.detect_language(batch[0].samples)
                segments += self._transcribe_batch(batch, language)
                end = batch[-1].end
                batch = []
                if progress:
                    progress(min(end, duration), duration)
        return Transcript(segments, self.label, language, end)  # end: the audio actually read

    # --- windows -------------------------------------------------------------------------------
    def _input_features(self, windows: list[np.ndarray]) -> torch.Tensor:
        """log-mel (B, mels, 3000): each window padded to 30 s by the feature extractor."""
        feats = self.features(
            windows, sampling_rate=SAMPLE_RATE, return_tensors="pt", device=str(self.device)
        ).input_features  # computed on the device (torch STFT), one batch at a time
        return feats.to(self.device, dtype=self.dtype)

    @torch.inference_mode()
    def detect_language(self, samples: np.ndarray) -> str | None:
        """ISO code of the language Whisper hears in (up to 30 s of) `samples`; None for a model
        with one language."""
        if not self.languages:
            return None
        features = self._input_features([samples[: round(WINDOW_SECONDS * SAMPLE_RATE)]])
        token = int(self.model.detect_language(features, generation_config=self.model.generation_config)[0])
        by_id = {tid: code for code, tid in self.languages.items()}
        return by_id.get(token)

    @torch.inference_mode()
    def _transcribe_batch(self, windows: list[Window], language: str | None) -> list[Segment]:
        features = self._input_features([w.samples for w in windows])
        ids = self._generate(features, language)  # (B, prompt + new tokens)
        kept: list[Segment] = []
        for window, row in zip(windows, ids.tolist(), strict=True):
            for seg in parse_timestamped(row, self.eot_id, self.timestamp_begin, self._decode):
                placed = _place(seg, window)
                if placed is not None and window.owns((placed.start + placed.end) / 2):
                    kept.append(placed)
        return kept

    def _generate(self, features: torch.Tensor, language: str | None) -> torch.Tensor:
        """One greedy pass per window, as OpenAI's decoder does on a 30 s segment: prompt
        <|startoftranscript|> <|lang|> <|transcribe|>, then text and timestamp tokens (timestamps
        in pairs, never decreasing), at most `max_new_tokens` (exactly `forced_new_tokens`); the
        windows of a batch together (c2f/speech/decoding.py). transformers' Whisper `generate` is
        not used: it keeps decoding a window from its last timestamp, which with random weights
        repeats the window and doubles the time, and its per-token Python costs more than the
        arithmetic of a small model."""
        prompt = [int(self.model.generation_config.decoder_start_token_id)]
        if self.languages:
            prompt += [self.languages[language or "en"], *self.prompt_tail]
        encoded = self.model.model.encoder(input_features=features).last_hidden_state  # (B, 1500, d)
        return self.decoder.generate(encoded, prompt, self.forced_new_tokens or 0)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()


def default_batch(config, device: torch.device, dtype: torch.dtype) -> int:
    """Windows per batch (see CPU_BATCH): bounded by the cross-attention cache they need."""
    per_window = 2 * config.decoder_layers * config.max_source_positions * config.d_model * dtype.itemsize
    most, budget = (GPU_BATCH, GPU_CACHE_BYTES) if device.type == "cuda" else (CPU_BATCH, CPU_CACHE_BYTES)
    return max(1, min(most, budget // per_window))


def _place(seg: Segment, window: Window) -> Segment | None:
    """A window-relative segment in file seconds, inside the window's audio (a timestamp past the
    audio, from a short last window or random weights, is cut to its end); None when empty."""
    start = window.start + min(max(seg.start, 0.0), window.end - window.start)
    end = window.start + min(seg.end, WINDOW_SECONDS)
    end = min(max(end, start + TIME_PRECISION), window.end)
    if end <= start or not seg.text:
        return None
    return Segment(round(start, 3), round(end, 3), seg.text)


def _load_pretrained(size: str) -> tuple:
    """(model, tokenizer, feature extractor) of a released Whisper from a local folder (never the
    network here: resolve_model_folder already downloaded what was allowed)."""
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizer

    from c2f.weights import resolve_model_folder

    folder = resolve_model_folder(f"whisper:{size}")
    model = WhisperForConditionalGeneration.from_pretrained(
        folder, local_files_only=True, attn_implementation="sdpa"
    )
    tokenizer = WhisperTokenizer.from_pretrained(folder, local_files_only=True)
    features = WhisperFeatureExtractor.from_pretrained(folder, local_files_only=True)
    return model, tokenizer, features
