"""
The one GPT of accrete: GPT-2's architecture, used for every stage (base, base + adapter,
merged, fine-tuned, scratch), plus its checkpoints (safetensors), its fingerprint and
GPT-2 weight import/export in Hugging Face's format (safetensors + config.json, no transformers).

    python model.py --preset tiny --vocab-size 4096     # parameter count and FLOPs per token
"""

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F
from safetensors import safe_open

from common import GPT2_TOKENIZER_HASH, atomic_path, atomic_write_text, check_writable, fail, same_file, \
    stops_in_one_line
import presets


class CheckpointError(ValueError):
    """A checkpoint or weight file that cannot be used: missing, corrupted or mismatched."""


@dataclass
class GPTConfig:
    vocab_size: int = 4096
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = True  # True is GPT-2; False is a little faster and no longer exportable to HF

    def __post_init__(self):
        # checked here, so that a bad override, checkpoint header or GPT-2 config is named in one line
        # instead of failing deep inside a layer's constructor or forward
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not _is_count(value):
                raise ValueError(f"model config: {name} must be a whole number >= 1, not {value!r}")
        if self.n_embd % self.n_head:  # each head takes an equal share of the width
            raise ValueError(f"model config: n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if not (type(self.dropout) in (int, float) and 0 <= self.dropout < 1):  # type(): a bool is no number here
            raise ValueError(f"model config: dropout must be in [0, 1), not {self.dropout!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"model config: bias must be true or false, not {self.bias!r}")

    @classmethod
    def preset(cls, name, **overrides):
        """The model of a preset (presets.py) with any field overridden (None values are ignored)."""
        fields = {**presets.preset(name)["model"], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**fields)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """The config a dict names (a checkpoint header's); ValueError for anything that is no config."""
        if not isinstance(d, dict):
            raise ValueError(f"model config must be a JSON object, not {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _is_count(value):
    """A whole number >= 1 (type(), not isinstance: True is an int in Python, but no count)."""
    return type(value) is int and value >= 1


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        # flash attention on CUDA, a fused kernel on the CPU
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new"
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))  # pre-LayerNorm residual blocks
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied input/output embeddings
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: residual projections scaled by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hidden(self, idx):
        """The final hidden states (B, T, n_embd), before the output head: what a caller that needs
        logits at a few positions only (probe scoring) reads, sparing the widest matmul."""
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)

    def forward(self, idx, targets=None):
        """Logits (B, T, vocab) for every position; the mean cross-entropy if targets are given
        (positions whose target is -1 are ignored)."""
        logits = self.lm_head(self.hidden(idx))  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
        """Append max_new_tokens sampled tokens to idx (B, T); temperature 0 is greedy, top_k None or 0
        samples from every token."""
        if temperature < 0:  # would invert the distribution: the least likely tokens first
            raise ValueError(f"temperature {temperature}: must be >= 0 (0 is greedy)")
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k {top_k}: must be >= 0 (0 or None: no cut)")
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])
            logits = logits[:, -1, :].float()
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                probs = F.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat((idx, next_id), dim=1)
        return idx

    def set_dropout(self, p):
        """Train with dropout p from now on (a checkpoint's model was built with the dropout it was
        saved with; the config changes with it, so a checkpoint saved next records p)."""
        self.config.dropout = p
        for name, m in self.named_modules():
            # an adapter's dropout is its LoRA config's (saved and exported with it), not the model's
            if isinstance(m, nn.Dropout) and not name.endswith("lora_dropout"):
                m.p = p
            elif isinstance(m, CausalSelfAttention):
                m.dropout = p

    def num_params(self, non_embedding=True):
        """Parameters counted once (the tied embedding once); without position embeddings by default,
        as nanoGPT counts them for FLOPs."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len=None):
        """Training FLOPs per token as nanoGPT counts them (PaLM appendix B): 6N + 12 L H Q T."""
        c = self.config
        T = seq_len or c.block_size
        return 6 * self.num_params() + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * T


def autocast(device):
    """The precision every stage computes in: bf16 autocast on CUDA; plain float32 on the CPU, where
    bf16 matmuls are far slower."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------- files

