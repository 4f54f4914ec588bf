"""The CPU kernel limits CI uses to stand in for other machines really take effect.

CI runs the numerics tests with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (a machine without
AVX-512) and the whole suite with C2F_CPU_BF16=0 and =1; these tests prove the limits are honoured,
so those runs cover what they claim to.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from c2f.device import cpu_has_native_bf16

PROBE = """
import torch
x = torch.randn(2, 16, 12, 12)
with torch.no_grad():
    torch.nn.Conv2d(16, 16, 3)(x)  # a oneDNN primitive, so oneDNN reports its ISA
print("aten:", torch.backends.cpu.get_cpu_capability())
"""


def run_probe(**env: str) -> str:
    full = {**os.environ, "ONEDNN_VERBOSE": "1", **env}
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        if name not in env:
            full.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def onednn_isa(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ",info,cpu,isa:" in ln]
    assert lines, out[-2000:]
    return lines[0].split("isa:", 1)[1]


def test_avx2_limit_takes_effect() -> None:
    limited = run_probe(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
    assert "aten: AVX2" in limited
    isa = onednn_isa(limited)
    assert "AVX2" in isa and "512" not in isa and "AMX" not in isa


def test_this_run_uses_the_limits_it_was_given() -> None:
    asked = os.environ.get("ATEN_CPU_CAPABILITY")
    if asked:
        assert torch.backends.cpu.get_cpu_capability().lower() == asked.lower()
    forced = os.environ.get("C2F_CPU_BF16")
    if forced in ("0", "1"):
        assert cpu_has_native_bf16() is (forced == "1")


def test_bfloat16_runs_under_the_avx2_limit() -> None:
    # Without AVX512-BF16 torch emulates bfloat16: slower, but the results must still be right.
    code = (
        "import torch; torch.manual_seed(0); a = torch.randn(64, 64); b = torch.randn(64, 64);"
        "ref = a @ b; got = (a.bfloat16() @ b.bfloat16()).float();"
        "print(float((got - ref).abs().max() / ref.abs().max()))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.strip()) < 0.05
