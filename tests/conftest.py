import os
import sys
from pathlib import Path

import pytest

# Tests import the shared generators in tests/ (videogen) as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
# Two cores: keep torch from oversubscribing when tests run next to ffmpeg.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def video_dir(tmp_path: Path) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    return d


# Never try to download weights during tests: the real loading code must say what is missing.
os.environ.setdefault("C2F_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
