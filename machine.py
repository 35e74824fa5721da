"""
Where a figure was measured, so that it means something on another machine: the stamp (date, CPU
or GPU, torch and Python, threads, commit) and a matmul ceiling timed beside the figure. bench.py
stamps its tables with it, ladder.py its results.
"""

import contextlib
import math
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
CUDA_SQUARE = 8192  # the GPU ceiling's matmul side: large enough to time the tensor cores, not kernel launches


def best_times(fns, repeats, sync=lambda: None):
    """Best wall time of each function, the functions run interleaved round after round so that a
    burst of load on a shared machine hits all of them alike."""
    best = {k: math.inf for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            sync()
            t = time.perf_counter()
            f()
            sync()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def matmul(M=2048, K=384, N=1536, device="cpu", dtype=torch.float32, reps=10):
    """(a function doing `reps` (M, K) @ (K, N) matmuls, its FLOPs): the ceiling, timed beside the model."""
    a, b = torch.randn(M, K, device=device, dtype=dtype), torch.randn(K, N, device=device, dtype=dtype)

    def run():
        for _ in range(reps):
            torch.mm(a, b)
    return run, 2 * M * K * N * reps


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what the platform module reports."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def git_commit(root=ROOT):
    """HEAD's short hash, with "+dirty" when a tracked file differs from it: a figure is only as
    reproducible as the code that made it. Outside a git checkout (a copy of the files sent to another
    machine), $ACCRETE_COMMIT as the copy's sender gave it, or "unknown"."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
    outside = f"{os.environ['ACCRETE_COMMIT']} (ACCRETE_COMMIT)" if os.environ.get("ACCRETE_COMMIT") else "unknown"
    try:
        head, status = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return outside
    if head.returncode != 0 or status.returncode != 0:
        return outside
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def stamp(cuda):
    """What a figure needs beside it to mean anything: when, on what, with which torch and code."""
    return dict(date=datetime.now(timezone.utc).isoformat(timespec="seconds"), cpu=cpu_model(), cpus=os.cpu_count(),
                gpu=torch.cuda.get_device_name() if cuda else None, torch=torch.__version__,
                python=platform.python_version(), threads=torch.get_num_threads(), commit=git_commit())


def ceiling(device="cpu"):
    """The matmul ceiling measured now, FLOP/s: float32 on the CPU, bf16 on a GPU."""
    cuda = device.startswith("cuda")
    # on a GPU the CPU's shape would time kernel launches: the large square bench.py --cuda times
    shape = (CUDA_SQUARE,) * 3 if cuda else ()
    fn, flops = matmul(*shape, device=device, dtype=torch.bfloat16 if cuda else torch.float32)
    fn()
    return flops / best_times({"c": fn}, 5, torch.cuda.synchronize if cuda else lambda: None)["c"]


def with_ceiling(device):
    """The stamp and the ceiling measured now, so that a run's seconds mean something on another machine."""
    m = stamp(device.startswith("cuda"))
    m["ceiling"], m["ceiling_dtype"] = ceiling(device), "bf16" if device.startswith("cuda") else "float32"
    return m
