"""`c2f doctor`: the machine, the libraries, the weights found or missing, and the speed settings."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from c2f import tuning
from c2f.cli import main
from c2f.weights import REGISTRY


def doctor_json(capsys, *extra: str) -> dict:
    assert main(["doctor", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_doctor_reports_machine_libraries_and_weights(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_CHECKPOINTS", str(tmp_path))
    (tmp_path / "clip").mkdir()
    clip_file = tmp_path / "clip" / "open_clip_model.safetensors"
    clip_file.write_bytes(b"x")
    monkeypatch.delenv("C2F_OFFLINE", raising=False)  # the doctor never downloads, even online
    r = doctor_json(capsys)
    assert r["cpu"]["model"] == tuning.cpu_model()
    assert r["cpu"]["aten_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert r["libraries"]["torch"] == torch.__version__.split("+")[0]
    assert r["tools"]["ffmpeg"]["path"] and "ffmpeg version" in r["tools"]["ffmpeg"]["version"]
    weights = {w["name"]: w for w in r["weights"]}
    assert set(weights) == set(REGISTRY)
    assert weights["clip:ViT-B-32:openai"]["found"] and weights["clip:ViT-B-32:openai"]["path"] == str(clip_file)
    s3d = weights["s3d:KINETICS400_V1"]
    if not s3d["found"]:  # says where to put it, the project's folder first
        assert s3d["put_it_in"][0] == str(tmp_path / "s3d" / "s3d-d76dad2f.pth")
    assert [g["name"] for g in r["gpu"]] == [
        torch.cuda.get_device_properties(i).name for i in range(torch.cuda.device_count())
    ]
    assert r["tuning"]["machine_key"] == tuning.machine_key()


def test_doctor_tune_measures_and_reports_the_choices(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("C2F_TUNING_CACHE", str(tmp_path / "tuning.json"))
    tuning.forget()
    r = doctor_json(capsys, "--tune", "--preset", "tiny-clip-only")
    assert r["tuned"] == {"preset": "tiny-clip-only"}
    made = {c["task"]: c for c in r["tuning"]["in_this_process"]}
    assert {"clip-image", "clip-text"} <= set(made)
    assert made["clip-image"]["setting"]["dtype"] in ("float32", "bfloat16")
    # a later process finds them in the cache
    tuning.forget()
    again = doctor_json(capsys)
    cached = {(c["task"], c["shape"]): c["setting"] for c in again["tuning"]["cached"]}
    assert cached[("clip-image", made["clip-image"]["shape"])] == made["clip-image"]["setting"]
    tuning.forget()


def test_doctor_text_through_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "c2f", "doctor"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for heading in ("CPU ", "flags", "kernels  ATen", "ffmpeg", "weights", "GPU", "speed settings"):
        assert heading in done.stdout
