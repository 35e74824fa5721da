"""
accrete's speed and scale figures, measured in one run and printed as one table (figure, value,
target, pass/fail). Absolute times drift on shared machines, so every figure is a ratio of two
things timed interleaved in the same run, or is set against a ceiling measured in the same run
(a float32 matmul of the model's own shapes, on the same threads); the default ladder (--ladder),
timed once, is projected onto the CPUs of its aim by that ceiling. Timings live here, never in tests.

    python bench.py                  # CPU figures on the 12M config (a few minutes on 2 cores)
    python bench.py --quick          # a tiny config, seconds: the smoke test (and one grow unit on micro)
    python bench.py --scale          # + corpus of 10M tokens: generate, init, add, stream (--scale-100m: + 100M,
                                     #   and 100M added again holding no more needles than 10M has)
    python bench.py --ddp            # + torchrun on the CPU: 2 processes x 1 thread vs 1 process x 2 threads
    python bench.py --ladder         # + the default ladder, timed whole, against its 15-minute aim (~20 min)
    python bench.py --cuda           # + the `small` preset on the GPU, bf16, with and without torch.compile,
                                     #   and one whole grow unit (LoRA, verify, merge) on it
    python bench.py --json run.json  # also write the rows, stamped with the machine, date, torch and commit
    python bench.py --render run.json [more.json ...] --out BENCH.md   # BENCH.md from such files
"""

import argparse
import contextlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import ladder
import lora
import presets
import train
from common import atomic_write_text, check_own_page, fail, first_repeat, interrupted, refuse_overwriting
from machine import CUDA_SQUARE, best_times, ceiling, matmul, stamp
from model import GPT, GPTConfig, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent
# the CPU config of the targets: ~12M parameters (nanoGPT's flops formula counts the tied embedding once)
CPU_12M = dict(vocab_size=4096, block_size=256, n_layer=6, n_head=6, n_embd=384)
QUICK = dict(vocab_size=1024, block_size=64, n_layer=2, n_head=2, n_embd=64)


# ----------------------------------------------------------------------------- timing

def seconds(t):
    """A duration for the table: milliseconds below a tenth of a second, where seconds would read 0.00."""
    return f"{t:.2f} s" if abs(t) >= 0.1 else f"{t * 1000:.1f} ms"


def train_step(model, device, autocast=contextlib.nullcontext(), B=8, compiled=None):
    """One step of train.py's loop (forward, backward, clip, AdamW from train.configure_optimizer,
    zero_grad) on random tokens; returns (step function, optimizer)."""
    cfg = train.TrainConfig()
    opt = train.configure_optimizer(model, cfg, device.type)
    params = [p for p in model.parameters() if p.requires_grad]
    T, V = model.config.block_size, model.config.vocab_size
    x = torch.randint(0, V, (B, T), device=device)
    y = torch.randint(0, V, (B, T), device=device)
    fwd = model if compiled is None else compiled  # not `or`: a compiled module has no truth value

    def step():
        with autocast:
            _, loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step, opt


