"""Speech: audio read with ffmpeg (audio.py), Whisper transcripts with segment timestamps
(whisper.py), .srt files (srt.py), the sentence encoder (sentence.py) and the speech score fused with
the visual one (fusion.py). Kept import-light: modules are imported where they are used."""
