"""Transcription quality with real Whisper weights: word error rate on sentences spoken by espeak-ng.

Needs the weights (checkpoints/whisper/<size>/ or the Hugging Face cache) and espeak-ng; without
them it stops with the message naming what is missing. Synthetic speech is clean and slow, so the
WER here is a plumbing-and-sanity figure (expect a few percent for base), not LibriSpeech's.
Prints one JSON object: per sentence reference, hypothesis, errors; the corpus WER.

    python benchmarks/transcribe_wer.py --model base
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
sys.path.insert(0, str(ROOT / "tests"))  # the espeak-ng speech generator the tests use

from speechgen import SENTENCES, make_speech_video  # noqa: E402

from c2f.errors import C2FError  # noqa: E402
from c2f.speech.whisper import WhisperTranscriber  # noqa: E402


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="base")
    ap.add_argument("--language", default="en")
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    try:
        transcriber = WhisperTranscriber(args.model, language=args.language, device=args.device)
    except C2FError as exc:  # missing weights: say which files, where
        sys.exit(f"error: {exc}")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "speech.mp4"
        spans = make_speech_video(video, SENTENCES, gap=1.5)
        transcript = transcriber.transcribe_file(video)
    rows, errors, total = [], 0, 0
    for start, end, ref in spans:  # the words said inside each sentence's time span
        hyp = " ".join(s.text for s in transcript.segments if start - 0.75 <= (s.start + s.end) / 2 <= end + 0.75)
        e = edit_distance(words(ref), words(hyp))
        rows.append({"start": round(start, 2), "end": round(end, 2), "reference": ref, "hypothesis": hyp, "errors": e})
        errors, total = errors + e, total + len(words(ref))
    print(json.dumps({"model": transcriber.label, "language": transcript.language, "wer": round(errors / total, 4), "sentences": rows}, indent=2))


if __name__ == "__main__":
    main()