def peak_rss():
    """This process's peak resident memory in bytes. VmHWM, not ru_maxrss: Linux carries ru_maxrss
    across exec, so a child would report its parent's peak."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def optimizer_state_bytes(opt):
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values() if torch.is_tensor(v))


def build_models(config, ckpt_dir, r=8):
    """The three modes on one architecture: pretrain (random), finetune and lora (from a checkpoint)."""
    torch.manual_seed(0)
    base = GPT(config)
    save_checkpoint(base, ckpt_dir, {})
    finetune, _ = load_checkpoint(ckpt_dir)
    lora_model, _ = load_checkpoint(ckpt_dir)
    lora.attach(lora_model, lora.LoRAConfig(r=r))
    return {"pretrain": base, "finetune": finetune, "lora": lora_model}


# ----------------------------------------------------------------------------- the figures

class Table:
    """Rows of (figure, value, target, pass/fail). With `judge` False (--quick: the targets are for
    the full configs) no row passes or fails. With `json_path` the rows and the machine stamp are
    written after every row, so a run stopped by a timeout keeps what it measured."""

    def __init__(self, judge=True, machine=None, json_path=None):
        self.rows, self.judge, self.t0 = [], judge, time.time()
        self.machine, self.json_path = dict(machine or {}, complete=False), json_path

    def add(self, figure, value, target="", ok=None, **data):
        ok = ok if self.judge else None
        self.rows.append(dict(figure=figure, value=value, target=target, ok=ok, **data))
        print(f"  [{time.time() - self.t0:5.1f}s] {figure}: {value}" + (f" (target {target})" if target else ""), file=sys.stderr, flush=True)
        self.save()

    def save(self):
        if self.json_path:
            write_text(self.json_path, json.dumps({"machine": self.machine, "rows": self.rows}, indent=1) + "\n",
                       "--json")

    def finish(self):
        self.machine["complete"] = True
        self.save()

    def print(self):
        w = [max(len(str(r[k])) for r in self.rows + [dict(figure="figure", value="value", target="target")])
             for k in ("figure", "value", "target")]
        line = f"{'figure':<{w[0]}}  {'value':>{w[1]}}  {'target':<{w[2]}}  result"
        print(line + "\n" + "-" * len(line))
        for r in self.rows:
            verdict = {True: "pass", False: "FAIL", None: ""}[r["ok"]]
            print(f"{r['figure']:<{w[0]}}  {r['value']:>{w[1]}}  {r['target']:<{w[2]}}  {verdict}")


def bench_training(table, config, repeats, tmp):
    """Training throughput and CPU MFU per mode, and LoRA against full fine-tuning."""
    device = torch.device("cpu")
    models = build_models(config, Path(tmp) / "base")
    steps, opts = {}, {}
    for mode, model in models.items():
        model.train()
        steps[mode], opts[mode] = train_step(model, device)
        steps[mode]()  # warm-up: allocator, optimizer state
    B, T, C = 8, config.block_size, config.n_embd
    # the MLP's first matmul, the largest in a block (the vocab-wide head, once a step, is larger still)
    ceiling_fn, ceiling_flops = matmul(B * T, C, 4 * C)
    ceiling_fn()
    best = best_times(dict(steps, ceiling=ceiling_fn), repeats)
    ceiling = ceiling_flops / best.pop("ceiling")
    table.add(f"matmul ceiling ({B * T}x{C} @ {C}x{4 * C}, fp32, {torch.get_num_threads()} threads)",
              f"{ceiling / 1e9:.1f} GFLOP/s", ceiling=f"CPU fp32, {torch.get_num_threads()} threads",
              threads=torch.get_num_threads(), flops=ceiling)
    tps = {mode: B * T / t for mode, t in best.items()}
    fpt = models["pretrain"].flops_per_token()
    for mode in ("pretrain", "finetune"):
        mfu = fpt * tps[mode] / ceiling
        table.add(f"{mode} tokens/s, CPU MFU", f"{tps[mode]:,.0f}, {mfu:.0%}", ">= 75% MFU", mfu >= 0.75,
                  tokens_per_sec=tps[mode], mfu=mfu)
    table.add("lora tokens/s", f"{tps['lora']:,.0f}", tokens_per_sec=tps["lora"])
    ratio = best["lora"] / best["finetune"]
    table.add("lora / full fine-tune step time", f"{ratio:.2f}x", "<= 0.80x", ratio <= 0.80, ratio=ratio)
    trainable = {m: sum(p.numel() for p in models[m].parameters() if p.requires_grad) for m in ("finetune", "lora")}
    table.add("trainable parameters, lora / full", f"{trainable['lora']:,} / {trainable['finetune']:,}", **trainable)
    state = {m: optimizer_state_bytes(opts[m]) for m in ("finetune", "lora")}
    # AdamW keeps two numbers per trainable parameter, so the share is r * sum(in + out) over the
    # adapted linears against all parameters: with all four block linears at r=8 it is above 2% on
    # this config by arithmetic; on the attention projections alone (the LoRA paper's choice) below
    attn = load_checkpoint(Path(tmp) / "base")[0]
    lora.attach(attn, lora.LoRAConfig(r=8, target_modules=("attn.c_attn", "attn.c_proj")))
    step, opt = train_step(attn.train(), device)
    step()
    state["lora_attention"] = optimizer_state_bytes(opt)
    for m, where in (("lora", "all four block linears"), ("lora_attention", "attention only")):
        share = state[m] / state["finetune"]
        table.add(f"optimizer state, lora r=8 on {where} / full",
                  f"{share:.2%} ({state[m] / 2**20:.1f} of {state['finetune'] / 2**20:.0f} MiB)",
                  "< 2%", share < 0.02, **{f"{k}_bytes": v for k, v in state.items()})
    return tps["pretrain"]


def bench_peak_memory(table, config):
    """Peak RSS of a training step per mode, each in a fresh process (RSS never shrinks back)."""
    peaks = {}
    for mode in ("finetune", "lora"):
        out = subprocess.run([sys.executable, str(ROOT / "bench.py"), "--peak-rss-child", mode, "--config",
                              json.dumps(config.to_dict()), "--threads", str(torch.get_num_threads())],
                             capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            raise RuntimeError(f"peak-memory child failed: {out.stderr.strip()[-500:]}")
        peaks[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    growth = {m: (p["peak"] - p["before"]) / 2**20 for m, p in peaks.items()}
    table.add("peak RSS of training, lora / full", f"{growth['lora']:.0f} / {growth['finetune']:.0f} MiB "
              "over the process before the model", peaks=peaks)


def peak_rss_child(mode, config):
    """In a fresh process: build the model, run two steps, print the peak RSS (bytes) as JSON."""
    before = peak_rss()
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(GPT(config), Path(tmp) / "base", {})
        model, _ = load_checkpoint(Path(tmp) / "base")
    if mode == "lora":
        lora.attach(model, lora.LoRAConfig(r=8))
    step, _ = train_step(model.train(), torch.device("cpu"))
    step()
    step()
    print(json.dumps({"before": before, "peak": peak_rss()}))


def bench_checkpoint_load(table, config, repeats, tmp):
    """load_checkpoint with and without the content-sha256 check, interleaved: what the check that
    refuses a damaged file adds to every load."""
    torch.manual_seed(0)
    model = GPT(config)
    n = sum(p.numel() for p in model.parameters())  # the tied head counted once, as it is stored
    path = save_checkpoint(model, Path(tmp) / "load", {})
    del model
    load_checkpoint(path, check=False)  # the file into the page cache for both, as a reused base is
    # each round loads the whole file twice: a few rounds bound this row's time on the small preset
    best = best_times({"checked": lambda: load_checkpoint(path), "unchecked": lambda: load_checkpoint(path, check=False)},
                      min(repeats, 4))
    extra = best["checked"] - best["unchecked"]
    table.add(f"checkpoint load, {n / 1e6:.2g}M params", f"{seconds(best['checked'])} with the sha256 check, "
              f"{seconds(best['unchecked'])} without ({'+' if extra >= 0 else '-'}{seconds(abs(extra))})", "+ < 1 s", extra < 1.0, params=n,
              checked_seconds=best["checked"], unchecked_seconds=best["unchecked"], check_seconds=extra)


def world_corpus(tmp, target_tokens, vocab_size):
    """A corpus of the default world, made with the project's own generator and curriculum."""
    import curriculum
    files = ladder.world_module().generate(Path(tmp) / "units", target_tokens=target_tokens)
    curriculum.init(Path(tmp) / "corpus", files, vocab_size=vocab_size)
    curriculum.add(Path(tmp) / "corpus", files, log=lambda *a: None)
    return curriculum.Corpus(Path(tmp) / "corpus")


