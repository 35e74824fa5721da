"""
One training loop for every stage of accrete: pretrain (random init), finetune (all weights from a
checkpoint or GPT-2 file) and lora (an adapter on a frozen checkpoint). The modes differ only in where
the weights start and which parameters train.

    python train.py --mode pretrain --data data/tokens/train.bin --preset tiny --out out/base
    python train.py --mode pretrain --corpus corpus --units primitive --out out/base
    python train.py --mode lora --init out/base --corpus corpus --units atoms-00 --out out/atoms-00 --merge
    python train.py --mode pretrain --corpus corpus --units verified --schedule wsd --ema 0.99 \
        --snapshot-steps 250,500,1000 --out out/scratch                  # a learning curve, compute in meta
    torchrun --nproc_per_node=2 train.py --mode pretrain ...        # DDP (nccl on CUDA, gloo on CPU)

Data comes from a stream: any object with next_batch() -> (x, y) int64 arrays of shape (B, T),
state_dict() and load_state_dict(): a nanoGPT-style token file (TokenFileStream) or a curriculum
selection (curriculum.Stream).
"""

import argparse
import ctypes
import dataclasses
import json
import math
import os
import re
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import lora
from presets import PRESETS
from common import SEED_RULE, add_options, check_writable, fail, in_directory, interrupted, option, seed_ok, sha256_file
from model import GPT, GPTConfig, autocast, check_dir_name, check_output, fingerprint, hf_tokenizer_hash, import_hf, \
    input_weights_file, load_checkpoint, machine_memory, params_floor, read_tensors, save_checkpoint, save_tensors, \
    size_text, weights_file


class TrainError(ValueError):
    """Bad training input: data, arguments or a resume state that do not fit."""


def step_list(text):
    """"50,100,200" -> (50, 100, 200)."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of steps") from None


@dataclass
class TrainConfig:
    mode: str = option("pretrain", "what trains: all weights from random init (pretrain) or from --init "
                       "(finetune), or a LoRA adapter on the frozen --init (lora)", ("pretrain", "finetune", "lora"))
    out_dir: str = option("out", "output directory: the model or adapter, train_state.safetensors (to resume) "
                          "and log.jsonl")
    # model: a preset and any overrides (pretrain); finetune and lora take the config of --init
    preset: str = option("tiny", "model preset (pretrain; finetune and lora take the model of --init)",
                         tuple(PRESETS))
    vocab_size: int = option(None, "vocabulary size (pretrain); default: the --corpus tokenizer's, the --data file's "
                                   "meta.json's, else the preset's")
    block_size: int = option(None, "context length in tokens, instead of the preset's (pretrain)")
    n_layer: int = option(None, "transformer blocks, instead of the preset's (pretrain)")
    n_head: int = option(None, "attention heads, instead of the preset's (pretrain)")
    n_embd: int = option(None, "embedding width, instead of the preset's (pretrain)")
    dropout: float = option(None, "dropout probability, instead of the preset's or the --init checkpoint's")
    bias: bool = option(None, "biases in the linears and LayerNorms, as GPT-2 has (pretrain; preset's default)")
    init: str = option(None, "accrete checkpoint (directory or model.safetensors) to start from (finetune, lora)")
    init_hf: str = option(None, "Hugging Face GPT-2 weights to start from instead of --init (finetune, lora)")
    # data: a token file, or a curriculum selection
    data: str = option(None, "nanoGPT-style token file (flat uint16/uint32); val.bin or NAME_val.bin beside it "
                       "is the validation data, else its last 10%")
    corpus: str = option(None, "accrete corpus directory (curriculum.py) to train from, instead of --data")
    units: str = option("all", "units of --corpus: comma-separated ids or selectors (all, primitive, knowledge, "
                        "verified, level:N)")
    primitive_share: float = option(0.0, "share of rows from primitive units (0: their share of the selection's "
                                    "tokens)")
    order: str = option("curriculum", "knowledge units level by level (curriculum) or all mixed (shuffled)",
                        ("curriculum", "shuffled"))
    replay: float = option(0.0, "share of knowledge rows drawn from earlier curriculum stages, or from "
                           "--replay-units")
    replay_units: str = option(None, "comma-separated units rehearsed at every stage (e.g. those verified before)")
    token_budget: int = option(None, "tokens the curriculum is spread over (default: in curriculum order the run's "
                               "tokens, --max-steps x a step's tokens on every process, so that its levels span the "
                               "run; shuffled, one pass over the selection, permuted anew each pass)")
    # optimization
    batch_size: int = option(8, "sequences per micro-batch, per process")
    grad_accum: int = option(1, "micro-batches per optimizer step (gradients accumulated)")
    max_steps: int = option(200, "optimizer steps to train")
    lr: float = option(1e-3, "peak learning rate")
    schedule: str = option("cosine", "learning rate after the warmup: cosine decay to min_lr on the last step, "
                           "constant at lr, or wsd (warmup-stable-decay): lr, then a linear decay to min_lr over the "
                           "last decay_frac of the steps", ("cosine", "wsd", "constant"))
    min_lr: float = option(None, "learning rate at the end of the decay (default: lr / 10)")
    warmup: int = option(20, "steps of linear learning-rate warmup")
    decay_frac: float = option(0.2, "wsd schedule: the share of max_steps over which the learning rate decays")
    weight_decay: float = option(0.1, "AdamW weight decay, on matrices only (not biases or LayerNorms)")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.95, "AdamW beta2")
    grad_clip: float = option(1.0, "clip the gradient norm to this (0: no clipping)")
    ema: float = option(0.0, "keep an exponential moving average of the trainable weights with this per-step "
                        "decay (e.g. 0.99), warmed up: step t (from 0) decays by min(ema, (1 + t) / (10 + t)), so "
                        "the random start fades within the first steps; it is what the snapshots, the final model "
                        "or adapter and the validation loss use; 0: off")
    # lora
    lora_r: int = option(8, "LoRA rank")
    lora_alpha: float = option(16.0, "LoRA alpha: the adapter's update is scaled by alpha / r")
    lora_dropout: float = option(0.0, "dropout on the input of the adapter's path")
    lora_targets: str = option(",".join(lora.DEFAULT_TARGETS), "comma-separated names (whole dotted parts) of the block linears "
                               "that get an adapter")
    use_rslora: bool = option(False, "rank-stabilized LoRA: scale by alpha / sqrt(r)")
    merge: bool = option(False, "lora mode: also write the merged model (model.safetensors), with its base's "
                         "config (its dropout too), as lora.py --out writes it")
    # runtime
    device: str = option("auto", "auto (cuda when available, else cpu), cpu, cuda (under torchrun: each "
                         "process's cuda:LOCAL_RANK), cuda:N or mps")
    compile: bool = option(False, "torch.compile the model (faster steps on a GPU after a warm-up)")
    seed: int = option(1337, "seed of the initial weights, dropout and data order (each process adds its rank)")
    log_interval: int = option(10, "log the training loss every this many steps")
    eval_interval: int = option(0, "validation loss every this many steps (0: only at the end)")
    eval_iters: int = option(10, "validation batches per evaluation")
    ckpt_interval: int = option(0, "save the resume state every this many steps (0: only at the end)")
    snapshot_steps: tuple = option((), "comma-separated steps at which to keep the weights for a learning curve, "
                                   "in OUT/snapshots/step-NNNNNN/ (a model; an adapter in lora mode)", parse=step_list)
    resume: bool = option(False, "continue from train_state.safetensors in the output directory, if there is one")
    quiet: bool = option(False, "print nothing but the result")
    meta: dict = field(default_factory=dict, metadata={"help": None})  # in-process: extra checkpoint/adapter meta


@dataclass
class TrainResult:
    out_dir: str
    steps: int
    tokens: int
    seconds: float  # training time, evaluation and saving left out (Clock)
    train_loss: float
    val_loss: float
    checkpoint: str = None  # model.safetensors (pretrain, finetune, lora --merge)
    adapter: str = None  # adapter.safetensors (lora)
    trainable_params: int = 0
    flops: int = 0  # this run's training FLOPs (flops_per_token)
    tokens_total: int = 0  # tokens and FLOPs since random init: the init checkpoint's totals plus this run's
    flops_total: int = 0


class TokenFileStream:
    """Random windows from a nanoGPT-style token file (flat uint16/uint32 memmap). Batch i depends only
    on (seed, i), so the cursor is a single integer and resuming is exact."""

    def __init__(self, path, batch_size, block_size, seed=0, start=0.0, end=1.0, vocab_size=None):
        path = Path(path)
        if path.is_dir():
            raise TrainError(f"{path}: is a directory, not a token file; give the .bin file of tokens")
        if not path.is_file():
            raise TrainError(f"{path}: no such token file")
        dtype = np.dtype(_meta(path).get("dtype", "uint16"))
        size = path.stat().st_size
        if size == 0 or size % dtype.itemsize:  # np.memmap's own messages name neither the file nor the dtype
            raise TrainError(f"{path}: {size} bytes, not a whole number of {dtype.name} tokens ({dtype.itemsize} "
                             "bytes each); meta.json's \"dtype\" beside it names the token size")
        data = np.memmap(path, dtype=dtype, mode="r")
        if vocab_size is not None:  # scanned in chunks: bounded memory for any file size
            top = max(int(data[i:i + 2**24].max()) for i in range(0, len(data), 2**24))
            if top >= vocab_size:
                raise TrainError(f"{path}: token id {top} is outside the model's vocab of {vocab_size}; "
                                 "set --vocab-size (or the file's meta.json) to match the tokenizer")
        # windows lie inside this slice: a train slice's never reach the val slice that follows it
        self.data = data[int(start * len(data)):int(end * len(data))]
        if len(self.data) < block_size + 1:  # one window (x and y, shifted by one) at least
            raise TrainError(f"{path}: {len(self.data)} tokens, too few for block_size {block_size}")
        self.B, self.T, self.seed, self.batch = batch_size, block_size, seed, 0
        self.selection = {"data": str(path), "start": start, "end": end, "seed": seed}

    def next_batch(self):
        rng = np.random.default_rng([self.seed, self.batch])
        ix = rng.integers(0, len(self.data) - self.T, size=self.B)  # the last start still has its target
        rows = np.stack([self.data[i:i + self.T + 1] for i in ix]).astype(np.int64)
        self.batch += 1
        return np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, 1:])

    def state_dict(self):
        """The cursor: the next batch index, and the kind of stream it counts batches of."""
        return {"kind": "token_file", "batch": self.batch}

    def load_state_dict(self, state):
        """Resume from state_dict(); refuses a corpus selection's cursor (curriculum.Stream's, which
        names its selection). A cursor without a kind is a token file's, as saved before kinds."""
        if state.get("kind", "token_file") != "token_file" or "selection_hash" in state:
            raise TrainError("stream cursor was saved by a run on a corpus selection (--corpus), not a token "
                             "file; resume with the same data source")
        self.batch = int(state["batch"])


