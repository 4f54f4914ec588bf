"""Decoded groups between processes: a few reused shared-memory blocks per decoding worker.

A block's name is fixed by (run, worker, slot), so the process that starts the workers can unlink
every block on any exit path (an error, a cancel, a killed worker) without having heard of it.
A worker writes a group straight into a free block of its own (no copy in between) and sends
(worker, slot, generation, shape); the receiver hands the slot back once it has used the frames,
which also bounds the decoded groups in flight. A block whose video's groups no longer fit is made
again, larger (generation + 1: the receiver attaches anew). Reused blocks cost no page faults after
their first group; a new block per group paid them for every frame it held. A worker waiting for a
free slot ends when its parent is gone (c2f.video.worker_process).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from c2f.video.worker_process import get_from_parent

# (worker, slot, generation, shape of the uint8 group)
SlotMessage = tuple[int, int, int, tuple[int, ...]]


@dataclass(frozen=True)
class SlotSet:
    """The names of every block a run may create: `per_worker` slots for each of `workers`."""

    prefix: str
    workers: int
    per_worker: int

    @classmethod
    def new(cls, workers: int, per_worker: int) -> SlotSet:
        # short (macOS allows 31 characters) and unique to this process and run
        return cls(f"c2f{os.getpid()}_{secrets.token_hex(3)}", workers, per_worker)

    def name(self, worker: int, slot: int) -> str:
        return f"{self.prefix}_{worker}_{slot}"

    def names(self) -> list[str]:
        return [self.name(w, s) for w in range(self.workers) for s in range(self.per_worker)]


class WorkerSlots:
    """A worker's side: `take(shape)` gives a writable uint8 array in a free block of its own."""

    def __init__(self, slots: SlotSet, worker: int, returned: Any) -> None:
        self.slots, self.worker, self.returned = slots, worker, returned
        self.free = list(range(slots.per_worker))
        self.blocks: dict[int, shared_memory.SharedMemory] = {}
        self.generation = [0] * slots.per_worker
        self.reserve = 0  # bytes a block is made with at least (the largest group of the video)
        self.last: tuple[int, int] | None = None  # (slot, generation) of the last take

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        slot = self._free_slot()
        nbytes = int(np.prod(shape))
        block = self.blocks.get(slot)
        if block is None or block.size < nbytes:
            if block is not None:  # too small for this video: made again under the same name
                _close(block)
                block.unlink()
                self.generation[slot] += 1
            size = max(1, nbytes, self.reserve)
            block = shared_memory.SharedMemory(self.slots.name(self.worker, slot), create=True, size=size)
            self.blocks[slot] = block
        self.last = (slot, self.generation[slot])
        return np.ndarray(shape, np.uint8, buffer=block.buf)

    def message(self, shape: tuple[int, ...]) -> SlotMessage:
        slot, generation = self.last
        return self.worker, slot, generation, shape

    def _free_slot(self) -> int:
        if not self.free:
            self.free.append(get_from_parent(self.returned))  # ParentGone: nobody left to read the groups
        return self.free.pop(0)


class SlotReader:
    """The receiver's side: the group a message names, the slot handed back, every block unlinked."""

    def __init__(self, slots: SlotSet, returned: list[Any]) -> None:
        self.slots, self.returned = slots, returned
        self.attached: dict[tuple[int, int], tuple[int, shared_memory.SharedMemory]] = {}

    def view(self, message: SlotMessage) -> np.ndarray:
        worker, slot, generation, shape = message
        known = self.attached.get((worker, slot))
        if known is None or known[0] != generation:
            if known is not None:
                _close(known[1])
            block = shared_memory.SharedMemory(self.slots.name(worker, slot))
            self.attached[(worker, slot)] = known = (generation, block)
        return np.ndarray(shape, np.uint8, buffer=known[1].buf)

    def release(self, message: SlotMessage) -> None:
        worker, slot, _, _ = message
        with contextlib.suppress(OSError, ValueError):  # a queue closed by an ending run
            self.returned[worker].put(slot)

    def unlink_all(self) -> None:
        """Unlink every block the run may have made (call once its workers have stopped)."""
        for _, block in self.attached.values():
            _close(block)
        self.attached.clear()
        unlink_blocks(self.slots.names())


def unlink_blocks(names: list[str]) -> None:
    for name in names:
        try:
            block = shared_memory.SharedMemory(name)
        except FileNotFoundError:  # never made, or already gone
            continue
        _close(block)
        with contextlib.suppress(FileNotFoundError):
            block.unlink()


def _close(block: shared_memory.SharedMemory) -> None:
    with contextlib.suppress(BufferError):  # an array still viewing it: the mapping goes with it
        block.close()
