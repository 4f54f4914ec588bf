"""Extraction and indexing on Ray (a local Ray with 2 CPUs): the same features as the local path."""

from __future__ import annotations

import numpy as np
import pytest
from videogen import make_text_file_as_video, make_video

from c2f.features import get_preset
from c2f.features.extract import extract_features
from c2f.features.parallel import VideoJob

ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install -r requirements-ray.txt)")

pytestmark = pytest.mark.slow  # Ray's start and its data pipeline: tens of seconds on 2 cores


@pytest.fixture(scope="module")
def local_ray():
    from c2f.features.ray_extract import connect

    started = connect(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray")
    return [
        make_video(d / "a.mp4", seconds=4.0),  # 3 clips
        make_text_file_as_video(d / "bad.mp4"),
        make_video(d / "b.mkv", seconds=7.0, size=(128, 96)),  # 5 clips: two groups with S3D
    ]


def test_ray_features_equal_the_local_path(local_ray, folder):
    from c2f.features.ray_extract import extract_many_ray

    settings = get_preset("tiny")
    jobs = [VideoJob(v, v.stem) for v in folder]
    results = {r.index: r for r in extract_many_ray(jobs, settings)}
    assert sorted(results) == [0, 1, 2]
    assert results[1].features is None and "bad.mp4" in results[1].error
    for i in (0, 2):
        local = extract_features(folder[i], settings, folder[i].stem, subtitles=[])
        got = results[i].features
        assert (got.video_id, got.streams, got.video) == (local.video_id, local.streams, local.video)
        np.testing.assert_array_equal(got.clip_times, local.clip_times)
        np.testing.assert_allclose(got.features, local.features, rtol=0, atol=1e-5)


def test_index_on_ray_records_failures_and_equals_local(local_ray, folder, tmp_path):
    from c2f.features.parallel import make_extractor
    from c2f.library import Library

    local = Library(tmp_path / "local", settings="tiny-clip-only")
    on_ray = Library(tmp_path / "ray", settings="tiny-clip-only")
    a = local.add(folder)
    b = on_ray.add(folder, extractor=make_extractor("ray"))  # Ray already started: used as it is
    assert sorted(r.video_id for r in b.added) == sorted(r.video_id for r in a.added)
    assert b.failed == a.failed and [name for name, _ in b.failed] == ["bad.mp4"]
    assert {r.video_id: r.status for r in on_ray.list()} == {r.video_id: r.status for r in local.list()}
    for rec in b.added:
        np.testing.assert_allclose(
            on_ray.load_features(rec.video_id).features, local.load_features(rec.video_id).features, atol=1e-5
        )