# The metadata entry that holds a file's content hash: safetensors itself stores no checksum, so
# without it a flipped bit in a weight would load silently.
CONTENT_SHA256 = "content_sha256"
_noticed_unhashed = set()  # files already reported as unhashed in this process


def _tensor_bytes(t):
    """A contiguous CPU tensor's bytes as stored (bf16 included), without a copy."""
    return t.reshape(-1).view(torch.uint8).numpy()


def content_sha256(tensors, raw_metadata):
    """sha256 over a safetensors file's content: each tensor in name order (name, dtype, shape, raw
    bytes), then every other metadata entry as canonical JSON. Independent of the file's layout."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(_tensor_bytes(t))
    rest = {k: v for k, v in raw_metadata.items() if k != CONTENT_SHA256}
    h.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


_SAFETENSORS_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                       torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                       torch.uint8: "U8", torch.bool: "BOOL"}


def _write_safetensors(tensors, path, raw_metadata):
    """Write tensors and string metadata atomically in safetensors' format, with the content's sha256
    in the header. Written here, not by safetensors.save_file, whose header order changes from run
    to run: the same content always gives the same bytes, so a rerun's file is identical."""
    check_output(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {k: v for k, v in raw_metadata.items() if k != CONTENT_SHA256}  # a stale hash never survives
    meta[CONTENT_SHA256] = content_sha256(tensors, meta)
    # the widest dtypes first (as safetensors orders them), so that every tensor's data stays aligned
    names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, offset = {"__metadata__": dict(sorted(meta.items()))}, 0
    for k in names:
        t = tensors[k]
        if t.dtype not in _SAFETENSORS_DTYPES:
            raise CheckpointError(f"{path}: tensor {k} has dtype {t.dtype}, which these files do not hold")
        size = t.numel() * t.element_size()
        header[k] = {"dtype": _SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for k in names:
            f.write(_tensor_bytes(tensors[k]))


def save_tensors(tensors, path, metadata=None):
    """Write a safetensors file atomically; metadata values are JSON-encoded strings, and the
    header carries the content's sha256, which read_tensors checks."""
    _write_safetensors(tensors, path, {k: json.dumps(v) for k, v in (metadata or {}).items()})


def read_tensors(path, what="safetensors file", check=True):
    """Read a safetensors file -> (tensors, metadata with JSON values decoded). CheckpointError if
    it is missing, unreadable or damaged (content not matching the sha256 in its header). With check
    False the content is not hashed: only bench.py uses it, to time what the check costs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several error types for truncated or garbled files
        raise CheckpointError(f"{path}: corrupted or not a safetensors {what} ({str(e).splitlines()[0]})") from None
    stored = raw.pop(CONTENT_SHA256, None)
    if check and stored is None:
        near_miss = _damaged_hash_key(raw)
        if near_miss:
            raise CheckpointError(f"{path}: damaged: its header holds {near_miss!r} where the content sha256 "
                                  f"belongs; restore the {what} from a copy or write it again")
        _notice_unhashed(path, what)
    elif check and content_sha256(tensors, raw) != stored:
        raise CheckpointError(f"{path}: damaged: its content does not match the sha256 in its header; "
                              f"restore the {what} from a copy or write it again")
    meta = {}
    for k, v in raw.items():
        try:
            meta[k] = json.loads(v)
        except json.JSONDecodeError:
            meta[k] = v  # written by another tool: keep the raw string
    return tensors, meta


def _damaged_hash_key(raw_metadata):
    """The metadata key where CONTENT_SHA256 belongs, damaged, which would otherwise make a hashed
    file read as one written before files were hashed: a key holding a bare 64-digit hex value (every
    other value is written JSON-encoded, a string in quotes), or one a character from the hash's name."""
    near = lambda k: len(k) == len(CONTENT_SHA256) and sum(a != b for a, b in zip(k, CONTENT_SHA256)) == 1
    return next((k for k, v in raw_metadata.items() if near(k) or re.fullmatch(r"[0-9a-f]{64}", v)), None)


def _notice_unhashed(path, what):
    key = str(path.resolve())
    if key not in _noticed_unhashed:
        _noticed_unhashed.add(key)
        print(f"notice: {path}: this {what} carries no content sha256 (written before files were hashed, "
              "or by another tool), so damage to it cannot be detected", file=sys.stderr)


def base_state_dict(model):
    """The weights that define a base model, in canonical order: no LoRA tensors, and the tied
    output head stored once (as the token embedding)."""
    sd = model.state_dict()
    return {k: sd[k] for k in sorted(sd) if "lora_" not in k and k != "lm_head.weight"}


def fingerprint(model):
    """sha256 over the base weights in canonical order: each one's name, shape and values as float32
    bytes. Neither the dtype nor the config is hashed: bf16 weights and their exact float32 copy
    share a fingerprint, float64 ones are hashed at float32 precision, and two configs of the same
    shapes (another n_head) share one (an adapter records its base's config beside it). Stored
    checkpoints and adapters record this hash, so it stays as it is. Attached, unmerged LoRA adapters do
    not change it; merging one does."""
    h = hashlib.sha256()
    for name, t in base_state_dict(model).items():
        t = t.detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def weights_file(path, name):
    """The file a path names: the path itself when it ends in .safetensors, else the directory's
    `name`. One rule for reading and writing, whether or not the path exists yet."""
    path = Path(path)
    return path if path.suffix == ".safetensors" else path / name


# where an adapter was given for a checkpoint: what is asked instead (evaluate.py reads CKPT+ADAPTER)
ADAPTER_GIVEN = "give the checkpoint it was trained on (with evaluate.py, as CHECKPOINT+ADAPTER)"


def input_weights_file(path, name):
    """weights_file for reading: CheckpointError for a path that is some other file (base.pt), which
    would be reported as a missing base.pt/`name`."""
    if Path(path).suffix != ".safetensors" and Path(path).is_file():
        noun = "adapter" if name == "adapter.safetensors" else "checkpoint"
        raise CheckpointError(f"{path}: is a file, not {'an' if noun == 'adapter' else 'a'} {noun} directory; "
                              f"give the {noun}'s directory or its {name}")
    file = weights_file(path, name)
    if name == "model.safetensors" and not file.exists() and (Path(path) / "adapter.safetensors").is_file():
        raise CheckpointError(f"{path}: an adapter's directory, not a checkpoint's; " + ADAPTER_GIVEN)
    return file


def output_weights_file(path, name, what):
    """weights_file for writing by `what` (an option): a path ending in .safetensors is the file itself, any
    other a directory, refused (check_dir_name) where it is named as a file is (x.json)."""
    file = weights_file(path, name)
    if file != Path(path):
        check_dir_name(path, [file], what)
    return file


def check_output(file, sources=()):
    """Refuse (CheckpointError), before anything is written, a weights file that cannot be written where
    it is named (a directory in its place, a file where a directory above it belongs), or that is one
    of `sources`, the files it is made from: writing it would destroy them."""
    try:
        file = check_writable(file, "file")
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    if any(same_file(file, source) for source in sources):
        raise CheckpointError(f"{file}: is the input it would be made from, which writing it would "
                              "destroy; write to another directory")
    return file


# the endings of weights and config files: a directory named with one would pass for a file, to people and tools
FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".json")


def check_dir_name(out_dir, files, what):
    """Refuse (CheckpointError) a directory out_dir, for `what` (an option or a function) to write its
    `files` into, that is named as a file is (x.json made a directory would pass for that file)."""
    out_dir = Path(out_dir)
    if out_dir.suffix.lower() in FILE_SUFFIXES:
        names = [Path(f).name for f in files]
        listed = f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]
        raise CheckpointError(f"{out_dir}: ends in {out_dir.suffix}, as a file's name does, but {what} writes a "
                              f"directory (its {listed}); give a directory's path")


