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
    r = run_bench("--json", str(tmp_path / "bench.json"), "--scale-tokens", "200000", "400000")
    assert r.returncode == 0, r.stderr
    for figure in ("matmul ceiling", "pretrain tokens/s, CPU MFU", "lora / full fine-tune step time",
                   "optimizer state, lora r=8 on all four block linears / full",
                   "optimizer state, lora r=8 on attention only / full", "probe scoring, batched / per choice",
                   "stream tokens/s", "corpus 0.4M tokens: init", "add time per token, 0.4M / 0.2M"):
        assert figure in r.stdout
    rows = json.loads((tmp_path / "bench.json").read_text())
    assert {"figure", "value", "target", "ok"} <= set(rows[0])
    assert all(row["ok"] is None for row in rows)  # --quick judges nothing: the targets are for the 12M config
    capped = rows[-1]  # the large corpus added again, holding no more needles than the small one has
    assert capped["figure"].startswith("add 0.4M holding 0.2M's") and 0 < capped["budget"] < capped["needles"]
    assert capped["peak"] > 0 and capped["seconds"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_quick_bench_runs_on_cuda():
    r = run_bench("--cuda")
    assert r.returncode == 0, r.stderr
    assert "CUDA micro compiled tokens/s, MFU" in r.stdout


def test_a_step_with_a_compiled_forward_trains_like_the_eager_one():
    """bench's CUDA rows time steps through torch.compile; the step must take the compiled module
    (which has no truth value) and train as the eager model does. Run on the CPU with a tiny model."""
    sys.path.insert(0, str(ROOT))
    import bench
    from model import GPT, GPTConfig
    config = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64)
    after = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = GPT(config)
        step, _ = bench.train_step(model, torch.device("cpu"), B=2,
                                   compiled=torch.compile(model) if compiled else None)
        step()
        after[compiled] = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.manual_seed(0)
    before = torch.cat([p.detach().flatten() for p in GPT(config).parameters()])
    # AdamW's first step moves each weight by about the learning rate (1e-3); the two agree to 1e-4
    # (elements whose gradient is near zero take a sign from rounding, so not to float precision)
    assert (after[False] - before).abs().max() > 5e-4
    assert (after[True] - after[False]).abs().max() < 1e-4