def _meta(path):
    """meta.json beside a token file: {"vocab_size": ..., "dtype": "uint16"|"uint32", "tokenizer_hash": ...},
    if present."""
    f = Path(path).with_name("meta.json")
    if not f.is_file():
        return {}
    try:
        meta = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TrainError(f"{f}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("dtype", "uint16") not in ("uint16", "uint32"):
        raise TrainError(f'{f}: must be a JSON object whose "dtype", if any, is "uint16" or "uint32"')
    vocab = meta.get("vocab_size")
    if vocab is not None and (not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < 1):
        raise TrainError(f'{f}: "vocab_size" must be a whole number >= 1, not {vocab!r}')
    tok_hash = meta.get("tokenizer_hash")
    if tok_hash is not None and not isinstance(tok_hash, str):  # compared and sliced as text with the init's
        raise TrainError(f'{f}: "tokenizer_hash" must be a string (the tokenizer\'s sha256), not {tok_hash!r}')
    return meta


def lr_at(step, cfg):
    """The learning rate at a step (0 to max_steps - 1): linear warmup, then a cosine decay (cosine),
    lr to the end (constant), or lr until the last decay_frac of the steps, which decay linearly
    (wsd: warmup-stable-decay). A decay ends on the last step, which trains at min_lr, so even a run
    of a few steps decays."""
    min_lr = cfg.lr / 10 if cfg.min_lr is None else cfg.min_lr
    last = cfg.max_steps - 1
    # a decay keeps its last step however long the warmup asked for: the warmup ends before it
    warmup = cfg.warmup if cfg.schedule == "constant" else min(cfg.warmup, last)
    ramp = cfg.lr * (step + 1) / warmup if step < warmup else cfg.lr
    if cfg.schedule == "constant":
        return ramp
    if step >= last:
        return min_lr
    if cfg.schedule == "wsd":
        decay_steps = cfg.decay_frac * cfg.max_steps
        progress = (step - (last - decay_steps)) / decay_steps if decay_steps > 0 else 0.0
        # a warmup that reaches into the decay meets it where they cross, with no drop between
        return min(ramp, cfg.lr - min(1.0, max(0.0, progress)) * (cfg.lr - min_lr))
    if step < warmup:
        return ramp
    progress = min(1.0, (step - warmup) / max(1, last - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def keep_big_allocations_on_the_heap():
    """Serve large CPU tensors from the malloc heap instead of fresh mmap()s (Linux, glibc).

    glibc maps each allocation above its mmap threshold (at most 32 MiB, by its own adjustment) afresh
    and unmaps it when freed, so every training step page-faults its largest activations in again
    (the logits, the MLP's hidden layer), a cost that weighs most on a LoRA step, whose other work
    is smaller. The trim threshold goes up with it: left low, free() hands the top of the heap back
    to the kernel after every step and the next step faults it in again. Freed memory then stays in
    the process for the next step (peak RSS is unchanged). Returns whether the settings took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        # M_MMAP_THRESHOLD (-3) and M_TRIM_THRESHOLD (-1): 1 GiB each
        return libc.mallopt(-3, 1 << 30) == 1 and libc.mallopt(-1, 1 << 30) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): leave malloc as it is
        return False


def configure_optimizer(model, cfg, device_type):
    """AdamW over trainable parameters; weight decay on matrices only (not biases, LayerNorms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    # fused: one kernel over all tensors, where the default loops over them one by one
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device_type in ("cuda", "cpu"))


def flops_per_token(model, mode):
    """Training FLOPs per token as nanoGPT counts them (6N + attention). In lora mode the frozen
    weights get no weight gradient: 2 of the 6 FLOPs per parameter are not spent on them."""
    flops = model.flops_per_token()
    if mode == "lora":
        flops -= 2 * (model.num_params() - sum(p.numel() for p in model.parameters() if p.requires_grad))
    return flops


def compute_spent(init_meta, tokens, flops_per_tok):
    """This run's tokens and FLOPs, and the totals since random init: the init checkpoint's totals
    (or its own run's figures where it has no totals; nothing for pretraining) plus this run's."""
    flops = tokens * flops_per_tok
    return dict(tokens=tokens, flops=flops,
                tokens_total=init_meta.get("tokens_total", init_meta.get("tokens", 0)) + tokens,
                flops_total=init_meta.get("flops_total", init_meta.get("flops", 0)) + flops)


# bf16 dense peaks (FLOP/s, the vendors' datasheets), keyed by words of the GPU's name. The first entry
# whose words all appear in the name wins, so a variant comes before its family; a variant listed with
# None has a peak not written here, and must not get its family's
PEAK_FLOPS = ((("H100", "PCIE"), 756e12), (("H100", "NVL"), None), (("H100",), 989e12),
              (("H200", "NVL"), None), (("H200",), 989e12), (("GH200",), 989e12), (("A100",), 312e12),
              (("L40S",), 362e12), (("L4",), 121e12), (("4090",), 165e12))


def peak_flops_of(name):
    """The bf16 dense peak of a GPU by its name (torch.cuda.get_device_name), None where unknown. Whole
    words are matched, not substrings: "NVIDIA L40S" is no L4, "NVIDIA A10" no A100."""
    words = set(re.split(r"[\s_-]+", name.upper()))
    if "MIG" in words:  # a slice of the GPU ("... MIG 1g.10gb") has a share of its peak, not all of it
        return None
    return next((flops for key, flops in PEAK_FLOPS if words.issuperset(key)), None)


def peak_flops(device):
    """bf16 dense peak of the device, for MFU; None where unknown (the CPU: bench.py measures it)."""
    return peak_flops_of(torch.cuda.get_device_name(device)) if device.type == "cuda" else None


# ----------------------------------------------------------------------------- processes and devices

@dataclass
class Process:
    """Where this process trains: its device and its place among torchrun's processes."""
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def ddp(self):
        return self.world > 1

    @property
    def master(self):
        return self.rank == 0


def resolve_device(name, env=os.environ):
    """The torch.device that --device names: auto (cuda when CUDA is available, else cpu), cpu, mps,
    cuda (this process's GPU: cuda:LOCAL_RANK, which torchrun sets) or cuda:N (one process only)."""
    local_rank, world = int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "mps" and not torch.backends.mps.is_available():
        raise TrainError("--device mps: this machine has no MPS (Apple GPU) backend; use --device cpu")
    if name in ("cpu", "mps"):
        return torch.device(name)
    kind, _, index = name.partition(":")
    if kind != "cuda" or not (index == "" or index.isdigit()):
        raise TrainError(f"--device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    if not torch.cuda.is_available():
        raise TrainError(f"--device {name}: CUDA is not available to this torch {torch.__version__}; "
                         "use --device cpu")
    if index and world > 1:
        raise TrainError(f"--device {name}: under torchrun each process takes its own GPU (cuda:LOCAL_RANK); "
                         "use --device cuda")
    n, count = int(index or local_rank), torch.cuda.device_count()
    if n >= count:
        raise TrainError(f"--device {name}: there is no cuda:{n}" + (f" (LOCAL_RANK {n})" if not index else "") +
                         f", this machine has {count} CUDA device(s)")
    return torch.device("cuda", n)


def setup_process(cfg):
    """Pick the device, join torchrun's process group when there is one (torchrun sets RANK,
    WORLD_SIZE and LOCAL_RANK), and seed this process."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # takes only an indexed device
    elif device.type == "cpu":
        keep_big_allocations_on_the_heap()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(cfg.seed + rank)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return Process(device, rank, world)


def to_device(x, y, device):
    """numpy (x, y) -> tensors on the device; on CUDA pinned memory lets the copy overlap with compute."""
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    if device.type != "cpu":  # mps (or any other accelerator): a plain copy
        return x.to(device), y.to(device)
    return x, y


def next_batch(data, proc):
    """This process's next micro-batch, on its device."""
    # every rank draws the same global sequence of micro-batches and keeps its own share, so N
    # processes see exactly the micro-batches one process would with N times the accumulation
    for r in range(proc.world):
        xy = data.next_batch()
        if r == proc.rank:
            mine = xy
    return to_device(*mine, proc.device)


# ----------------------------------------------------------------------------- model and data set-up

def data_vocab_size(cfg):
    """The vocabulary size the data names (a corpus's tokenizer, a token file's meta.json), or None."""
    if cfg.corpus:
        from bpe import load_tokenizer
        return load_tokenizer(cfg.corpus).n_vocab
    return _meta(cfg.data).get("vocab_size") if cfg.data else None


class Init(NamedTuple):
    """Where a run's weights start: the model, the metadata it inherits from its checkpoint, the
    fingerprint of its initial weights and the dropout the checkpoint was saved with (random weights
    inherit nothing: {}, None, None)."""
    model: GPT
    meta: dict
    base_fp: Optional[str]
    dropout: Optional[float]


def memory_of(device):
    """Bytes of memory `device` has in all: a GPU's own, else the machine's RAM (which an MPS GPU shares);
    None where the system does not say."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return machine_memory()


def check_fits(config, device, batch_size, params=None, trainable=None):
    """Refuse, before any of it is allocated, a run whose training cannot fit in the memory `device` has:
    float32 weights (4 bytes a parameter), the trainable ones' gradients and AdamW's two moments (12 bytes
    more), and the activations one micro-batch keeps for its backward pass. Refused up front rather than
    caught: where memory is overcommitted (Linux's default) an allocation too big can succeed and the
    process be killed later without a word. It is a floor, which refuses only what could not run without
    swapping, and gives the same answer every time: a model to pretrain is not built yet, so its
    parameters are model.params_floor's (params=None: all of them trainable); the
    activations are counted as 8 numbers a layer and one a vocabulary entry per token, fewer than autograd
    keeps in any mode, of 2 bytes each on CUDA (bf16 autocast) and 4 elsewhere; and it is weighed against
    the total memory, not what is free now."""
    c, from_flags = config, params is None
    if from_flags:
        params = trainable = params_floor(c)
    have = memory_of(device)
    state = 4 * params + 12 * trainable
    act = (2 if device.type == "cuda" else 4) * batch_size * c.block_size * (8 * c.n_layer * c.n_embd + c.vocab_size)
    if have is None or state + act <= have:
        return
    if state > have:  # a model to pretrain is made smaller by its flags; a checkpoint's sizes are its own
        model = ("a model of " if from_flags else "the --init model, of ") + \
            f"vocab_size {c.vocab_size}, block_size {c.block_size}, n_layer {c.n_layer} and n_embd {c.n_embd}"
        raise TrainError(f"{model} has {params:,} parameters{' at least' if from_flags else ''}; training "
                         f"{trainable:,} of them takes {size_text(state)} (weights, gradients, AdamW's two moments), "
                         f"more than the {size_text(have)} of memory of {device}; "
                         + ("choose smaller sizes" if from_flags else "train it where there is more memory"))
    raise TrainError(f"--batch-size {batch_size}: a micro-batch of {batch_size} sequences of {c.block_size} tokens "
                     f"keeps {size_text(act)} of activations at least, which with the model's {size_text(state)} "
                     f"is more than the {size_text(have)} of memory of {device}; choose a smaller --batch-size "
                     f"(a larger --grad-accum keeps the batch)")


def build_model(cfg, device=torch.device("cpu")):
    """The Init of a run: random weights (pretrain), or a checkpoint's; in lora mode with an adapter
    attached and everything else frozen. Its training must fit the memory of `device`, where it will
    run (check_fits): a model to pretrain is weighed before it is built."""
    overrides = {k: getattr(cfg, k) for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd",
                                               "dropout", "bias")}
    if cfg.mode == "pretrain":
        if overrides["vocab_size"] is None:
            overrides["vocab_size"] = data_vocab_size(cfg)
        config = GPTConfig.preset(cfg.preset, **overrides)
        check_fits(config, device, cfg.batch_size)
        return Init(GPT(config), {}, None, None)
    if cfg.init:
        model, meta = load_checkpoint(cfg.init)
    else:
        # GPT-2's weights read GPT-2's tokens (an export of ours, its own): data in another is refused (setup_data)
        model = import_hf(cfg.init_hf)
        meta = {"init_hf": str(cfg.init_hf), "tokenizer_hash": hf_tokenizer_hash(cfg.init_hf)}
    init_dropout = model.config.dropout
    if cfg.dropout is not None:
        model.set_dropout(cfg.dropout)
    base_fp = fingerprint(model)
    if cfg.mode == "lora":
        lora.attach(model, lora.LoRAConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                           target_modules=tuple(cfg.lora_targets.split(",")),
                                           use_rslora=cfg.use_rslora))
    check_fits(model.config, device, cfg.batch_size, sum(p.numel() for p in model.parameters()),
               sum(p.numel() for p in model.parameters() if p.requires_grad))
    return Init(model, meta, base_fp, init_dropout)


def curriculum_budget(cfg, tokens_per_step, saved_meta):
    """The token budget a --corpus selection is spread over: --token-budget as given; else in curriculum
    order the run's tokens (--max-steps steps of every process's micro-batches), so that its levels span
    the run; else None: one pass over the selection. A resumed run keeps the budget its state was saved
    with (one pass for a state saved before budgets were): a resume that changes --max-steps bends the
    schedule, not the curriculum, whose cursor belongs to the one the run started."""
    if not cfg.corpus or cfg.token_budget is not None or cfg.order != "curriculum":
        return cfg.token_budget
    if saved_meta is not None:
        return saved_meta.get("token_budget")
    return cfg.max_steps * tokens_per_step or None


def val_stream(corpus, kw):
    """The validation batches of a curriculum selection: always shuffled over one pass of its val tokens,
    whatever the run's order and budget, so that every run on a selection is measured on the same mix of
    levels; None where the selection has no val tokens to serve (a one-document unit holds none out)."""
    import curriculum
    try:
        return curriculum.Stream(corpus, split="val", **dict(kw, order="shuffled", token_budget=None))
    except curriculum.CurriculumError:  # the train stream took the same selection: only its val split can be empty
        return None


def token_files(data):
    """A token file (--data) and the validation file beside it (val.bin beside train.bin, else NAME_val.bin),
    which need not exist."""
    path = Path(data)
    return path, path.with_name("val.bin") if path.name == "train.bin" else path.with_name(path.stem + "_val.bin")


def build_streams(cfg, B, T, vocab_size, token_budget=None):
    """(train stream, val stream or None, tokenizer hash) for a token file or a curriculum selection."""
    if cfg.corpus:
        import curriculum
        corpus = curriculum.Corpus(cfg.corpus)
        if corpus.vocab_size > vocab_size:
            raise TrainError(f"{cfg.corpus}: tokenizer has {corpus.vocab_size} tokens, the model only {vocab_size}")
        kw = dict(units=cfg.units.split(","), batch_size=B, block_size=T, primitive_share=cfg.primitive_share,
                  order=cfg.order, replay=cfg.replay, token_budget=token_budget, seed=cfg.seed,
                  replay_units=cfg.replay_units.split(",") if cfg.replay_units else None)
        return curriculum.Stream(corpus, split="train", **kw), val_stream(corpus, kw), \
            corpus.tokenizer_hash
    if not cfg.data:
        raise TrainError("no data: give --data FILE.bin or --corpus DIR")
    path, val_path = token_files(cfg.data)
    if val_path.is_file():
        train = TokenFileStream(path, B, T, cfg.seed, vocab_size=vocab_size)
        val = TokenFileStream(val_path, B, T, cfg.seed + 1, vocab_size=vocab_size)
    else:  # no val file: hold out the last 10%
        train = TokenFileStream(path, B, T, cfg.seed, 0.0, 0.9, vocab_size=vocab_size)
        val = TokenFileStream(path, B, T, cfg.seed + 1, 0.9, 1.0, vocab_size=vocab_size)
    return train, val, _meta(path).get("tokenizer_hash")


def setup_data(cfg, model_config, init_meta, token_budget=None):
    """(train stream, val stream, the tokenizer hash the outputs carry) of --data / --corpus (a
    curriculum over token_budget); data tokenized unlike the init checkpoint is refused."""
    data, val_data, data_hash = build_streams(cfg, cfg.batch_size, model_config.block_size, model_config.vocab_size,
                                              token_budget)
    init_hash = init_meta.get("tokenizer_hash")
    if init_hash and data_hash and init_hash != data_hash:
        raise TrainError(f"{cfg.init or cfg.init_hf}: checkpoint was trained with tokenizer {init_hash[:12]}, "
                         f"the data uses {data_hash[:12]}; a corpus keeps one tokenizer for life")
    return data, val_data, data_hash or cfg.meta.get("tokenizer_hash") or init_hash


def wrap_model(model, cfg, proc):
    """The model as the step calls it: compiled (--compile) and wrapped for DDP (under torchrun)."""
    if cfg.compile:
        model = torch.compile(model)
    if proc.ddp:
        model = DDP(model, device_ids=[proc.device.index] if proc.device.type == "cuda" else None)
    return model


@torch.no_grad()
def evaluate(model, val_data, val_state, iters, device):
    """Mean loss over the same `iters` validation batches every time."""
    model.eval()
    val_data.load_state_dict(val_state)
    losses = torch.zeros(iters, device=device)
    for i in range(iters):
        x, y = to_device(*val_data.next_batch(), device)
        with autocast(device):
            losses[i] = model(x, y)[1]
    model.train()
    return losses.mean().item()


# ----------------------------------------------------------------------------- resume state and outputs

def save_state(path, cfg, model, optimizer, ema, step, tokens, seconds, cursor, losses=None, base_fp=None,
               run_shape=None):
    """The full training state in one safetensors file: weights, optimizer moments, weight average,
    data cursor (dropout's masks are seeded by the step: seed_micro_batch), the settings, the last
    losses, the fingerprint of the init checkpoint and run_shape (what a resume must take over or match:
    its global batch, the curriculum's token budget). Nothing in it is pickled, so loading it cannot
    run code."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"]):
        for k, v in optimizer.state.get(p, {}).items():
            tensors[f"optim.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    tensors.update({f"ema.{i}": t for i, t in enumerate(ema or [])})
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "meta"}
    save_tensors(tensors, path, {"mode": cfg.mode, "tokens": tokens, "seconds": seconds, "data": cursor,
                                 "config": config, "step": step, "losses": losses or {}, "base_fingerprint": base_fp,
                                 **(run_shape or {})})


# what a resumed run may set anew: where things are, how long it trains (a schedule that depends on
# max_steps then bends where it resumed), how it runs and reports; anything else would continue the
# state as another run than the one that saved it. A moved --data or --corpus is where things are; a
# switch from one to the other is refused by the stream, whose cursor names its kind (load_state_dict)
RESUME_MAY_CHANGE = {"out_dir", "data", "corpus", "init", "init_hf", "max_steps", "device", "compile",
                     "log_interval", "eval_interval", "eval_iters", "ckpt_interval", "snapshot_steps", "resume",
                     "quiet"}


def check_resume_config(path, saved, cfg):
    """Refuse to resume from a state saved with other training settings, naming those that differ. The
    flags a mode ignores (check_config refuses them now; a state saved before may hold them) and a
    replay share saved where the selection had nothing to rehearse (the stream refuses it now) changed
    nothing the run did, and are not compared."""
    now = dataclasses.asdict(cfg)
    ignored = set(RESUME_MAY_CHANGE) | {"meta"}
    ignored |= set(MODEL_SHAPE_FIELDS) if cfg.mode != "pretrain" else set()
    ignored |= set(LORA_FIELDS) if cfg.mode != "lora" else set()
    if now["replay"] == 0 and not now["replay_units"] and len(set(selected_knowledge(cfg).values())) < 2:
        ignored.add("replay")
    changed = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in saved if k in now and k not in ignored and saved[k] != now[k]]
    if changed:
        raise TrainError(f"{path}: saved by a run with other settings ({', '.join(changed)}); resume with "
                         "the same ones, or train into another --out")


def load_state(path, cfg, model, optimizer, ema, data, base_fp=None, global_batch=None, saved=None):
    """Restore a saved training state (`saved`: the file's (tensors, metadata), read already) into model,
    optimizer, weight average and data stream -> (step, tokens, seconds, {"train": loss, "val": loss})
    where it was saved; a state saved with other settings, from another init checkpoint (base_fp: the
    fingerprint of this run's), with another global batch (sequences a step, all processes together),
    past --max-steps or on another data source (a token file, a corpus selection) is refused."""
    tensors, meta = saved or read_tensors(path, "training state")
    if meta.get("mode") != cfg.mode:
        raise TrainError(f"{path}: saved by a {meta.get('mode')} run, not {cfg.mode}")
    # --init may move, not change: the state holds the old init's weights, the outputs would name the new one's
    saved_fp = meta.get("base_fingerprint")
    if saved_fp and base_fp and saved_fp != base_fp:
        given = f"--init {cfg.init}" if cfg.init else f"--init-hf {cfg.init_hf}"
        raise TrainError(f"{path}: saved by a run from init {saved_fp[:12]}, but {given} is {base_fp[:12]}; "
                         "resume with the init it started from, or train into another --out")
    if bool(ema) != ("ema.0" in tensors):
        raise TrainError(f"{path}: saved by a run {'without' if ema else 'with'} --ema; resume with the same --ema")
    check_resume_config(path, meta.get("config", {}), cfg)
    if global_batch and meta.get("global_batch", global_batch) != global_batch:  # the process count changed
        raise TrainError(f"{path}: saved by a run of {meta['global_batch']} sequences a step (batch size x "
                         f"grad accum x processes), this one takes {global_batch}; resume with as many processes")
    if meta["step"] > cfg.max_steps:
        raise TrainError(f"{path}: saved at step {meta['step']}, past --max-steps {cfg.max_steps}; resume with "
                         f"--max-steps {meta['step']} or more")
    model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_sd, strict=False)
    except RuntimeError as e:
        raise TrainError(f"{path}: the saved state does not fit this model ({str(e).splitlines()[0]})") from None
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        state = {k.split(".", 2)[2]: v.to(p.device) for k, v in tensors.items() if k.startswith(f"optim.{i}.")}
        if state:
            optimizer.state[p] = state
    for i, t in enumerate(ema or []):
        t.copy_(tensors[f"ema.{i}"])
    try:
        data.load_state_dict(meta["data"])
    except ValueError as e:  # the stream knows its cursor, not the file it came from
        raise TrainError(f"{path}: {e}") from None
    return meta["step"], meta["tokens"], meta["seconds"], meta.get("losses", {})


def trained_units(cfg, init_meta, selection):
    """The knowledge units an output holds, as its header and passport event name them: the caller's
    (meta["units"]), else those the --corpus selection read; an adapter holds only its own (merging
    adds the base's), a fine-tune its init's and the new ones. None where nothing names any."""
    if cfg.meta.get("units") is not None:
        return cfg.meta["units"]
    read = (selection or {}).get("units")  # a token file's selection names no units
    if cfg.mode != "finetune" or init_meta.get("units") is None:
        return read
    return init_meta["units"] + [u for u in read or [] if u not in init_meta["units"]]


def output_meta(cfg, init_meta, base_fp, units, **figures):
    """The header of a saved model or adapter: what it inherits from its init checkpoint (not the
    figures of the init's own training, nor its fingerprint), the caller's meta, its units
    (trained_units) and this run's figures, which no other key overrides."""
    inherited = {k: v for k, v in init_meta.items() if k not in lora.TRAINING_FIGURES + ("fingerprint", "snapshot")}
    meta = dict(inherited, **cfg.meta)
    meta.update(mode=cfg.mode, **figures)
    meta.pop("units", None)
    if units is not None:
        meta["units"] = units
    if base_fp:
        meta["base_fingerprint"] = base_fp
    return meta


def save_outputs(mode, model, out, meta, merged_meta=None, base_dropout=None):
    """A model checkpoint (pretrain, finetune), or an adapter and, given its header, the merged model
    (lora) -> {"checkpoint": file, "adapter": file}. The merged model keeps its base's dropout
    (`base_dropout`), as lora.py --out writes it: --dropout was this adapter's training, not the base's."""
    if mode != "lora":
        return {"checkpoint": str(save_checkpoint(model, out, meta))}
    files = {"adapter": str(lora.save_adapter(model, out, meta))}
    if merged_meta is not None:
        merged = lora.merge(model)
        if base_dropout is not None:
            merged.set_dropout(base_dropout)
        files["checkpoint"] = str(save_checkpoint(merged, out, merged_meta))
    return files


def record_passport(cfg, data, files, units, figures, merged_meta=None):
    """Append what was trained (`files`, holding `units`), with `figures` (its compute, ...), to the
    corpus's growth passport; a merged model's event is lora.merged_event's."""
    if not cfg.corpus:
        return
    import curriculum
    passport = curriculum.Corpus(cfg.corpus).passport
    fields = {"mode": cfg.mode, "selection": getattr(data, "selection", None), "out_dir": str(cfg.out_dir),
              "init": cfg.init or cfg.init_hf, "units": units, **figures}
    if files.get("adapter"):
        passport.append("adapter_trained", adapter=files["adapter"], adapter_sha256=sha256_file(files["adapter"]),
                        **fields)
    if files.get("checkpoint") and merged_meta is not None:
        passport.append("model_trained", **lora.merged_event(merged_meta, cfg.out_dir, files["checkpoint"],
                                                             fields["init"], files["adapter"]))
    elif files.get("checkpoint"):
        passport.append("model_trained", checkpoint=files["checkpoint"],
                        checkpoint_sha256=sha256_file(files["checkpoint"]), **fields)


STATE_FILE, LOG_FILE = "train_state.safetensors", "log.jsonl"  # what a run writes in --out besides its weights


def snapshot_dir(out_dir, step):
    """Where the weights at one of --snapshot-steps go: OUT/snapshots/step-NNNNNN/."""
    return Path(out_dir) / "snapshots" / f"step-{step:06d}"


def save_snapshot(cfg, model, data, step, spent, meta):
    """The weights at one of --snapshot-steps, for a learning curve: snapshot_dir holds a model (an
    adapter in lora mode), recorded in the passport as a snapshot at that step."""
    out = snapshot_dir(cfg.out_dir, step)
    if cfg.corpus and _recorded(cfg.corpus, out, step):
        return  # a resumed run redoing this step keeps the snapshot that the passport names
    files = save_outputs(cfg.mode, model, out, dict(meta, snapshot=True))
    record_passport(cfg, data, files, meta.get("units"), dict(spent, out_dir=str(out), step=step, snapshot=True))


def _recorded(corpus_dir, out_dir, step, snapshot=True):
    """Whether the passport holds the weights now in out_dir as the output (a snapshot, or the run's
    last) at `step`: found by their sha256, since the run directory, and with it every path the
    passport recorded, may have moved since."""
    import curriculum
    sums = {sha256_file(f) for f in (Path(out_dir) / "model.safetensors", Path(out_dir) / "adapter.safetensors")
            if f.is_file()}
    passport = curriculum.Corpus(corpus_dir).passport
    return bool(sums) and any(bool(e.get("snapshot")) == snapshot and e.get("step") == step and e.get(key) in sums
                              for kind, key in (("adapter_trained", "adapter_sha256"),
                                                ("model_trained", "checkpoint_sha256"))
                              for e in passport.events(kind))


class RunLog:
    """Progress for the user (print, unless quiet) and log.jsonl in the output directory; only the
    master process writes either. The file is opened at its first entry, so a run refused or stopped
    before it has logged a step leaves no log (nor the directory) behind."""

    def __init__(self, out, proc, print_fn):
        self.print_fn = print_fn if proc.master else None
        self.out, self.master, self.file = out, proc.master, None

    def __call__(self, text, entry=None):
        if self.print_fn:
            self.print_fn(text)
        if self.master and entry is not None:
            if self.file is None:
                self.out.mkdir(parents=True, exist_ok=True)
                self.file = open(self.out / LOG_FILE, "a")
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


# ----------------------------------------------------------------------------- the loop

# what shapes a model built from random weights (build_model), and what only an adapter uses: each is
# refused in a mode that would ignore it (check_config)
MODEL_SHAPE_FIELDS = ("preset", "vocab_size", "block_size", "n_layer", "n_head", "n_embd", "bias")
LORA_FIELDS = ("lora_r", "lora_alpha", "lora_dropout", "lora_targets", "use_rslora", "merge")


def _given(cfg, names):
    """The flags among `names` set to other than their defaults, as the command line writes them."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    given = []
    for name in names:
        value, flag = getattr(cfg, name), name.replace("_", "-")
        if value == defaults[name]:
            continue
        if isinstance(value, bool):  # a BooleanOptionalAction: --merge, --no-bias
            given.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            given.append(f"--{flag} {value}")
    return given


def check_config(cfg):
    """Refuse a field outside its choices (argparse checks those on the command line too) or its range, and
    a flag the mode would ignore (a model's shape with --init, an adapter's settings outside lora)."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices and getattr(cfg, f.name) not in choices:
            raise TrainError(f"unknown {f.name} {getattr(cfg, f.name)!r}: use {', '.join(choices)}")
    for name, least in (("batch_size", 1), ("grad_accum", 1), ("log_interval", 1), ("eval_iters", 1),
                        ("max_steps", 0), ("warmup", 0), ("eval_interval", 0), ("ckpt_interval", 0)):
        if getattr(cfg, name) < least:
            raise TrainError(f"--{name.replace('_', '-')} {getattr(cfg, name)}: must be at least {least}")
    inf = math.inf  # a nan fails every comparison, so each range below refuses it
    for name, ok, must in (
            ("lr", 0 < cfg.lr < inf, "a finite number above 0"),
            # above lr a "decay" would climb (cosine) or jump up on the last step (wsd)
            ("min_lr", cfg.min_lr is None or 0 <= cfg.min_lr <= cfg.lr, "a number from 0 to --lr"),
            ("weight_decay", 0 <= cfg.weight_decay < inf, "a finite number, 0 or more"),
            ("beta1", 0 <= cfg.beta1 < 1, "in [0, 1)"), ("beta2", 0 <= cfg.beta2 < 1, "in [0, 1)"),
            ("grad_clip", 0 <= cfg.grad_clip < inf, "a finite number, 0 (no clipping) or more"),
            ("dropout", cfg.dropout is None or 0 <= cfg.dropout < 1, "in [0, 1)"),
            ("lora_dropout", 0 <= cfg.lora_dropout < 1, "in [0, 1)"),
            ("decay_frac", 0 <= cfg.decay_frac <= 1, "in [0, 1]"),
            # the curriculum checks these too, in one message naming neither flag
            ("primitive_share", 0 <= cfg.primitive_share <= 1, "in [0, 1]"),
            ("replay", 0 <= cfg.replay <= 1, "in [0, 1]"),
            ("ema", 0 <= cfg.ema < 1, "in [0, 1) (0: no average)"),
            ("seed", seed_ok(cfg.seed), SEED_RULE),
            ("token_budget", cfg.token_budget is None or cfg.token_budget >= 1,
             "at least 1 (left out: the default)")):
        if not ok:
            raise TrainError(f"--{name.replace('_', '-')} {getattr(cfg, name)}: must be {must}")
    if cfg.data and cfg.corpus:
        raise TrainError(f"--data {cfg.data} and --corpus {cfg.corpus}: give one of them")
    if cfg.init and cfg.init_hf:  # else --init would be used and --init-hf silently left out
        raise TrainError(f"--init {cfg.init} and --init-hf {cfg.init_hf}: give one of them")
    if cfg.mode == "pretrain" and (cfg.init or cfg.init_hf):
        raise TrainError("--mode pretrain starts from random weights; use --mode finetune with --init")
    if cfg.mode != "pretrain" and not (cfg.init or cfg.init_hf):
        raise TrainError(f"--mode {cfg.mode} needs --init CHECKPOINT or --init-hf GPT2_DIR")
    for flag, init in (("--init", cfg.init), ("--init-hf", cfg.init_hf)):
        try:  # here, naming the flag, rather than when the weights are read
            if init:
                input_weights_file(init, "model.safetensors")
        except ValueError as e:
            raise TrainError(f"{flag} {e}") from None
    # a value left at its default cannot be told from one not given: only the others are refused
    shape = _given(cfg, MODEL_SHAPE_FIELDS) if cfg.mode != "pretrain" else []
    if shape:
        raise TrainError(f"{', '.join(shape)}: for --mode pretrain only, which builds the model; --mode {cfg.mode} "
                         f"keeps the shape of its {'--init-hf' if cfg.init_hf else '--init'} checkpoint")
    adapter = _given(cfg, LORA_FIELDS) if cfg.mode != "lora" else []
    if adapter:
        raise TrainError(f"{', '.join(adapter)}: for --mode lora only, which trains an adapter; --mode {cfg.mode} "
                         "trains none")
    try:  # a file in its place or above it: refused before any step is spent
        check_writable(cfg.out_dir, "directory")
    except ValueError as e:
        raise TrainError(f"--out {e}") from None
    outside = [s for s in cfg.snapshot_steps if not (isinstance(s, int) and 0 < s <= cfg.max_steps)]
    if outside:
        raise TrainError(f"--snapshot-steps {outside}: steps must be whole numbers from 1 to --max-steps "
                         f"{cfg.max_steps}")


def output_files(cfg):
    """Every file a run writes under --out: its resume state, its log, the model (pretrain, finetune) or
    the adapter and, under --merge, the merged model (lora), and the weights of each of --snapshot-steps."""
    out = Path(cfg.out_dir)
    weights = ["model.safetensors"]
    if cfg.mode == "lora":
        weights = ["adapter.safetensors", *weights] if cfg.merge else ["adapter.safetensors"]
    snapshots = [snapshot_dir(out, s) / weights[0] for s in cfg.snapshot_steps]
    return [out / STATE_FILE, out / LOG_FILE, *(out / w for w in weights), *snapshots]


def check_outputs(cfg):
    """Refuse, before any step is spent, an output file that cannot be written where it goes (a directory
    in its place), that is an input it would be made from (the --init or --init-hf weights, a --data token
    file), which writing it would destroy however --out names it (the same directory, a link to it), or
    that lies in the --corpus directory."""
    sources = [weights_file(init, "model.safetensors") for init in (cfg.init, cfg.init_hf) if init]
    sources += token_files(cfg.data) if cfg.data else []
    for file in output_files(cfg):
        try:
            check_output(file, sources)
        except ValueError as e:
            raise TrainError(f"--out {e}") from None
        # the corpus is data, copied and hashed whole: --out it or below it would put a run's files in it;
        # an --out holding the corpus is fine, since no file a run writes lands in the corpus then
        if cfg.corpus and in_directory(file, cfg.corpus):
            raise TrainError(f"--out {file}: is inside the --corpus directory {cfg.corpus}, which holds the corpus "
                             "and nothing else; write to another directory")


def check_corpus(cfg):
    """Refuse, before any step is spent, a --corpus whose passport the run's event may not extend, as
    `curriculum.py add` refuses it: a torn last line or a broken hash chain (never extend a broken
    chain), or a tokenizer other than the one its init event recorded; and a share of 1 that leaves the
    knowledge units --units selects none of the rows (check_shares)."""
    if not cfg.corpus:
        return
    import curriculum
    corpus = curriculum.Corpus(cfg.corpus)
    corpus.check_passport()
    check_shares(cfg, list(selected_knowledge(cfg, corpus)))


def selected_knowledge(cfg, corpus=None):
    """{unit: level} of the knowledge units --units selects in --corpus (the open one, or opened now; none
    without a corpus)."""
    if not cfg.corpus:
        return {}
    import curriculum
    corpus = corpus or curriculum.Corpus(cfg.corpus)
    return {u: corpus.units[u]["level"] for u in curriculum.select(corpus, cfg.units)
            if corpus.units[u]["kind"] == "knowledge"}


def check_shares(cfg, knowledge):
    """Refuse --primitive-share 1 or --replay 1 where --units selects `knowledge` units: every row would
    come from primitive text or from the replayed units, while the outputs and their passport events
    name the selected units as trained (as the ladder refuses a share of 1)."""
    if not knowledge:  # primitive text alone: every row is primitive (a replay share there the stream refuses)
        return
    for name, share, rows in (("primitive_share", cfg.primitive_share, "every row would be primitive text"),
                              ("replay", cfg.replay, "every knowledge row would rehearse other units (--replay-units, "
                                                     "or earlier levels)")):
        if share >= 1:
            raise TrainError(f"--{name.replace('_', '-')} {share:g}: {rows}, none from the knowledge units that "
                             f"--units {cfg.units} selects; use a share below 1")


@contextmanager
def averaged_weights(params, ema):
    """Inside: the parameters hold the weight average (unchanged without one); after: their own
    weights again, bit for bit."""
    if not ema:
        yield
        return
    with torch.no_grad():
        own = [p.detach().clone() for p in params]
        torch._foreach_copy_(params, ema)
        try:
            yield
        finally:
            torch._foreach_copy_(params, own)


def seed_micro_batch(seed, step, micro, accum, proc):
    """Seed the random draws (dropout's masks) of one micro-batch by its place in the global sequence
    of micro-batches (next_batch): a resumed run draws the masks it would have, on every rank, and N
    processes with --grad-accum A draw those of one process with N*A."""
    torch.manual_seed(seed * 2 ** 32 + (step * accum + micro) * proc.world + proc.rank)


def train_step(model, optimizer, lr, batch, data, proc, cfg, params, ema, step):
    """Optimizer step `step` (from 0) over cfg.grad_accum micro-batches, the first of them `batch`, and
    the weight average's update -> (the summed loss, left on the device; the next micro-batch; the
    data cursor after this step's batches)."""
    for g in optimizer.param_groups:
        g["lr"] = lr
    loss_sum = torch.zeros((), device=proc.device)
    for micro in range(cfg.grad_accum):
        sync = micro == cfg.grad_accum - 1
        seed_micro_batch(cfg.seed, step, micro, cfg.grad_accum, proc)
        with (model.no_sync() if proc.ddp and not sync else nullcontext()), autocast(proc.device):
            _, loss = model(*batch)
            loss = loss / cfg.grad_accum
        if sync:
            cursor = data.state_dict()
        batch = next_batch(data, proc)  # fetch the next batch while the backward runs (async on CUDA)
        loss.backward()
        loss_sum += loss.detach()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if ema:
        # warmed up, as TensorFlow's and timm's averages: a fixed decay would keep ema**t of the random
        # start after t steps (37% after 100 at 0.99); the step is the run's, so a resume decays alike
        decay = min(cfg.ema, (1 + step) / (10 + step))
        with torch.no_grad():  # ema += (1 - decay) * (weights - ema), on the device
            torch._foreach_lerp_(ema, params, 1.0 - decay)
    return loss_sum, batch, cursor


class Clock:
    """A run's `seconds`: the wall time of its training steps (data, forward, backward, optimizer, the
    loss's logging), carried across a resume; the time spent evaluating and writing snapshots and resume
    states is not in it (paused). Also the time per step since the last lap, on the same clock."""

    def __init__(self, elapsed, step):
        # perf_counter: a monotonic clock, which an NTP step of the wall clock cannot move mid-run
        self.start, self.before, self.excluded, self.paused_at = time.perf_counter(), elapsed, 0.0, None
        self.lap_elapsed, self.step = elapsed, step

    def elapsed(self):
        now = time.perf_counter() if self.paused_at is None else self.paused_at
        return self.before + now - self.start - self.excluded

    def lap(self, step):
        elapsed = self.elapsed()
        dt = (elapsed - self.lap_elapsed) / max(1, step - self.step)
        self.lap_elapsed, self.step = elapsed, step
        return dt

    @contextmanager
    def paused(self):
        self.paused_at = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - self.paused_at
            self.paused_at = None


def mean_loss(loss_sum, proc):
    """The step's loss as a float; under DDP the mean over all ranks' micro-batches, as one process
    would see it."""
    if proc.ddp:
        dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
        loss_sum /= proc.world
    return loss_sum.item()


def read_state(state_file, cfg):
    """The saved training state to resume, (tensors, metadata), or None: none there. Another run's state
    without --resume is refused (their logs and snapshots would mix), and so are weights with no state
    to resume (lora.py's merge, say), which the run would replace."""
    if state_file.is_file() and not cfg.resume:
        raise TrainError(f"{state_file}: an earlier training's state is here; --resume continues it, or train "
                         "into another --out")
    if state_file.is_file():
        return read_tensors(state_file, "training state")
    for weights in (state_file.parent / name for name in ("model.safetensors", "adapter.safetensors")):
        if weights.is_file():
            raise TrainError(f"{weights}: weights are here with no training state to resume, and a run would "
                             f"replace them; train into another --out, or remove {weights.name}")
    return None


def start_or_resume(state_file, saved, cfg, model, optimizer, ema, data, base_fp, global_batch):
    """(step, tokens, seconds, train loss, val loss) to start from: nothing yet, or the saved state's
    (read_state)."""
    if saved is None:
        return 0, 0, 0.0, float("nan"), float("nan")
    step, tokens, elapsed, losses = load_state(state_file, cfg, model, optimizer, ema, data, base_fp, global_batch,
                                               saved)
    # a run stopped after its last state was saved resumes at its end: the saved losses stand
    return (step, tokens, elapsed, *(float("nan") if losses.get(k) is None else losses[k] for k in ("train", "val")))


def _no_nan(v):
    """v, or None for a float NaN (a loss not measured yet), which JSON lacks."""
    return None if isinstance(v, float) and math.isnan(v) else v


def _losses(train_loss, val_loss):
    """The losses a training state keeps (None for one not measured yet)."""
    return {"train": _no_nan(train_loss), "val": _no_nan(val_loss)}


def finite(loss, step, what, cfg):
    """The loss, or a TrainError where it is nan or inf: a diverged run stops before it writes anything
    more (the log line, a snapshot, a resume state, the outputs, their passport event)."""
    if not math.isfinite(loss):
        raise TrainError(f"diverged at step {step}: {what} {loss}; lower --lr (now {cfg.lr:g}) and train into "
                         "another --out")
    return loss


@dataclass
class Run:
    """A training run as its loop carries it: the model (unwrapped: what is evaluated and saved), its
    optimizer, weight average and data; where the run stands (step, tokens, the last losses, the data
    cursor, the clock); and what its outputs record (units, figures, the init it started from)."""
    cfg: TrainConfig
    proc: Process
    init: Init
    model: GPT
    params: list  # the trainable parameters
    optimizer: torch.optim.Optimizer
    ema: Optional[list]  # the weight average (--ema), or None
    data: object
    val_data: object  # None where the data holds no validation tokens
    runlog: RunLog
    state_file: Path
    step: int
    tokens: int
    seconds: float  # the training time so far: 0, or the resumed state's
    train_loss: float
    val_loss: float
    tokens_per_step: int
    flops_per_tok: float
    run_shape: dict  # what a resume takes over or must match
    run_info: dict  # the figures every output's header carries
    units: Optional[list]
    val_state: Optional[dict] = None  # where the validation batches start, every evaluation
    cursor: Optional[dict] = None  # where the next step's data starts: what a resume needs
    clock: Optional[Clock] = None

    def spent(self):
        """This run's tokens and FLOPs so far, and the totals since random init (compute_spent)."""
        return compute_spent(self.init.meta, self.tokens, self.flops_per_tok)

    def header(self, **figures):
        """The header of an output saved now, with `figures` besides the step, compute and run_info."""
        return output_meta(self.cfg, self.init.meta, self.init.base_fp, self.units, step=self.step, **self.spent(),
                           **figures, **self.run_info)

    def log_step(self, loss, lr, peak):
        """The training loss line and log entry, with throughput (and MFU where the GPU's peak is known)."""
        self.train_loss, dt = loss, self.clock.lap(self.step)
        tps = self.tokens_per_step / dt
        # lora-aware, as the run's FLOPs; tps counts every process's tokens, peak is one GPU's
        mfu = f" mfu {self.flops_per_tok * tps / self.proc.world / peak * 100:.1f}%" if peak else ""
        self.runlog(f"step {self.step}/{self.cfg.max_steps} loss {loss:.4f} lr {lr:.2e} {tps:,.0f} tok/s{mfu} "
                    f"eta {(self.cfg.max_steps - self.step) * dt:.0f}s",
                    {"step": self.step, "loss": loss, "lr": lr, "tokens_per_sec": tps, "tokens": self.tokens,
                     "seconds": round(self.clock.elapsed(), 3)})

    def validate(self):
        """The validation loss of the averaged weights, logged; off the clock."""
        with self.clock.paused(), averaged_weights(self.params, self.ema):
            self.val_loss = finite(evaluate(self.model, self.val_data, self.val_state, self.cfg.eval_iters,
                                            self.proc.device), self.step, "val loss", self.cfg)
        self.runlog(f"step {self.step} val loss {self.val_loss:.4f}", {"step": self.step, "val_loss": self.val_loss})

    def snapshot(self):
        """The averaged weights at this step, kept for a learning curve (--snapshot-steps); off the clock."""
        spent = self.spent()
        with self.clock.paused(), averaged_weights(self.params, self.ema):
            save_snapshot(self.cfg, self.model, self.data, self.step, spent, self.header())

    def save_resume_state(self, seconds):
        """The state a --resume continues from, as it stands after this step (`seconds` of training)."""
        save_state(self.state_file, self.cfg, self.model, self.optimizer, self.ema, self.step, self.tokens, seconds,
                   self.cursor, _losses(self.train_loss, self.val_loss), self.init.base_fp, self.run_shape)

    def write_outputs(self, seconds, trained_nothing=False):
        """The final resume state, the model or adapter (and the merged model) of the averaged weights and
        their passport event -> {"checkpoint": file, "adapter": file}. A run that resumed at its last
        step (trained_nothing) writes the bytes it wrote when it finished, and records them only if
        that run did not (it was stopped before its event); another run's identical weights are
        recorded for that run, so only such a resume looks."""
        cfg, spent = self.cfg, self.spent()
        self.save_resume_state(seconds)
        meta = self.header(seconds=round(seconds, 2), val_loss=_no_nan(self.val_loss))
        # the merged model's header as lora.py --out and the ladder write it: the init's, its units and the adapter's
        merged = lora.merged_meta(self.init.meta, meta) if cfg.merge and cfg.mode == "lora" else None
        with averaged_weights(self.params, self.ema):
            files = save_outputs(cfg.mode, self.model, Path(cfg.out_dir), meta, merged, self.init.dropout)
        if trained_nothing and cfg.corpus and _recorded(cfg.corpus, cfg.out_dir, self.step, snapshot=False):
            return files  # a finished run resumed: the same bytes, recorded when it first finished
        record_passport(cfg, self.data, files, self.units, dict(spent, step=self.step, seconds=round(seconds, 2),
                                                                trainable_params=self.run_info["trainable_params"]),
                        merged)
        return files


def start_run(cfg, log):
    """The Run as configured: this process, the model, its data, optimizer and weight average, resumed
    from the saved state under --resume (a state there without it is refused)."""
    state_file = Path(cfg.out_dir) / STATE_FILE
    saved = read_state(state_file, cfg)
    proc = setup_process(cfg)
    init = build_model(cfg, proc.device)
    model = init.model.to(proc.device)
    params = [p for p in model.parameters() if p.requires_grad]
    global_batch = cfg.batch_size * cfg.grad_accum * proc.world  # sequences a step, all processes together
    tokens_per_step = global_batch * model.config.block_size
    budget = curriculum_budget(cfg, tokens_per_step, saved and saved[1])
    run_shape = dict(global_batch=global_batch, token_budget=budget)
    data, val_data, tok_hash = setup_data(cfg, model.config, init.meta, budget)
    run_info = dict(trainable_params=sum(p.numel() for p in params), tokenizer_hash=tok_hash,
                    data=getattr(data, "selection", None))
    optimizer = configure_optimizer(model, cfg, proc.device.type)
    ema = [p.detach().clone() for p in params] if cfg.ema else None
    step, tokens, seconds, train_loss, val_loss = start_or_resume(state_file, saved, cfg, model, optimizer, ema, data,
                                                                  init.base_fp, global_batch)
    del saved  # its tensors are the model's and optimizer's now
    runlog = RunLog(Path(cfg.out_dir), proc, log if not cfg.quiet else None)
    if step:
        runlog(f"resumed from {state_file} at step {step}")
    if val_data is None:
        runlog("no validation data (a unit of one document holds none out): no val loss")
    return Run(cfg=cfg, proc=proc, init=init, model=model, params=params, optimizer=optimizer, ema=ema, data=data,
               val_data=val_data, runlog=runlog, state_file=state_file, step=step, tokens=tokens, seconds=seconds,
               train_loss=train_loss, val_loss=val_loss, tokens_per_step=tokens_per_step,
               flops_per_tok=flops_per_token(model, cfg.mode), run_shape=run_shape, run_info=run_info,
               units=trained_units(cfg, init.meta, run_info["data"]),
               val_state=val_data.state_dict() if val_data is not None else None)


def train(cfg=None, log=print, **kwargs):
    """Train as configured (a TrainConfig and/or its fields as keywords) -> a TrainResult."""
    cfg = dataclasses.replace(cfg or TrainConfig(), **kwargs)
    check_config(cfg)
    check_outputs(cfg)  # all of these before the first step: a refused run spends no time and writes nothing
    check_corpus(cfg)

    # -- the model (the same GPT in every mode), its data and optimizer
    run = start_run(cfg, log)
    proc = run.proc
    model = wrap_model(run.model, cfg, proc)
    if proc.ddp and run.ema and not run.step:  # each rank drew its own init; DDP has just broadcast rank 0's
        with torch.no_grad():
            torch._foreach_copy_(run.ema, run.params)
    peak = peak_flops(proc.device)

    # -- the loop
    model.train()
    run.cursor = run.data.state_dict()
    batch = next_batch(run.data, proc)
    run.clock, resumed_at = Clock(run.seconds, run.step), run.step
    while run.step < cfg.max_steps:
        lr = lr_at(run.step, cfg)
        loss_sum, batch, run.cursor = train_step(model, run.optimizer, lr, batch, run.data, proc, cfg, run.params,
                                                 run.ema, run.step)
        run.step += 1
        run.tokens += run.tokens_per_step

        # -- logging, evaluation, snapshots, checkpointing: the loss reaches the host (the loop's only sync)
        # at the steps that write, on every rank, and a diverged run stops there
        last = run.step == cfg.max_steps
        logs, snapshot = run.step % cfg.log_interval == 0 or last, run.step in cfg.snapshot_steps
        ckpt = cfg.ckpt_interval and run.step % cfg.ckpt_interval == 0 and not last
        evals = run.val_data is not None and ((cfg.eval_interval and run.step % cfg.eval_interval == 0) or last)
        if logs or snapshot or ckpt or evals:  # the sync before a pause: the step's queued GPU work is on the clock
            loss = finite(mean_loss(loss_sum, proc), run.step, "loss", cfg)
        if logs:
            run.log_step(loss, lr, peak)
        if evals:
            run.validate()
        if proc.master and snapshot:
            run.snapshot()
        if proc.master and ckpt:
            with run.clock.paused():
                run.save_resume_state(run.clock.elapsed())

    # -- the outputs; a run resumed at its last step trains nothing, and writes the bytes it wrote before
    seconds = run.clock.elapsed() if run.step > resumed_at else run.seconds
    files = run.write_outputs(seconds, trained_nothing=run.step == resumed_at) if proc.master else {}
    run.runlog.close()
    if proc.ddp:
        dist.barrier()
    return TrainResult(out_dir=str(Path(cfg.out_dir)), steps=run.step, seconds=round(seconds, 2),
                       train_loss=run.train_loss, val_loss=run.val_loss,
                       trainable_params=run.run_info["trainable_params"], checkpoint=files.get("checkpoint"),
                       adapter=files.get("adapter"), **run.spent())


def arg_parser():
    """The command line: one flag per TrainConfig field, with its help sentence and choices."""
    p = argparse.ArgumentParser(description="accrete's one training loop: pretrain | finetune | lora.")
    return add_options(p, TrainConfig, aliases={"out_dir": ["--out"]})


def check_out_name(cfg):
    """Refuse an --out named as a file is (run.json). On the command line only: the ladder names its
    run directories after units, whose ids may hold a dot."""
    try:
        check_dir_name(cfg.out_dir, [f for f in output_files(cfg) if f.parent == Path(cfg.out_dir)], "--out")
    except ValueError as e:
        raise TrainError(str(e)) from None


def main():
    args = vars(arg_parser().parse_args())
    try:
        cfg = TrainConfig(**args)
        check_out_name(cfg)
        result = train(cfg)
    except (ValueError, OSError) as e:  # OSError's message names its file (a full disk, a path that is a file)
        fail(e)
    except KeyboardInterrupt:
        interrupted("the same command with --resume continues from the last state saved (--ckpt-interval)")
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: _no_nan(v) for k, v in dataclasses.asdict(result).items()}))  # no step: no loss
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