def check_export_dir(out_dir, files, what, sources=()):
    """Refuse (CheckpointError), before anything is written, an export directory out_dir that `what` (an
    option or a function) must not write its `files` into: one check_dir_name refuses, or one where
    check_output refuses any of them (`sources`: the files the export is made from)."""
    check_dir_name(out_dir, files, what)
    for file in files:  # every file before any is written: no weights left without their config
        check_output(file, sources)


def drop_earlier_config(files):
    """Delete an earlier export's config (files: weights, then config) before new weights are written:
    an export stopped between its two files leaves no config, refused on loading, not an old one."""
    Path(files[-1]).unlink(missing_ok=True)


def _checkpoint_file(path):
    return weights_file(path, "model.safetensors")


def machine_memory():
    """Bytes of RAM this machine has in all; None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows), or no such name
        return None


def size_text(n_bytes):
    """A size in memory as people read it: GiB from one GiB up, else MiB."""
    return f"{n_bytes / 2 ** 30:.1f} GiB" if n_bytes >= 2 ** 30 else f"{n_bytes / 2 ** 20:.1f} MiB"


def params_floor(config):
    """The parameters a config has at least, counted without building it: the embeddings and the blocks'
    matrices, without biases and LayerNorms. What the memory checks weigh, so that they refuse only what
    cannot be held."""
    c = config
    return (c.vocab_size + c.block_size) * c.n_embd + 12 * c.n_layer * c.n_embd ** 2


def check_memory(config, source):
    """Refuse (CheckpointError naming `source`, the file the config came from), before the model is built, a
    config whose float32 weights (4 bytes a parameter) exceed this machine's memory: building it would end in
    a traceback, or, where memory is overcommitted (Linux's default), in the process killed without a word.
    Parameters are counted by params_floor, and weighed against the total memory (the model is built on the
    CPU even for a GPU), not what is free now."""
    c, params = config, params_floor(config)
    have = machine_memory()
    if have is not None and 4 * params > have:
        raise CheckpointError(f"{source}: a model of vocab_size {c.vocab_size}, block_size {c.block_size}, n_layer "
                              f"{c.n_layer} and n_embd {c.n_embd} has {params:,} parameters at least, whose float32 "
                              f"weights take {size_text(4 * params)}, more than the {size_text(have)} of memory "
                              "of this machine")


def save_checkpoint(model, path, meta=None):
    """Write path/model.safetensors (or path itself, if it ends in .safetensors): base weights, with
    the config and `meta` in the header."""
    file = _checkpoint_file(path)
    meta = dict(meta or {}, fingerprint=fingerprint(model))
    save_tensors(base_state_dict(model), file, {"config": model.config.to_dict(), "meta": meta})
    return file


# how a checkpoint or an adapter was made, and what each field of that record must hold where given: a
# wrong type (a file written by hand or by another tool) would otherwise fail far from here, naming no file
RECORD_FIELDS = {"tokenizer_hash": (str, "a string"), "units": (list, "a list of unit ids"),
                 **{k: ((int, float), "a number") for k in ("step", "tokens", "flops", "seconds", "tokens_total",
                                                            "flops_total", "trainable_params")}}


def check_record(file, record, fields=RECORD_FIELDS, error=CheckpointError):
    """Refuse a field of record (a file's header) holding the wrong kind of value, naming the file."""
    for name, (kind, what) in fields.items():
        value = record.get(name)
        ok = isinstance(value, kind) and not isinstance(value, bool) and (
            name != "units" or all(isinstance(u, str) for u in value))
        if value is not None and not ok:
            raise error(f"{file}: header field {name!r} must be {what}, not {value!r}")


def load_checkpoint(path, device="cpu", config=None, check=True):
    """Load a checkpoint directory (or .safetensors file) -> (GPT, meta). With `config`, refuse
    a checkpoint whose model config differs; `check` as in read_tensors."""
    file = input_weights_file(path, "model.safetensors")
    tensors, header = read_tensors(file, "checkpoint", check=check)
    if "config" not in header and "lora_config" in header:  # lora.save_adapter's: only the adapter's tensors
        raise CheckpointError(f"{file}: a LoRA adapter, not a checkpoint; " + ADAPTER_GIVEN)
    if "config" not in header:
        raise CheckpointError(f"{file}: not an accrete checkpoint (no model config in its header); Hugging Face "
                              "GPT-2 weights: `python model.py --import-hf PATH --out DIR`, or train.py --init-hf")
    try:
        ckpt_config = GPTConfig.from_dict(header["config"])
    except ValueError as e:
        raise CheckpointError(f"{file}: bad model config in its header: {e}") from None
    if config is not None and config != ckpt_config:
        diff = {k: (v, getattr(ckpt_config, k)) for k, v in config.to_dict().items() if getattr(ckpt_config, k) != v}
        raise CheckpointError(f"{file}: model config does not match the checkpoint (asked, found): {diff}")
    check_memory(ckpt_config, file)  # a header's config is not bounded by the weights stored with it
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise CheckpointError(f"{file}: header field 'meta' must be a JSON object, not {meta!r}")
    check_record(file, meta)
    model = GPT(ckpt_config)
    _load_base_weights(model, tensors, file)
    return model.to(device), meta


def _load_base_weights(model, tensors, file):
    expected = base_state_dict(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{file}: weights do not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, v in expected.items():
        if tensors[k].shape != v.shape:
            raise CheckpointError(f"{file}: {k} has shape {tuple(tensors[k].shape)}, the model needs {tuple(v.shape)}")
        if not tensors[k].is_floating_point():  # load_state_dict would cast integers silently
            raise CheckpointError(f"{file}: {k} holds {tensors[k].dtype}, not floating-point weights")
    model.load_state_dict(tensors, strict=False)  # lm_head.weight is tied to wte: loaded with it


# ----------------------------------------------------------------------------- GPT-2 interop

# Hugging Face's GPT-2 stores these as Conv1D, (in, out): transposed against nn.Linear's (out, in)
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def hf_tokenizer_hash(path):
    """The tokenizer the weights of a GPT-2 directory (or file) read: the one export_hf named in its
    config.json, else GPT-2's own. Read after import_hf, which checks that config."""
    cfg = json.loads((weights_file(path, "model.safetensors").parent / "config.json").read_text(encoding="utf-8"))
    return cfg.get(TOKENIZER_KEY, GPT2_TOKENIZER_HASH)


def import_hf(path, device="cpu"):
    """Read Hugging Face GPT-2 weights (a directory with model.safetensors + config.json, or the
    .safetensors file with config.json beside it) into our GPT."""
    file = input_weights_file(path, "model.safetensors")
    config = _hf_config(file.parent / "config.json")
    check_memory(config, file.parent / "config.json")  # before the weights are read: nothing to read them into
    tensors, _ = read_tensors(file, "GPT-2 weight file")
    ours = {}
    for k, v in tensors.items():
        if k.split(".")[-2:] in (["attn", "bias"], ["attn", "masked_bias"]):
            continue  # the causal-mask buffers (masked_bias is a scalar), not weights; c_attn.bias is kept
        k = k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k
        if k.endswith(_CONV1D):
            v = v.t()
        ours[k] = v.float()
    head, wte = ours.pop("lm_head.weight", None), ours.get("transformer.wte.weight")
    if head is not None and wte is not None and not torch.equal(head, wte):  # dropped, it would change the logits
        raise CheckpointError(f"{file}: lm_head.weight differs from wte (an untied output head); accrete's GPT "
                              "ties the head to wte and cannot hold it")
    model = GPT(config)
    _load_base_weights(model, ours, file)
    return model.to(device)


# GPT-2 config fields that change what the model computes, and the values accrete's GPT computes
# with; the first is Hugging Face's default, which a config that leaves the field out gets.
# (reorder_and_upcast_attn is not one: it computes the same attention scores, in float32.)
_HF_FIXED = {
    "activation_function": ("gelu_new", "gelu_pytorch_tanh"),  # one tanh GELU under two names
    "layer_norm_epsilon": (1e-5,),
    "scale_attn_weights": (True,),  # attention scores divided by sqrt(head size)
    "scale_attn_by_inverse_layer_idx": (False,),  # and, if true, by the layer's index + 1 as well
    "tie_word_embeddings": (True,),  # the output head is wte
}
_HF_DROPOUTS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")


def _hf_config(cfg_file):
    """The GPTConfig of a GPT-2 config.json; CheckpointError naming the file for one that is missing,
    incomplete, or asks for what accrete's GPT does not compute."""
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file}: missing; GPT-2 weights need their config.json beside them")
    try:
        # UTF-8 whatever the locale says, as transformers reads it; json.loads would take bytes in UTF-16 too
        hf = json.loads(cfg_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:  # its message names neither the file nor what to do
        raise CheckpointError(f"{cfg_file}: invalid UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start}); "
                              "save it as UTF-8") from None
    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: arrays nested thousands deep
        raise CheckpointError(f"{cfg_file}: invalid JSON ({e})") from None
    except OSError as e:  # unreadable (permissions): no FileNotFoundError, is_file() said it is there
        raise CheckpointError(f"{cfg_file}: cannot be read ({e.strerror})") from None
    if not isinstance(hf, dict):
        raise CheckpointError(f"{cfg_file}: holds a JSON {type(hf).__name__}, not the object of a GPT-2 config")
    if not isinstance(hf.get(TOKENIZER_KEY, ""), str):
        raise CheckpointError(f"{cfg_file}: {TOKENIZER_KEY} is {json.dumps(hf[TOKENIZER_KEY])}, not the hash of a "
                              "tokenizer (a string)")
    for key, allowed in _HF_FIXED.items():
        if hf.get(key, allowed[0]) not in allowed:
            raise CheckpointError(f"{cfg_file}: {key} is {json.dumps(hf[key])}, which accrete's GPT does not "
                                  f"compute (it has GPT-2's {json.dumps(allowed[0])})")
    # one dropout for all three, as export_hf writes it (Hugging Face's default: 0.1 each)
    for k in _HF_DROPOUTS:  # first: a NaN, unequal to itself, would read as dropouts that differ
        v = hf.get(k, 0.1)
        if not (type(v) in (int, float) and v == v):  # type(): a bool is no number here; the range: GPTConfig's
            raise CheckpointError(f"{cfg_file}: {k} is {json.dumps(v)}, not a dropout probability (a number in [0, 1))")
    dropout = hf.get("resid_pdrop", 0.1)
    if any(hf.get(k, 0.1) != dropout for k in _HF_DROPOUTS):
        raise CheckpointError(f"{cfg_file}: {', '.join(f'{k} {hf.get(k, 0.1)}' for k in _HF_DROPOUTS)} differ; "
                              "accrete's GPT has one dropout for all three")
    try:
        return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"], n_layer=hf["n_layer"],
                         n_head=hf["n_head"], n_embd=hf["n_embd"], dropout=dropout, bias=True)
    except KeyError as e:
        raise CheckpointError(f"{cfg_file}: missing field {e} of a GPT-2 config") from None
    except ValueError as e:
        raise CheckpointError(f"{cfg_file}: {e}") from None


def hf_files(out_dir):
    """The files export_hf writes into out_dir (weights, then config)."""
    return [Path(out_dir) / "model.safetensors", Path(out_dir) / "config.json"]


# config.json's entry naming the tokenizer the exported weights read (Hugging Face keeps unknown entries):
# import_hf gives it back, so a round trip stays on its corpus; a GPT-2 checkpoint without it reads GPT-2's
TOKENIZER_KEY = "accrete_tokenizer_hash"


def export_hf(model, out_dir, tokenizer_hash=None):
    """Write out_dir/model.safetensors + config.json that transformers.GPT2LMHeadModel loads; with
    tokenizer_hash (the checkpoint's), config.json names it for import_hf."""
    c = model.config
    if not c.bias:
        raise CheckpointError("export_hf: GPT-2 has biases; a model trained with bias=False cannot be exported")
    check_export_dir(out_dir, hf_files(out_dir), "export_hf")
    drop_earlier_config(hf_files(out_dir))
    out_dir = Path(out_dir)
    tensors = {k: (v.t() if k.endswith(_CONV1D) else v).float()
               for k, v in base_state_dict(model).items()}
    # transformers refuses safetensors files without a "format": "pt" entry in their header
    _write_safetensors(tensors, out_dir / "model.safetensors", {"format": "pt"})
    hf_config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": c.vocab_size, "n_positions": c.block_size, "n_ctx": c.block_size,
        "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "initializer_range": 0.02,
        "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "tie_word_embeddings": True, "bos_token_id": c.vocab_size - 1, "eos_token_id": c.vocab_size - 1,
        **({TOKENIZER_KEY: tokenizer_hash} if tokenizer_hash else {}),
    }
    atomic_write_text(out_dir / "config.json", json.dumps(hf_config, indent=2) + "\n")
    return out_dir


def _convert(args):
    """--import-hf / --export-hf into --out: every file it writes checked before anything is read or written."""
    if args.import_hf:
        check_output(output_weights_file(args.out, "model.safetensors", "--import-hf"),
                     [weights_file(args.import_hf, "model.safetensors")])
        model = import_hf(args.import_hf)
        meta = {"mode": "import_hf", "tokenizer_hash": hf_tokenizer_hash(args.import_hf)}  # refused on another corpus
        print("wrote", save_checkpoint(model, args.out, meta))
    else:
        check_export_dir(args.out, hf_files(args.out), "--export-hf", [_checkpoint_file(args.export_hf)])
        model, meta = load_checkpoint(args.export_hf)
        print("wrote", export_hf(model, args.out, meta.get("tokenizer_hash")))


def _describe(args):
    """Print the preset's config, parameter count and FLOPs per token. Printing needs shapes only, so the
    model is built on torch's meta device (shapes, no storage): nothing is allocated or initialized, a size
    this machine could not hold still prints (what it would cost is the question), and the figures are
    GPT's own, with no second count to keep in step with the architecture."""
    config = GPTConfig.preset(args.preset, vocab_size=args.vocab_size)
    try:
        with torch.device("meta"):
            model = GPT(config)
    except (RuntimeError, TypeError):  # only --vocab-size can be that large: torch's int64 size arithmetic overflows
        if args.vocab_size is None:  # a preset's own sizes build: this is a fault of ours, shown as one
            raise
        raise ValueError(f"--vocab-size {args.vocab_size}: an embedding of {args.vocab_size} x {config.n_embd} "
                         "entries is more than a tensor can hold") from None
    print(f"{args.preset}: {model.config}")
    print(f"parameters: {model.num_params(False) / 1e6:.2f}M ({model.num_params() / 1e6:.2f}M without positions); "
          f"training FLOPs per token: {model.flops_per_token() / 1e6:.1f}M")


@stops_in_one_line("each file is written whole or not at all; run the same command again")
def main():
    p = argparse.ArgumentParser(description="accrete's GPT: print a preset's size and FLOPs per token, "
                                "or convert weights between accrete checkpoints and Hugging Face GPT-2.")
    p.add_argument("--preset", choices=list(presets.PRESETS),
                   help="The model preset whose config, parameter count and FLOPs per token to print (default: tiny).")
    p.add_argument("--vocab-size", type=int,
                   help="A vocabulary size that replaces the preset's, as a tokenizer of that size would.")
    p.add_argument("--import-hf", metavar="PATH",
                   help="Convert these Hugging Face GPT-2 weights (a directory with model.safetensors and "
                   "config.json, or the .safetensors file) into an accrete checkpoint written to --out.")
    p.add_argument("--export-hf", metavar="CKPT",
                   help="Convert this accrete checkpoint (a directory or its model.safetensors) into a "
                   "Hugging Face GPT-2 directory written to --out.")
    p.add_argument("--out", metavar="DIR",
                   help="The directory to write the converted weights to; required with --import-hf and --export-hf "
                   "(with --import-hf a path ending in .safetensors is the checkpoint file itself; --export-hf "
                   "writes a directory).")
    args = p.parse_args()
    if (args.import_hf or args.export_hf) and not args.out:
        p.error("--out is required with --import-hf / --export-hf")
    if args.import_hf and args.export_hf:  # one --out: the second would be dropped without a word
        p.error("--import-hf and --export-hf: give one of them (each writes --out)")
    if args.vocab_size is not None and (args.import_hf or args.export_hf):
        p.error("--vocab-size goes with --preset (a size to print); converted weights keep their own")
    if args.preset and (args.import_hf or args.export_hf):
        p.error("--preset names a model to print; converted weights keep their own config")
    if args.out and not (args.import_hf or args.export_hf):
        p.error("--out goes with --import-hf or --export-hf (printing a preset writes nothing)")
    args.preset = args.preset or "tiny"
    try:
        _convert(args) if args.import_hf or args.export_hf else _describe(args)
    except (ValueError, FileNotFoundError) as e:
        fail(e)


if __name__ == "__main__":
    main()