def bench_probes(table, corpus, config, n_probes, repeats):
    """Batched probe scoring against one forward per choice (score_probes with batch_size=1)."""
    import evaluate
    probes = [p for u in corpus.knowledge_units() for p in corpus.probes(u)][:n_probes]
    config = GPTConfig(**dict(config.to_dict(), vocab_size=corpus.vocab_size))
    model = GPT(config).eval()
    tok = corpus.tokenizer
    fns = {"batched": lambda: evaluate.score_probes(model, tok, probes, batch_size=64),
           "per choice": lambda: evaluate.score_probes(model, tok, probes, batch_size=1, share_prompts=False)}
    fns["batched"]()
    best = best_times(fns, repeats)
    speedup = best["per choice"] / best["batched"]
    table.add("probe scoring, batched / per choice", f"{speedup:.1f}x ({len(probes) / best['batched']:,.0f} probes/s)",
              ">= 5x", speedup >= 5, speedup=speedup, probes_per_sec=len(probes) / best["batched"])


def bench_data(table, corpus, config, train_tps, batches):
    """Tokenizer encode and stream throughput, against what a training step consumes."""
    import curriculum
    tok = corpus.tokenizer
    text = "\n".join(d for u in corpus.order() for d in corpus.documents(u, "all"))[:2_000_000]
    t = time.perf_counter()
    n = len(tok.encode_ordinary(text))
    enc_tps = n / (time.perf_counter() - t)
    table.add("tokenizer encode, tokens/s (one thread)", f"{enc_tps:,.0f} ({enc_tps / train_tps:,.0f}x training)",
              tokens_per_sec=enc_tps)
    B, T = 8, config.block_size
    s = curriculum.Stream(corpus, list(corpus.units), B, T, primitive_share=0.1)
    s.next_batch()
    t = time.perf_counter()
    for _ in range(batches):
        x, y = s.next_batch()
        torch.from_numpy(x), torch.from_numpy(y)
    stream_tps = batches * B * T / (time.perf_counter() - t)
    ratio = stream_tps / train_tps
    table.add("stream tokens/s, over training's", f"{stream_tps:,.0f} ({ratio:,.0f}x)", ">= 20x", ratio >= 20,
              tokens_per_sec=stream_tps, ratio=ratio)


# ----------------------------------------------------------------------------- corpus scale

SCALE_CHILD = r"""
import json, shutil, sys, time
from pathlib import Path
sys.path.insert(0, {root!r}); sys.path.insert(0, {world!r})
import curriculum, prepare

def peak_rss():  # bench.peak_rss, without importing torch into this process
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
d, phase, n = Path({dir!r}), {phase!r}, {tokens}
t = time.perf_counter()
if phase == "generate":
    prepare.generate(d / "units", target_tokens=n)
files = sorted((d / "units").glob("*.jsonl"))
if phase == "init":  # the tokenizer, trained on a bounded sample (init's max_train_bytes)
    curriculum.init(d / "corpus", files, vocab_size=4096)
    shutil.copytree(d / "corpus", d / "corpus-budget")  # for the add with a smaller leak budget
if phase.startswith("add"):  # every unit validated, checked for leakage and sharded
    curriculum.add(d / ("corpus" if phase == "add" else "corpus-budget"), files, log=lambda *a: None,
                   leak_budget={budget})
if phase == "stream":  # one pass over every token, as training reads them
    c = curriculum.Corpus(d / "corpus")
    total = sum(h["tokens"] for h in c.units.values())
    s = curriculum.Stream(c, list(c.units), 64, 256)
    for _ in range(total // (64 * 256)):
        s.next_batch()
    n = total
print(json.dumps(dict(seconds=time.perf_counter() - t, peak=peak_rss(), tokens=n)))
"""


