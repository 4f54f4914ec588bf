"""`c2f doctor [--json] [--tune [--preset NAME]]`: what this machine offers C2F and what C2F chose.

CPU model and features, the kernel limits in force, library versions, ffmpeg, the weights found
(and where to put the missing ones), the GPU, and the speed settings measured for this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

# CPU flags (/proc/cpuinfo names) that decide which kernels torch and oneDNN can use.
CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "avx_vnni",
    "asimd",  # ARM
    "sve",
    "bf16",
)
# distribution names to try, in order, for each library
LIBRARIES = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "open_clip": ("open_clip_torch",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss"),
    "decord": ("decord", "eva-decord"),
    "gradio": ("gradio",),
    "numpy": ("numpy",),
}
ENV_IN_FORCE = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "C2F_CPU_BF16",
    "C2F_DEVICE",
    "C2F_TUNING",
    "C2F_TUNING_CACHE",
    "OMP_NUM_THREADS",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor", help="CPU features, libraries, ffmpeg, weights, GPU and the speed settings chosen"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--tune",
        action="store_true",
        help="measure the encoders' speed settings now (default preset when its weights exist, else tiny)",
    )
    p.add_argument("--preset", default=None, help="feature preset to tune (with --tune)")
    p.set_defaults(func=run)


def cpu_report() -> dict[str, Any]:
    import torch

    from c2f.device import cpu_has_bf16_flag, kernels_in_force
    from c2f.tuning import cpu_model

    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    return {
        "model": cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "bf16_flag": cpu_has_bf16_flag(),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_isa": kernels_in_force()["onednn_isa"],
        "env": {name: os.environ[name] for name in ENV_IN_FORCE if name in os.environ},
    }


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, dists in LIBRARIES.items():
        out[name] = None
        for dist in dists:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                out[name] = importlib.metadata.version(dist)
                break
    return out


def tool_report() -> dict[str, Any]:
    from c2f.video.tools import ffmpeg_exe, ffprobe_exe

    out: dict[str, Any] = {}
    for name, find in (("ffmpeg", ffmpeg_exe), ("ffprobe", ffprobe_exe)):
        try:
            exe = find()
            first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=20).stdout
            out[name] = {"path": exe, "version": (first.splitlines() or ["?"])[0]}
        except Exception as exc:  # missing or broken: reported, the doctor goes on
            out[name] = {"path": None, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return out


def weights_report() -> list[dict[str, Any]]:
    """Each registered weights file: found where, or missing and where it may be put. Never
    downloads (the lookup runs as offline)."""
    from c2f.errors import C2FError, MissingWeightsError
    from c2f.weights import REGISTRY, candidate_places, resolve_weights

    saved = os.environ.get("C2F_OFFLINE")
    os.environ["C2F_OFFLINE"] = "1"
    try:
        out = []
        for name, spec in REGISTRY.items():
            entry: dict[str, Any] = {"name": name, "what": spec.what, "file": spec.filenames[0]}
            try:
                entry |= {"found": True, "path": str(resolve_weights(name))}
            except MissingWeightsError:
                entry |= {"found": False, "put_it_in": candidate_places(spec)}
            except C2FError as exc:  # present but unusable (truncated download)
                entry |= {"found": False, "problem": str(exc), "put_it_in": candidate_places(spec)}
            out.append(entry)
        return out
    finally:
        if saved is None:
            os.environ.pop("C2F_OFFLINE", None)
        else:
            os.environ["C2F_OFFLINE"] = saved


def gpu_report() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    return gpus


def tune_now(preset: str | None, weights: list[dict[str, Any]]) -> dict[str, Any]:
    """Tune the encoders of `preset` (default: `default` when its weights are here, else `tiny`)."""
    from c2f.encoders.tuning import tune_preset
    from c2f.features import get_preset

    have = {w["name"] for w in weights if w["found"]}
    if preset is None:
        preset = "default" if {"clip:ViT-B-32:openai", "s3d:KINETICS400_V1"} <= have else "tiny"
    settings = get_preset(preset)  # an unknown name is a FeatureMismatchError (one clear line)
    tune_preset(settings)
    return {"preset": preset}


def choices_report() -> dict[str, Any]:
    from c2f import tuning

    made = {(c.task, c.shape): c for c in tuning.choices_made()}
    cached = [c for c in tuning.cached_choices() if (c.task, c.shape) not in made]
    return {
        "cache": str(tuning.cache_path()),
        "machine_key": tuning.machine_key(),
        "in_this_process": [asdict(c) for c in made.values()],
        "cached": [asdict(c) for c in cached],
    }


def run(args: argparse.Namespace) -> int:
    import torch

    from c2f import __version__

    report: dict[str, Any] = {
        "c2f": __version__,
        "python": platform.python_version(),
        "cpu": cpu_report(),
        "libraries": library_versions(),
        "tools": tool_report(),
        "weights": weights_report(),
        "gpu": gpu_report(),
    }
    if args.tune:
        report["tuned"] = tune_now(args.preset, report["weights"])
    report["tuning"] = choices_report()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report, torch.__version__))
    return 0


def format_report(r: dict[str, Any], torch_version: str) -> str:
    cpu = r["cpu"]
    lines = [
        f"c2f {r['c2f']}  python {r['python']}  torch {torch_version}",
        f"CPU        {cpu['model']} ({cpu['machine']}, {cpu['cores']} cores, torch threads {cpu['torch_threads']})",
        f"  flags    {' '.join(cpu['flags']) or '-'}   (bf16 flag: {'yes' if cpu['bf16_flag'] else 'no'})",
        f"  kernels  ATen {cpu['aten_cpu_capability']}; oneDNN {cpu['onednn_isa'] or '?'}"
        + "".join(f"; {k}={v}" for k, v in cpu["env"].items()),
        "libraries  " + "  ".join(f"{k} {v or 'MISSING'}" for k, v in r["libraries"].items()),
    ]
    for name, tool in r["tools"].items():
        lines.append(
            f"{name:<10} " + (f"{tool['version']}  ({tool['path']})" if tool["path"] else tool["error"])
        )
    lines.append("weights")
    for w in r["weights"]:
        if w["found"]:
            lines.append(f"  found    {w['name']}: {w['path']}")
        else:
            lines.append(f"  MISSING  {w['name']} ({w['what']}), {w['file']}; put it at one of:")
            lines.extend(f"             {place}" for place in w["put_it_in"])
            if "problem" in w:
                lines.append(f"             ({w['problem']})")
    gpus = r["gpu"]
    lines.append("GPU        " + ("; ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in gpus) or "none"))
    t = r["tuning"]
    lines.append(f"speed settings (cache {t['cache']})")
    if "tuned" in r:
        lines.append(f"  tuned now for preset {r['tuned']['preset']!r}")
    for where in ("in_this_process", "cached"):
        for c in t[where]:
            setting = ", ".join(f"{k}={v}" for k, v in c["setting"].items())
            lines.append(f"  {c['task']:<11} {c['shape']}: {setting}  [{c['source']}]")
    if not t["in_this_process"] and not t["cached"]:
        lines.append(
            "  none measured on this machine yet (they are measured on first use; `c2f doctor --tune`)"
        )
    return "\n".join(lines)
