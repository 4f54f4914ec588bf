import os
import sys
import tempfile
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
# Speed choices measured by the tests go to a cache of this run, never to the user's.
os.environ.setdefault("C2F_TUNING_CACHE", str(Path(tempfile.mkdtemp(prefix="c2f-tuning-")) / "tuning.json"))


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tuning cache file of this test only, no C2F_TUNE_* or C2F_TUNING setting, and no choice
    remembered by the process."""
    from c2f import tuning

    path = tmp_path / "tuning.json"
    monkeypatch.setenv("C2F_TUNING_CACHE", str(path))
    for name in [n for n in os.environ if n.startswith("C2F_TUNE_")] + ["C2F_TUNING"]:
        monkeypatch.delenv(name, raising=False)
    tuning.forget()
    yield path
    tuning.forget()

# Modules whose results cannot depend on CPU kernels (decoding, parsing, the UI, crash recovery):
# CI skips them in its extra run under the AVX2 kernel limit. Every other test is "numerics".
NOT_NUMERICS = {
    "test_app_e2e",
    "test_app_hostile",
    "test_app_multiuser",
    "test_app_restart",
    "test_app_service",
    "test_app_space",
    "test_browser_demo",
    "test_browser_like_export",
    "test_browser_speech",
    "test_catalog",
    "test_cli_errors",
    "test_data_tvr",
    "test_environment",
    "test_eval_predictions",
    "test_export",
    "test_import_tvr",
    "test_imports",
    "test_library_crash",
    "test_safe_loading",
    "test_scale_ray",
    "test_scale_vectorstore",
    "test_shared_files",
    "test_speech_ui",
    "test_subtitles_align",
    "test_subtitles_parse",
    "test_tuning_concurrency",
    "test_vectorstore_shared",  # stores' bookkeeping across writers and readers; exactness: test_vectorstore_qdrant
    "test_tuning_doctor",
    "test_ui_exports",
    "test_video_decode",
    "test_video_pipe",
    "test_video_probe",
    "test_video_worker_process",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__ not in NOT_NUMERICS:
            item.add_marker(pytest.mark.numerics)
