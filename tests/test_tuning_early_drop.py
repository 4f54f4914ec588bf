"""The tuner drops clearly slower candidates early and still chooses the fastest accurate one.

Timing here runs on a fake clock that the fake encoder's layers advance by a set cost: the clock is
what the early-drop logic reads, so a fake one makes the test exact and independent of the CPU.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn

from c2f import tuning
from c2f.encoders.tuning import DOMINATED, LONG_RUN_S, REPEATS, _Stopped, stop_after, tune

STEPS = 100  # layers of the fake encoder: a run can be stopped between any two
WARM_UP_FACTOR = 1.5  # a warm-up costs this much more than a timed run (one-time costs)
# seconds per item of each candidate (dtype, batch, layout) in a timed run
COST = {
    ("float32", 2, "a"): 0.010,  # the default
    ("bfloat16", 2, "a"): 2.0,  # emulated bfloat16: 200x slower
    ("float32", 1, "a"): 0.016,  # 1.6x the best so far: timed once, not twice
    ("float32", 4, "a"): 0.008,  # the fastest accurate candidate
    ("bfloat16", 4, "a"): 2.0,
    ("float32", 4, "b"): 0.006,  # faster still, but its embeddings miss the accuracy bound
}
AXES = {"dtype": ["float32", "bfloat16"], "batch": [2, 1, 4], "layout": ["a", "b"]}
EMBEDDINGS = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))  # (n, d)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Layer(nn.Module):
    """One layer of the fake encoder: it advances the clock by its share of the run's cost."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def forward(self, x: torch.Tensor, seconds: float) -> torch.Tensor:
        self.clock.now += seconds
        return x


class FakeEncoder:
    """run(setting) -> (batch, d) embeddings, costing COST[setting] per item on the clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.layers = nn.ModuleList(Layer(clock) for _ in range(STEPS))
        self.finished: Counter[tuple] = Counter()  # runs that reached their last layer
        self.spent: Counter[tuple] = Counter()  # clock seconds spent in each candidate

    def run(self, setting: tuning.Setting) -> torch.Tensor:
        key = (setting["dtype"], setting["batch"], setting["layout"])
        n = setting["batch"]
        seconds = COST[key] * n * (WARM_UP_FACTOR if self.finished[key] == 0 else 1.0)
        x = EMBEDDINGS[:n].clone()
        start = self.clock.now
        try:
            for layer in self.layers:
                x = layer(x, seconds / STEPS)
        finally:
            self.spent[key] += self.clock.now - start
        self.finished[key] += 1
        return x + 0.1 if setting["layout"] == "b" else x  # layout b: a lossy kernel


def test_fastest_accurate_candidate_is_chosen_and_dominated_ones_are_cut_short(fresh_cache):
    clock = FakeClock()
    enc = FakeEncoder(clock)
    choice = tune("fake-encoder", "fake", AXES, enc.run, clock=clock)

    assert choice.source == "measured"
    assert choice.setting == {"dtype": "float32", "batch": 4, "layout": "a"}  # the fastest kept
    ms = choice.timings_ms
    assert ms["dtype=float32,batch=4,layout=a"] == pytest.approx(8.0)  # exact on the fake clock
    assert ms["dtype=float32,batch=2,layout=a"] == pytest.approx(10.0)
    # the accuracy gate still applies: the fastest of all misses the bound and is rejected
    assert ms["dtype=float32,batch=4,layout=b"] is None
    assert any(n.startswith("dtype=float32,batch=4,layout=b: rejected, cosine") for n in choice.notes)

    # a candidate close to the best is timed in full: warm-up + REPEATS runs
    assert enc.finished[("float32", 2, "a")] == enc.finished[("float32", 4, "a")] == 1 + REPEATS
    # 1.6x the best (> DOMINATED) after its first timed run: not timed again
    assert COST[("float32", 1, "a")] > DOMINATED * COST[("float32", 2, "a")]
    assert enc.finished[("float32", 1, "a")] == 2 < 1 + REPEATS
    assert ms["dtype=float32,batch=1,layout=a"] == pytest.approx(16.0)
    # emulated bfloat16: its warm-up is stopped between layers, no run of it finishes
    step = COST[("bfloat16", 2, "a")] * 2 * WARM_UP_FACTOR / STEPS
    for batch in (2, 4):
        key = ("bfloat16", batch, "a")
        assert enc.finished[key] == 0
        full = COST[key] * batch * (WARM_UP_FACTOR + 1)  # warm-up and one long timed run
        assert LONG_RUN_S < enc.spent[key] <= LONG_RUN_S + step * batch / 2 < full / 5
        assert ms[f"dtype=bfloat16,batch={batch},layout=a"] == pytest.approx(enc.spent[key] / batch * 1e3)
        assert any(n.startswith(f"dtype=bfloat16,batch={batch},layout=a: warm-up stopped") for n in choice.notes)
    # candidates in two axes away from the best are not run at all (the greedy search)
    assert ("bfloat16", 1, "a") not in enc.finished and ("float32", 2, "b") not in enc.finished


def test_stop_after_cuts_a_run_between_modules_and_only_when_over_time():
    clock = FakeClock()
    layers = nn.ModuleList(Layer(clock) for _ in range(10))
    with pytest.raises(_Stopped), stop_after(0.35, clock):  # 0.1 s a layer: the fifth call finds 0.4 s gone
        for layer in layers:
            layer(torch.zeros(1), 0.1)
    assert clock.now == pytest.approx(0.4)
    clock.now = 0.0
    with stop_after(2.0, clock):  # within the limit: runs to the end
        for layer in layers:
            layer(torch.zeros(1), 0.1)
    assert clock.now == pytest.approx(1.0)
    layers[0](torch.zeros(1), 5.0)  # outside the block no limit is left behind
