"""Names of the speech models (no imports: the CLI reads them while building its parser)."""

TINY_TEST_MODEL = "tiny-test"  # random weights built here: TINY TEST MODE, its words are meaningless
WHISPER_MODELS = ("tiny", "base", "small", "medium", "large-v3", "large-v3-turbo", TINY_TEST_MODEL)
# base: about a third fewer word errors than tiny (README "Speech": published WER) for 1.8x tiny's
# CPU time (benchmarks/transcribe_speed.py); small costs ~2.5x base again for a smaller gain.
DEFAULT_WHISPER_MODEL = "base"