def scale_child(n, d, phase, budget=None):
    """Run one phase on the corpus of n tokens in its own process (its own peak RSS); return its figures."""
    code = SCALE_CHILD.format(root=str(ROOT), world=str(ROOT / "data" / "world"), dir=str(d), phase=phase, tokens=n,
                              budget=budget)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"corpus {phase} of {n:,} tokens failed: {out.stderr.strip()[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_scale(table, sizes, tmp):
    """Generate, add and stream corpora of each size; with two sizes or more, add the largest again
    holding no more probe needles at once than the smallest has (curriculum.add's leak_budget)."""
    results = {}
    for n in sizes:
        d = Path(tmp) / f"scale-{n}"
        for phase in ("generate", "init", "add", "stream"):
            r = results[n, phase] = scale_child(n, d, phase)
            big = n >= 100_000_000
            target, ok = ("< 600 s, < 2 GiB", r["seconds"] < 600 and r["peak"] < 2 * 2**30) if big and phase == "add" \
                else ("< 2 GiB", r["peak"] < 2 * 2**30)
            table.add(f"corpus {n / 1e6:g}M tokens: {phase}", f"{r['seconds']:.1f} s, {r['peak'] / 2**20:.0f} MiB peak",
                      target, ok, **r)
    if len(sizes) > 1:  # cost per token should not grow with the corpus (linear time, flat memory)
        a, b = min(sizes), max(sizes)
        growth = (results[b, "add"]["seconds"] / b) / (results[a, "add"]["seconds"] / a)
        mem = results[b, "add"]["peak"] / results[a, "add"]["peak"]
        table.add(f"add time per token, {b / 1e6:g}M / {a / 1e6:g}M", f"{growth:.2f}x (peak RSS {mem:.2f}x)",
                  "<= 1.5x, RSS <= 1.5x", growth <= 1.5 and mem <= 1.5, growth=growth, rss_growth=mem)
        # the needle table is what grows with the probes: capped at the small corpus's needles, the big
        # corpus's add should peak where the small one's did, for one more pass over its documents per cap
        small, big = (sum(2 * json.loads(l).get("probes", 0) for l in open(Path(tmp) / f"scale-{n}/corpus/passport.jsonl"))
                      for n in (a, b))
        r = scale_child(b, Path(tmp) / f"scale-{b}", "add-budget", small)
        mem = r["peak"] / results[a, "add"]["peak"]
        table.add(f"add {b / 1e6:g}M holding {a / 1e6:g}M's {small:,} needles at most",
                  f"{r['seconds']:.1f} s, {r['peak'] / 2**20:.0f} MiB peak ({mem:.2f}x {a / 1e6:g}M's)",
                  "RSS <= 1.2x", mem <= 1.2, rss_growth=mem, budget=small, needles=big, **r)


# ----------------------------------------------------------------------------- DDP on the CPU

def bench_ddp(table, config, steps, rounds, tmp):
    """torchrun with 2 gloo processes x 1 thread against 1 process x 2 threads, the same global batch
    (2 x 8 sequences per step), `rounds` runs of each in turn, the best step counting: the scaling
    figure for pretraining on a 2-core machine."""
    data = Path(tmp) / "ddp" / "train.bin"
    data.parent.mkdir(parents=True, exist_ok=True)
    np.random.default_rng(0).integers(0, config.vocab_size, 2_000_000, dtype=np.uint16).tofile(data)
    args = ["train.py", "--mode", "pretrain", "--data", str(data), "--max-steps", str(steps), "--log-interval", "1",
            "--eval-iters", "1", "--batch-size", "8", "--quiet"] + \
        [f"--{k.replace('_', '-')}={v}" for k, v in config.to_dict().items() if k in CPU_12M]
    runs = {"1 process x 2 threads": ([sys.executable] + args + ["--grad-accum", "2"], 2),
            "2 processes x 1 thread": ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                        "--nproc_per_node=2"] + args, 1)}
    tps = dict.fromkeys(runs, 0.0)
    for rnd in range(rounds):  # interleaved, as every figure: a burst of load hits both alike
        for name, (cmd, threads) in runs.items():
            out_dir = Path(tmp) / "ddp" / f"{name.replace(' ', '')}-{rnd}"
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            r = subprocess.run(cmd + ["--out", str(out_dir)], capture_output=True, text=True, cwd=ROOT, env=env)
            if r.returncode != 0:
                raise RuntimeError(f"{name} failed: {r.stderr.strip()[-800:]}")
            log = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
            rates = [e["tokens_per_sec"] for e in log if "tokens_per_sec" in e][1:]  # the first step warms up
            tps[name] = max(tps[name], *rates)
    ratio = tps["2 processes x 1 thread"] / tps["1 process x 2 threads"]
    table.add("torchrun 2 procs x 1 thread / 1 proc x 2 threads", f"{ratio:.2f}x "
              f"({tps['2 processes x 1 thread']:,.0f} vs {tps['1 process x 2 threads']:,.0f} tok/s)", ratio=ratio, **tps)


# ----------------------------------------------------------------------------- one grow unit

def unit_world(tmp, world_tokens, vocab_size):
    """A corpus of the default world, its last knowledge unit, and the units before it marked verified
    in the passport, so that verify reads a full retention sample as it would late in the grow stage."""
    corpus = world_corpus(tmp, world_tokens, vocab_size)
    know = corpus.knowledge_units()
    for u in know[:-1]:
        corpus.passport.append("unit_verified", unit=u, passed=True,
                               note="bench.py: assumed verified, so that the retention check has earlier units")
    return corpus, know[-1], know[:-1]


