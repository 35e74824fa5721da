"""bench.py: a smoke test only (timings belong in bench.py, never in tests): it runs and prints its table."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args):
    return subprocess.run([sys.executable, str(ROOT / "bench.py"), "--quick", "--threads", "1", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_quick_bench_prints_its_table_and_writes_json(tmp_path):
    r = run_bench("--json", str(tmp_path / "bench.json"))
    assert r.returncode == 0, r.stderr
    for figure in ("matmul ceiling", "pretrain tokens/s, CPU MFU", "lora / full fine-tune step time",
                   "optimizer state, lora r=8 on all four block linears / full",
                   "optimizer state, lora r=8 on attention only / full", "probe scoring, batched / per choice", "stream tokens/s"):
        assert figure in r.stdout
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert {"figure", "value", "target", "ok"} <= set(rows[0])
    assert all(row["ok"] is None for row in rows)  # --quick judges nothing: the targets are for the 12M config


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_quick_bench_runs_on_cuda():
    r = run_bench("--cuda")
    assert r.returncode == 0, r.stderr
    assert "CUDA micro compiled tokens/s, MFU" in r.stdout
