"""What the machine is asked for: memory kept for reuse (`common.hardware`)."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A child process frees and asks again for the same 64 MB five times (as a card's warp does
# with its stacks) and prints the page faults of the last four.
_CHILD = """
import resource, sys
import numpy as np
sys.path.insert(0, {root!r})
from common.hardware import keep_freed_memory
kept = keep_freed_memory() if {keep} else False
a = np.ones(16 << 20, np.float32); del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    a = np.ones(16 << 20, np.float32); del a
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(keep: bool) -> tuple[bool, int]:
    code = _CHILD.format(root=str(ROOT), keep=keep)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libc" not in (ctypes.util.find_library("c") or ""),
    reason="glibc only",
)
def test_memory_freed_is_reused_without_new_page_faults():
    kept, faults = _faults(keep=True)
    _, faults_by_default = _faults(keep=False)
    assert kept
    # 4 x 64 MB of fresh pages by default: 16,384 faults of 4 KiB, at least 128 of 2 MiB
    assert faults_by_default >= 100
    assert faults * 10 < faults_by_default


def test_keeping_memory_is_refused_quietly_off_glibc(monkeypatch):
    from common import hardware

    monkeypatch.setattr(hardware.sys, "platform", "darwin")
    assert hardware.keep_freed_memory() is False