def bench_unit(table, preset, device, tmp, world_tokens):
    """The grow stage's cost of one knowledge unit on `preset`: a LoRA trained as the ladder trains it
    (its steps, shares and rehearsal of the units before it), its verification, and the merge, each
    timed once (whole stages, not steps: their fixed costs, loading, compiling, saving, are measured)."""
    import evaluate
    s = presets.settings_for(preset)
    d = Path(tmp) / f"unit-{preset}"
    corpus, unit, earlier = unit_world(d, world_tokens, s.vocab_size)
    B, T = s.batch_size, GPTConfig.preset(preset).block_size
    run_kw = dict(corpus=str(corpus.dir), device=str(device), batch_size=B, seed=0, quiet=True, eval_iters=5)
    base = d / "base"  # quality is beside the point: a handful of eager steps give a base to adapt
    train.train(mode="pretrain", preset=preset, vocab_size=corpus.vocab_size, units="primitive", max_steps=4,
                out_dir=str(base), meta={"units": []}, **dict(run_kw, eval_iters=1))
    tokens = corpus.units[unit]["tokens"]
    replay = s.lora_replay if earlier else 0.0
    steps = ladder.adapter_steps(s, tokens, B * T, replay)
    own = (1 - s.lora_primitive_share) * (1 - replay)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    spent = {}

    def timed(name, fn):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        spent[name] = time.perf_counter() - t
        return out

    result = timed("train", lambda: train.train(
        mode="lora", init=str(base), units=unit, primitive_share=s.lora_primitive_share, replay=replay,
        replay_units=",".join(earlier) or None, max_steps=steps, lr=s.lora_lr,
        warmup=max(1, min(s.lora_warmup, steps // 2)), weight_decay=0.0, lora_r=s.lora_r, lora_alpha=s.lora_alpha,
        compile=s.compile, out_dir=str(d / "unit"), meta={"units": [unit]}, **run_kw))
    n_ret = len(evaluate.retention_sample(corpus, earlier, s.retention_probes))
    timed("verify", lambda: evaluate.verify(corpus.dir, unit, str(base), result.adapter, device=str(device),
                                            retention_probes=s.retention_probes))
    timed("merge", lambda: lora.merge_files(base, result.adapter, d / "merged"))
    where = f"{'CUDA ' if device.type == 'cuda' else ''}{preset}"
    how = f"{'compiled' if s.compile else 'eager'}, r={s.lora_r}"
    table.add(f"{where} grow unit: LoRA training", f"{seconds(spent['train'])} ({tokens:,} tokens x "
              f"{s.lora_epochs:g} epochs at {own:.0%} of each step, at least {s.lora_min_steps} steps' worth: "
              f"{steps} steps of {B}x{T}, {how})", seconds=spent["train"], unit=unit, tokens=tokens, steps=steps)
    table.add(f"{where} grow unit: verify", f"{seconds(spent['verify'])} ({len(corpus.probes(unit))} probes of the "
              f"unit, {n_ret} of {len(earlier)} earlier units, before and after)", seconds=spent["verify"],
              retention_probes=n_ret)
    table.add(f"{where} grow unit: merge", f"{seconds(spent['merge'])} (load, attach, merge, save)",
              seconds=spent["merge"])
    total = sum(spent.values())
    table.add(f"{where} grow unit: total", seconds(total), seconds=total, world_tokens=world_tokens)


# ----------------------------------------------------------------------------- the default ladder

# the default ladder's aim: at most these minutes on a 2-core CPU whose float32 matmuls run at these ceilings
LADDER_MINUTES, LADDER_CEILINGS = 15, (110e9, 160e9)
LADDER_SPAN = "-".join(f"{x / 1e9:.0f}" for x in sorted(LADDER_CEILINGS))  # "110-160", GFLOP/s


def bench_ladder(table, tmp, quick, threads=None):
    """`python ladder.py` as a user runs it (a process of its own, a fresh run directory, the CPU), timed
    whole, beside the float32 matmul ceiling measured before and after it on as many threads: two unless
    --threads says otherwise, as the aim's CPUs have two cores. --quick runs the micro preset."""
    preset, out, n = ("micro" if quick else "tiny"), Path(tmp) / "ladder", threads or 2
    print(f"  running ladder.py --preset {preset} on {n} threads (the tiny ladder: about 20 minutes)",
          file=sys.stderr, flush=True)
    own = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        before = ceiling()
        t = time.perf_counter()
        r = subprocess.run([sys.executable, str(ROOT / "ladder.py"), "--preset", preset, "--device", "cpu", "--out",
                            str(out)], capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS=str(n)))
        spent = time.perf_counter() - t
        after = ceiling() if r.returncode == 0 else None
    finally:
        torch.set_num_threads(own)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchError(f"ladder.py --preset {preset} failed (exit {r.returncode}): {last}")
    flops = sum(json.loads((out / "report" / "report.json").read_text())["training_flops"].values())
    ladder_rows(table, preset, spent, flops, (before, after), n)


def ladder_rows(table, preset, spent, flops, ceilings, threads):
    """The ladder's time and rate, and its time projected onto the aim's CPUs: the same share of their
    ceiling (its time x this ceiling / theirs), the whole run (data, scoring, Python) taken to scale alike."""
    c = sum(ceilings) / len(ceilings)
    table.add(f"ladder.py --preset {preset}: time", f"{spent / 60:.1f} min; {flops:.3g} training FLOPs at "
              f"{flops / spent / 1e9:.0f} GFLOP/s over the run, {flops / spent / c:.0%} of the ceiling "
              f"({c / 1e9:.0f} GFLOP/s, {threads} threads)", seconds=spent, flops=flops, threads=threads,
              ceiling_flops=list(ceilings))  # not "ceiling": that key marks a ceiling row
    fast, slow = (spent * c / x / 60 for x in sorted(LADDER_CEILINGS, reverse=True))
    table.add(f"ladder.py --preset {preset}, projected to a {LADDER_SPAN} GFLOP/s ceiling",
              f"{fast:.1f}-{slow:.1f} min",
              f"<= {LADDER_MINUTES} min" if table.judge else "", slow <= LADDER_MINUTES, minutes=[fast, slow])


# ----------------------------------------------------------------------------- CUDA

def cuda_steps(config, B, r, device):
    """Warmed-up training steps on the GPU with bf16 autocast: {(full|lora, compiled): step}."""
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    steps = {}
    for mode in ("full", "lora"):
        for compiled in (False, True):
            torch.manual_seed(0)
            model = GPT(config).to(device).train()
            if mode == "lora":
                lora.attach(model, lora.LoRAConfig(r=r))
            step, _ = train_step(model, device, autocast, B, compiled=torch.compile(model) if compiled else None)
            for _ in range(3):  # compiles, autotunes, allocates
                step()
            steps[mode, compiled] = step
    return steps


def bench_cuda(table, quick, repeats):
    """The `small` preset (GPT-2 124M's shape) on the GPU with bf16 autocast, at the batch and LoRA
    rank its ladder trains with: tokens/s and MFU against the bf16 peak, with and without
    torch.compile, and LoRA against full fine-tuning."""
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    name = "micro" if quick else "small"
    config, settings = GPTConfig.preset(name), presets.preset(name)["ladder"]
    B, r = settings.get("batch_size", 8), settings.get("lora_r", 8)
    steps = cuda_steps(config, B, r, device)
    n = 512 if quick else CUDA_SQUARE
    ceiling_fn, ceiling_flops = matmul(n, n, n, device, torch.bfloat16)
    best = best_times(dict(steps, ceiling=ceiling_fn), repeats, torch.cuda.synchronize)
    measured = ceiling_flops / best.pop("ceiling")
    gpu = torch.cuda.get_device_name()
    peak = train.peak_flops(device)
    of = f"{measured / peak:.0%} of the bf16 peak" if peak else "no known peak: MFU is against this ceiling"
    table.add(f"CUDA bf16 matmul ceiling ({n}x{n}x{n})", f"{measured / 1e12:.0f} TFLOP/s ({of})",
              ceiling=f"GPU bf16, {gpu}", flops=measured, peak=peak)
    peak = peak or measured
    fpt = GPT(config).flops_per_token()
    for compiled, target in ((False, 0.38), (True, 0.50)):
        how = "compiled" if compiled else "eager"
        tps = B * config.block_size / best["full", compiled]
        mfu = fpt * tps / peak
        table.add(f"CUDA {name} {how} tokens/s, MFU (batch {B})", f"{tps:,.0f}, {mfu:.0%}", f">= {target:.0%} MFU",
                  mfu >= target, tokens_per_sec=tps, mfu=mfu)
        ratio = best["lora", compiled] / best["full", compiled]
        table.add(f"CUDA lora r={r} / full step time ({how})", f"{ratio:.2f}x", "<= 0.88x", ratio <= 0.88, ratio=ratio)


# ----------------------------------------------------------------------------- BENCH.md

class BenchError(ValueError):
    """Bad input to the renderer: a file that is not bench.py's --json output."""


BENCH_MD = "BENCH.md"  # where --render writes, by default
INTRO = """# accrete benchmarks

Written by `python bench.py --render RUN.json ... --out BENCH.md` from the files `python bench.py --json
RUN.json` writes; to update it, run the bench again and render. Each section below is one run: its
date, machine, torch version, commit and command line, then its table.

How bench.py measures: the things a figure compares run interleaved, round after round, and the best
of N rounds counts, so that a burst of load on a shared machine hits all of them alike. Each figure
is a ratio of two things timed in the same run, or is set against a matmul ceiling measured in the
same run (float32 with the model's own shapes on the CPU, threads as stated; bf16 on the GPU, where
MFU is against the GPU's bf16 peak), so that figures from different machines can be compared. Whole
stages (a grow unit's LoRA training, verification and merge) are timed once: their fixed costs are
the point. So is the default ladder (`--ladder`), in a process of its own on two threads, beside the
ceiling (2048x384 @ 384x1536) measured before and after it; its time on the aim's CPUs is projected
as this time x this ceiling / theirs. A run with `--quick` uses tiny configs and judges no target.
"""


def read_run(file):
    """One bench.py --json file -> {"machine": ..., "rows": [...]}; BenchError naming the file if it is not one."""
    try:
        run = json.loads(Path(file).read_text())
    except OSError as e:
        raise BenchError(f"{file}: cannot read it ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BenchError(f"{file}: not JSON; give the files bench.py --json writes") from None
    if not isinstance(run, dict) or not isinstance(run.get("machine"), dict) or not isinstance(run.get("rows"), list):
        raise BenchError(f"{file}: not a bench.py --json file with a machine stamp; run bench.py --json again")
    if not isinstance(run["machine"].get("date", ""), str):
        raise BenchError(f"{file}: its machine stamp's date is not text; run bench.py --json again")
    for i, r in enumerate(run["rows"], 1):
        if not (isinstance(r, dict) and isinstance(r.get("figure"), str) and isinstance(r.get("value"), str)
                and r.get("ok") in (True, False, None)):
            raise BenchError(f"{file}: row {i} is not a figure, a value and a verdict (true, false or null); "
                             f"run bench.py --json again")
    return run


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_run(run):
    """A run's section of BENCH.md: a heading, its machine line and its table."""
    m, rows = run["machine"], run["rows"]
    ceilings = [f"{r['value']} ({r['ceiling']})" for r in rows if r.get("ceiling")]
    where = f"{m['gpu']} (host: {m['cpu']})" if m.get("gpu") else m.get("cpu", "unknown CPU")
    line = (f"{m.get('date', 'undated')}; {where}, {m.get('threads', '?')} torch threads of {m.get('cpus', '?')} CPUs; "
            f"matmul ceiling {', '.join(ceilings) or 'not measured'}; torch {m.get('torch', '?')}, "
            f"Python {m.get('python', '?')}; commit {m.get('commit', 'unknown')}; `{m.get('command', '?')}`")
    out = [f"## {m.get('gpu') or m.get('cpu', 'unknown CPU')}, {m.get('date', 'undated')[:10]}", "", line, ""]
    if not m.get("complete", True):
        out += ["The run stopped before its end (a time limit, or an error): these are the rows it measured.", ""]
    out += ["| figure | value | target | result |", "|---|---|---|---|"]
    for r in rows:
        verdict = {True: "pass", False: "**FAIL**", None: ""}[r.get("ok")]
        out.append("| " + " | ".join(cell(x) for x in (r["figure"], r["value"], r.get("target", ""), verdict)) + " |")
    return "\n".join(out) + "\n"


def render(files, out):
    """Write BENCH.md (out), atomically: how bench.py measures, then one section per --json file; an out
    that is one of the files is refused, before anything is read (its measurements would be lost)."""
    refuse_overwriting(out, files, BenchError)
    repeat = first_repeat(files)
    if repeat:
        raise BenchError(f"--render {repeat[0]}: the same run as {repeat[1]}; give each run once (one section each)")
    check_own_page(out, INTRO.split("\n", 1)[0], "bench page", "a BENCH.md this command wrote", BenchError)
    runs = [read_run(f) for f in files]
    write_text(out, "\n".join([INTRO] + [render_run(r) for r in runs]), "--out")


def write_text(file, text, flag):
    """atomic_write_text, a BenchError naming the file (and the flag that named it) if it cannot be written."""
    if Path(file).is_dir() or not Path(file).name:
        raise BenchError(f"{flag} {file}: a directory; give a file name")
    try:
        atomic_write_text(file, text)
    except OSError as e:
        raise BenchError(f"{flag} {file}: cannot write it ({e.strerror})") from None


# ----------------------------------------------------------------------------- main

def at_least(least):
    """An argparse type: a whole number of at least `least`."""
    def whole(text):
        try:
            n = int(text)
        except ValueError:
            n = None
        if n is None or n < least:
            raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of at least {least}")
        return n
    return whole


def arg_parser():
    """The command line: which figures to measure, or which runs to render."""
    p = argparse.ArgumentParser(description="accrete's speed and scale figures in one table (figure, value, target, "
                                "pass/fail), or BENCH.md rendered from earlier runs.")
    p.add_argument("--quick", action="store_true", help="Use tiny configs and two rounds per timing: seconds, for "
                   "the smoke test; on the CPU it also times one grow unit on the micro preset. No target is judged.")
    p.add_argument("--threads", type=at_least(1), help="The number of torch threads (default: torch's own choice).")
    p.add_argument("--repeats", type=at_least(1), help="Interleaved rounds per timing, of which the best counts "
                   "(default 8, with --quick 2).")
    p.add_argument("--scale", action="store_true", help="Also generate, init, add and stream a 10M-token corpus.")
    p.add_argument("--scale-100m", action="store_true", help="Also a 100M-token corpus, added twice (minutes).")
    p.add_argument("--scale-tokens", type=at_least(ladder.world_module().MIN_TARGET_TOKENS), nargs="+",
                   help="The corpus sizes in tokens for --scale, each a different one of at least "
                   f"{ladder.world_module().MIN_TARGET_TOKENS} (default 10M).")
    p.add_argument("--ddp", action="store_true", help="Also time torchrun with 2 processes x 1 thread against "
                   "1 process x 2 threads (gloo, on the CPU).")
    p.add_argument("--ladder", action="store_true", help="Also run the default ladder (python ladder.py; with "
                   f"--quick the micro preset) and judge its time against its aim: at most {LADDER_MINUTES} min on "
                   f"a 2-core CPU whose float32 matmul ceiling is {LADDER_SPAN} GFLOP/s (tens of minutes).")
    p.add_argument("--cuda", action="store_true", help="Also the GPU figures on the small preset (bf16, eager "
                   "and compiled; MFU, LoRA / full) and one whole grow unit on it (needs CUDA); run first.")
    p.add_argument("--cuda-only", action="store_true", help="With --cuda: the GPU figures alone, not the CPU "
                   "ones after them (to save GPU time).")
    p.add_argument("--json", metavar="FILE", help="Write the rows, stamped with the date, machine, torch "
                   "version, commit and command line, to FILE (rewritten after every row).")
    p.add_argument("--render", metavar="RUN", nargs="+", help="Measure nothing: write BENCH.md (see --out) from "
                   "these --json files, one section per run.")
    p.add_argument("--out", help=f"Where --render writes (default: {BENCH_MD}); an existing file must be a page "
                   "it wrote.")
    p.add_argument("--peak-rss-child", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    return p


def run_benches(args, table):
    """Every figure the flags ask for, into table."""
    repeats = args.repeats or (2 if args.quick else 8)
    config = GPTConfig(**(QUICK if args.quick else CPU_12M))
    print(f"accrete bench: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"config {config.to_dict()}, {GPT(config).num_params() / 1e6:.1f}M parameters", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="accrete-bench-") as tmp:
        if args.cuda:  # first: a run stopped by a time limit keeps the GPU rows, the scarcer ones
            bench_cuda(table, args.quick, repeats)
            bench_unit(table, "micro" if args.quick else "small", torch.device("cuda"), tmp,
                       50_000 if args.quick else 2_000_000)
            if args.cuda_only:
                return
        train_tps = bench_training(table, config, repeats, tmp)
        if not args.quick:  # two fresh processes: too slow for the smoke test
            bench_peak_memory(table, config)
        bench_checkpoint_load(table, GPTConfig.preset("micro" if args.quick else "small"), repeats, tmp)
        corpus = world_corpus(tmp, 50_000 if args.quick else 1_000_000, 1024 if args.quick else 4096)
        bench_probes(table, corpus, config, 16 if args.quick else 64, repeats)
        bench_data(table, corpus, config, train_tps, 20 if args.quick else 500)
        if args.quick and not args.cuda:  # the grow unit's code path, on the CPU
            bench_unit(table, "micro", torch.device("cpu"), tmp, 50_000)
        if args.scale or args.scale_100m or args.scale_tokens:
            sizes = args.scale_tokens or ([10_000_000] + ([100_000_000] if args.scale_100m else []))
            bench_scale(table, sizes, tmp)
        if args.ddp:
            bench_ddp(table, config, 4 if args.quick else 8, 2 if args.quick else 3, tmp)
        if args.ladder:
            bench_ladder(table, tmp, args.quick, args.threads)


def how_to_go_on(args):
    """What a run stopped by Ctrl-C leaves, in words (common.interrupted)."""
    if args.render:
        return f"run the same command again: {args.out or BENCH_MD} is replaced whole or left as it was"
    anew = " (a ladder starts anew)" if args.ladder else ""
    if args.json:
        return f"the rows measured before the stop, if any, are in {args.json}; run the same command again for all{anew}"
    return f"run the same command again{anew} (--json FILE keeps the rows measured before a stop)"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = arg_parser().parse_args(argv)
    try:
        measure_or_render(args, argv)
    except KeyboardInterrupt:
        interrupted(how_to_go_on(args))


def measure_or_render(args, argv):
    """The command line's work: BENCH.md rendered (--render), or the figures measured."""
    if args.cuda_only and not args.cuda:
        fail("--cuda-only goes with --cuda")
    if args.cuda_only and (args.ladder or args.ddp or args.scale or args.scale_100m or args.scale_tokens):
        fail("--cuda-only measures the GPU figures alone: leave out --ladder, --ddp and --scale, or --cuda-only")
    if args.out and not args.render:
        fail("--out goes with --render; the rows measured are kept with --json FILE")
    measuring = [f"--{k.replace('_', '-')}" for k in ("quick", "threads", "repeats", "scale", "scale_100m",
                                                     "scale_tokens", "ddp", "ladder", "cuda", "cuda_only", "json")
                 if getattr(args, k)]
    if args.render and measuring:
        fail(f"--render measures nothing: {', '.join(measuring)} would do nothing with it")
    if args.scale_100m and args.scale_tokens:  # else the 100M corpus would be dropped for the sizes given
        fail("--scale-100m with --scale-tokens: the sizes are those given; add 100000000 to them instead")
    if args.render:
        try:
            render(args.render, args.out or BENCH_MD)
        except BenchError as e:
            fail(e)
        return print(f"wrote {args.out or BENCH_MD}")
    if args.threads:
        torch.set_num_threads(args.threads)
    train.keep_big_allocations_on_the_heap()  # as train.py's loop does on the CPU
    if args.peak_rss_child:
        return peak_rss_child(args.peak_rss_child, GPTConfig.from_dict(json.loads(args.config)))
    if args.cuda and not torch.cuda.is_available():
        fail("--cuda: no CUDA device here")
    if args.scale_tokens and len(set(args.scale_tokens)) < len(args.scale_tokens):
        fail(f"--scale-tokens {' '.join(map(str, args.scale_tokens))}: a size given twice")
    stamped = dict(stamp(args.cuda), command=shlex.join(["python", "bench.py", *argv]))
    table = Table(judge=not args.quick, machine=stamped, json_path=args.json)
    try:
        table.save()  # before any figure: a --json that cannot be written fails now, not minutes later
    except BenchError as e:
        fail(e)
    try:
        run_benches(args, table)
    except BenchError as e:
        fail(e)
    table.finish()
    table.print()


if __name__ == "__main__":
    main()
