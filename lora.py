"""
LoRA for accrete's GPT, written out: LoRALinear, attach / merge / unmerge, adapter files that
know which base they belong to, and export to PEFT's format.

A LoRALinear keeps its base layer's parameter names (`weight`, `bias`), so a base checkpoint loads
unchanged and an adapter file holds only `lora_` tensors. Merging is an explicit call, never a
side effect of .train() / .eval().

    python lora.py --checkpoint CKPT --adapter ADAPTER --out MERGED   # merge an adapter file
    python lora.py --checkpoint CKPT --adapter ADAPTER --export-peft DIR
"""

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

from common import atomic_write_text, fail, sha256_file, stops_in_one_line
from model import RECORD_FIELDS, check_export_dir, check_output, check_record, drop_earlier_config, fingerprint, \
    input_weights_file, load_checkpoint, output_weights_file, read_tensors, save_checkpoint, save_tensors, weights_file


class AdapterError(ValueError):
    """An adapter that cannot be used: wrong base, wrong keys, missing or corrupted file."""


DEFAULT_TARGETS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


@dataclass
class LoRAConfig:
    r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    target_modules: tuple = DEFAULT_TARGETS  # module names inside the blocks, or their last dotted parts
    use_rslora: bool = False  # scale alpha / sqrt(r) instead of alpha / r (rank-stabilized LoRA)

    def __post_init__(self):
        # a bare string is a sequence of names too, of one letter each: refused as it was given
        targets = self.target_modules
        if not (isinstance(targets, (list, tuple)) and all(isinstance(t, str) for t in targets)):
            raise AdapterError(f"LoRA target_modules must be a list of names of block linears, not {targets!r}")
        # an empty suffix would match every linear ("a,".split(",")): dropped, as a typo; and the
        # spaces of "a, b" are no part of a name
        self.target_modules = tuple(t.strip() for t in self.target_modules if t.strip())
        if not (isinstance(self.r, int) and self.r >= 1):
            raise AdapterError(f"LoRA rank r must be a whole number >= 1, not {self.r!r}")
        # 0 scales the update and both its gradients to nothing (an adapter that silently never
        # learns); nan or inf poisons every weight the adapter is merged into
        alpha = self.lora_alpha
        if not (type(alpha) in (int, float) and math.isfinite(alpha) and alpha > 0):  # type(): no bool
            raise AdapterError(f"LoRA alpha must be a finite number > 0, not {alpha!r}")
        if not (type(self.lora_dropout) in (int, float) and 0 <= self.lora_dropout < 1):
            raise AdapterError(f"LoRA lora_dropout must be in [0, 1), not {self.lora_dropout!r}")
        if not isinstance(self.use_rslora, bool):  # "no" in a header would be true
            raise AdapterError(f"LoRA use_rslora must be true or false, not {self.use_rslora!r}")
        if not self.target_modules:
            raise AdapterError("LoRA target_modules is empty: name the block linears to adapt")

    @property
    def scaling(self):
        """What the adapter's product B A is multiplied by: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def to_dict(self):
        return dict(dataclasses.asdict(self), target_modules=list(self.target_modules))

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        targets = d.get("target_modules", DEFAULT_TARGETS)  # JSON gives a list; anything else is refused as given
        return cls(**dict(d, target_modules=tuple(targets) if isinstance(targets, list) else targets))


def _folded(weight, lora_A, lora_B, scaling):
    """W' = W + scaling * B A in the weight's own precision, even under autocast: cast to bf16
    afterwards, W's spread of values rounds a small delta up or down in proportion (its expectation
    survives), while a W already cast to bf16 sits on bf16's grid and rounds the delta away."""
    with torch.autocast(weight.device.type, enabled=False):
        return torch.addmm(weight, lora_B, lora_A, alpha=scaling)


class _FoldedLoRAFunction(torch.autograd.Function):
    """x W^T + b + scaling * (x A^T) B^T for a frozen W and b, with the adapter folded into the weight:
    the kernel for CPUs.

    Left to autograd, the side path costs a CPU most of what skipping the frozen weight's gradient
    saves: its rank-r matmuls are memory-bound, and its output and input gradient are separate
    activation-sized tensors that are then added. Folded first, W' = W + scaling * B A (a weight-sized
    product, small against the activations' work), the output and the input gradient are one matmul
    each, as for a plain linear. W' is kept from the forward for the backward (a weight-sized copy per
    adapted linear while the step runs) because recomputing it costs more than the memory is worth.
    The adapter's own gradients need only the rank-r intermediates, kept as (r, N): MKL writes tall,
    thin products much slower than wide, short ones. Nothing is computed for W's or b's gradient."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, weight, bias, lora_A, lora_B, scaling):
        folded = _folded(weight, lora_A, lora_B, scaling)
        out = F.linear(x, folded, bias)  # under autocast in its dtype
        ctx.save_for_backward(x, folded, lora_A, lora_B)
        ctx.scaling = scaling
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_out):
        x, folded, lora_A, lora_B = ctx.saved_tensors
        s = ctx.scaling
        g = grad_out.reshape(-1, grad_out.size(-1))  # (N, out)
        x2 = x.reshape(-1, x.size(-1)).to(g.dtype)  # (N, in)
        A, B = lora_A.to(g.dtype), lora_B.to(g.dtype)
        h_t = A.mm(x2.t())  # (r, N): x A^T
        grad_h_t = B.t().mm(g.t()).mul_(s)  # (r, N): the gradient of x A^T
        grad_B = h_t.mm(g).mul_(s).t()  # (out, r)
        grad_A = grad_h_t.mm(x2)  # (r, in)
        grad_x = None
        if ctx.needs_input_grad[0]:  # not for the first block, whose input comes from frozen embeddings
            grad_x = grad_out.matmul(folded.to(g.dtype))
        return grad_x, None, None, grad_A, grad_B, None


def _compute_dtype(x):
    """The dtype a linear on x computes in: autocast's where it is on, else x's own."""
    dev = x.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype


class _UnfoldedLoRAFunction(torch.autograd.Function):
    """x W^T + b + scaling * (x A^T) B^T for a frozen W and b, with the side path kept apart: the
    kernel for GPUs.

    On a GPU under bf16 autocast, folding would add weight-sized float32 work and casts every step,
    and there is no weight-gradient matmul left for it to save; the rank-r matmuls are cheap next
    to the main one. Plain autograd would cast x once for each of its two matmuls and keep both
    casts, and would scale and add the side path in separate activation-sized kernels. Here the
    forward casts x once and saves it with the rank-r h = x A^T only (W, A and B are referenced, not
    copied), the add is fused into addmm_, and the backward computes grad_x = g W + s (g B) A,
    grad_A = s (g B)^T x and grad_B = s g^T h, and nothing for W or b."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, weight, bias, lora_A, lora_B, scaling):
        dt = _compute_dtype(x)
        x2 = x.reshape(-1, x.size(-1)).to(dt)  # (N, in): the cast autocast would make anyway
        h = x2.mm(lora_A.to(dt).t())  # (N, r)
        out = F.linear(x2, weight.to(dt), None if bias is None else bias.to(dt))  # (N, out)
        out.addmm_(h, lora_B.to(dt).t(), alpha=scaling)
        ctx.save_for_backward(x2, h, weight, lora_A, lora_B)  # W, A, B are parameters: no copies
        ctx.scaling = scaling
        return out.view(*x.shape[:-1], out.size(-1))

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_out):
        x2, h, weight, lora_A, lora_B = ctx.saved_tensors
        dt = x2.dtype
        g = grad_out.reshape(-1, grad_out.size(-1)).to(dt)  # (N, out)
        A = lora_A.to(dt)
        grad_h = g.mm(lora_B.to(dt)).mul_(ctx.scaling)  # (N, r): the gradient of h, scaled
        grad_x = grad_A = grad_B = None
        if ctx.needs_input_grad[0]:  # not for the first block, whose input comes from frozen embeddings
            grad_x = g.mm(weight.to(dt)).addmm_(grad_h, A).view(*grad_out.shape[:-1], A.size(1))
        if ctx.needs_input_grad[3]:
            grad_A = grad_h.t().mm(x2)  # (r, in)
        if ctx.needs_input_grad[4]:
            grad_B = g.t().mm(h).mul_(ctx.scaling)  # (out, r)
        return grad_x, None, None, grad_A, grad_B, None


# The kernel LoRALinear runs for each device type of its input (another device type gets the
# unfolded one). A module-level table, so that a test can run either kernel on the CPU.
KERNELS = {"cpu": _FoldedLoRAFunction, "cuda": _UnfoldedLoRAFunction}


class LoRALinear(nn.Module):
    """y = base(x) + B(A(dropout(x))) * scaling, with the base weight frozen.

    A starts kaiming-uniform and B at zero, so a fresh adapter changes nothing. With the base frozen
    and no dropout, the forward and backward are those of the kernel KERNELS names for the input's
    device: written naively, the rank-r side path costs back much of what the frozen weight saves."""

    def __init__(self, base: nn.Linear, r, lora_alpha, lora_dropout=0.0, use_rslora=False):
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight  # the same Parameter objects: base keys and values unchanged
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        dev, dtype = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, device=dev, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, device=dev, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear (and PEFT) initialize
        self.scaling = LoRAConfig(r=r, lora_alpha=lora_alpha, use_rslora=use_rslora).scaling
        self.lora_dropout = nn.Dropout(lora_dropout) if lora_dropout > 0 else None
        self.merged = False

    def delta_weight(self):
        """scaling * B @ A in float32 (float64 for float64 weights), what merging adds to the base weight:
        on the CPU, so that a merge gives the same bytes on any device (a GPU's float32 matmul may run in
        TF32, which train.py allows)."""
        dtype = _merge_dtype(self.weight)
        delta = self.lora_B.detach().to("cpu", dtype) @ self.lora_A.detach().to("cpu", dtype)
        return (delta * self.scaling).to(self.weight.device)

    def forward(self, x):
        if self.merged:
            return F.linear(x, self.weight, self.bias)
        dropout = self.lora_dropout is not None and self.training
        if not (dropout or self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad)):
            kernel = KERNELS.get(x.device.type, _UnfoldedLoRAFunction)
            return kernel.apply(x, self.weight, self.bias, self.lora_A, self.lora_B, self.scaling)
        # dropout on the adapter's input, or a base weight someone unfroze: plain autograd
        h = F.linear(self.lora_dropout(x) if dropout else x, self.lora_A) * self.scaling
        return F.linear(x, self.weight, self.bias) + F.linear(h, self.lora_B)

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, r={self.lora_A.size(0)}, scaling={self.scaling:g}"


def lora_layers(model):
    """(name, LoRALinear) for every adapted layer, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]


def _targets(model, cfg):
    """The block linears a target names: the whole name or its last dotted parts (PEFT's rule, so an
    exported config selects the same layers: "c_fc" names mlp.c_fc, "fc" names nothing)."""
    linears = [(n, m) for n, m in model.transformer.h.named_modules() if isinstance(m, nn.Linear)]
    names = lambda n, t: n == t or n.endswith("." + t)
    # every target must name a layer: a misspelt one beside others would otherwise be dropped silently
    unmatched = [t for t in cfg.target_modules if not any(names(n, t) for n, _ in linears)]
    if unmatched:
        kinds = sorted({n.split(".", 1)[1] for n, _ in linears})  # "0.attn.c_attn" -> "attn.c_attn"
        raise AdapterError(f"target_modules {unmatched} match no linear layer in the blocks "
                           f"(the block linears: {', '.join(kinds)})")
    return [(n, m) for n, m in linears if any(names(n, t) for t in cfg.target_modules)]


def attach(model, cfg=None):
    """Wrap the target linears of `model` in LoRALinear and freeze everything else. Returns the
    number of trainable parameters."""
    cfg = cfg or LoRAConfig()
    if lora_layers(model):
        raise AdapterError("this model already has LoRA layers; merge() them first")
    targets = _targets(model, cfg)  # first: a config that fits no layer leaves the model as it was
    for p in model.parameters():
        p.requires_grad_(False)
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.transformer.h.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(linear, cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.use_rslora))
    model.lora_config = cfg
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# a merged model's own training is its adapter's: the base's figures for these would describe another run
TRAINING_FIGURES = ("tokens", "flops", "step", "val_loss", "tokens_total", "flops_total", "seconds",
                    "trainable_params")


def merged_meta(base_meta, adapter_meta):
    """The header of a base with an adapter merged in: the base's, with the adapter's units added, and
    the adapter's training figures (its tokens, its compute, and both counted from random init) and
    the fingerprint of the base it was trained on. A base without a tokenizer hash (GPT-2 weights)
    takes the adapter's, so the merged model's descendants are still checked against it."""
    # an adapter that rehearsed the base's units names them again: each unit once
    units = list(dict.fromkeys(list(base_meta.get("units") or []) + list(adapter_meta.get("units") or [])))
    # the base's own fingerprint names other weights: save_checkpoint writes the merged model's
    meta = {k: v for k, v in base_meta.items() if k not in TRAINING_FIGURES + ("fingerprint",)}
    own = {k: adapter_meta[k] for k in TRAINING_FIGURES + ("base_fingerprint",) if adapter_meta.get(k) is not None}
    if not meta.get("tokenizer_hash") and adapter_meta.get("tokenizer_hash"):
        meta["tokenizer_hash"] = adapter_meta["tokenizer_hash"]
    return dict(meta, mode="merged", units=units, **own)


def merged_event(meta, out_dir, checkpoint, init, adapter):
    """The passport's model_trained event of a merged model (meta: its header, merged_meta's): the
    adapter's own event holds what the training cost, so this one adds 0 tokens and 0 FLOPs and
    carries the totals from random init."""
    return dict(mode="merged", out_dir=str(out_dir), checkpoint=str(checkpoint),
                checkpoint_sha256=sha256_file(checkpoint), units=meta.get("units"), init=str(init),
                adapter=str(adapter), tokens=0, flops=0, tokens_total=meta.get("tokens_total"),
                flops_total=meta.get("flops_total"))


def _merge_dtype(weight):
    """What a merge computes in: float32, or the weight's own dtype where that is wider (float64)."""
    return torch.promote_types(weight.dtype, torch.float32)


def merge(model, unload=True):
    """Fold every adapter into its base weight (in float32, or float64 for float64 weights). With unload
    (the default) the LoRALinear layers become plain nn.Linear again and the result is a plain GPT whose
    state-dict keys are exactly a base model's; without it, unmerge() can take the adapters back out."""
    for name, layer in lora_layers(model):
        with torch.no_grad():
            if not layer.merged:
                if not unload:  # (W + d) - d is not W in floating point: unmerge() restores these bytes
                    layer.unmerged_weight = layer.weight.detach().clone()
                merged = layer.weight.to(_merge_dtype(layer.weight)) + layer.delta_weight()
                layer.weight.copy_(merged.to(layer.weight.dtype))
                layer.merged = True
    if unload:
        _unload(model)
    return model


def _unload(model):
    """Every LoRALinear back to a plain nn.Linear holding its weight as it is now (merged or not), and
    every parameter trainable, as a base model's."""
    for name, layer in lora_layers(model):
        linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                           device=layer.weight.device, dtype=layer.weight.dtype)
        linear.weight, linear.bias = layer.weight, layer.bias
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, linear)
    model.__dict__.pop("lora_config", None)
    for p in model.parameters():
        p.requires_grad_(True)


def unmerge(model):
    """Take merged (not unloaded) adapters back out: the base weights come back bit for bit (so its
    fingerprint, which an adapter saved now records, is the base's)."""
    for _, layer in lora_layers(model):
        if layer.merged:
            with torch.no_grad():
                layer.weight.copy_(layer.unmerged_weight)
            del layer.unmerged_weight
            layer.merged = False
    return model


def adapter_state_dict(model):
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}


def save_adapter(model, path, meta=None):
    """Write only the LoRA tensors to `path` (a directory gets adapter.safetensors; a path ending in
    .safetensors is the file), with the LoRA config and the fingerprint of the exact base they were
    trained on in the header."""
    layers = lora_layers(model)
    if not layers:
        raise AdapterError("save_adapter: the model has no LoRA layers (attach() first)")
    if any(layer.merged for _, layer in layers):
        raise AdapterError("save_adapter: adapters are merged into the weights; unmerge() first")
    file = weights_file(path, "adapter.safetensors")
    # user meta first: a checkpoint's meta may carry an older base_fingerprint, never the one that counts here
    # the fingerprint hashes weights, not the config: the base's n_head, which shapes no weight, goes beside it
    header = {**(meta or {}), "lora_config": model.lora_config.to_dict(), "base_fingerprint": fingerprint(model),
              "base_config": _computing(model.config)}
    save_tensors(adapter_state_dict(model), file, header)
    return file


# the header fields this module reads besides the record of how the adapter was made, as check_record checks them
HEADER_FIELDS = {"lora_config": (dict, "a JSON object"), "base_fingerprint": (str, "a string"),
                 "base_config": (dict, "a JSON object"), **RECORD_FIELDS}


def read_adapter(path):
    """An adapter file -> (tensors, header). AdapterError if missing or not an adapter, or a header field
    of the wrong type."""
    try:
        file = input_weights_file(path, "adapter.safetensors")
        tensors, header = read_tensors(file, "adapter file")
    except ValueError as e:
        raise AdapterError(str(e)) from None
    if header.get("lora_config") is None or header.get("base_fingerprint") is None:
        raise AdapterError(f"{file}: not an accrete adapter (no lora_config/base_fingerprint in its header)")
    check_record(file, header, HEADER_FIELDS, AdapterError)
    return tensors, dict(header, file=str(file))


def _computing(config):
    """The fields of a model config that decide what its weights compute (dropout only acts in training)."""
    return {k: v for k, v in config.to_dict().items() if k != "dropout"}


def load_adapter(model, path, tokenizer_hash=None):
    """Attach the adapter at `path` to `model` and load its tensors. Refuses a model whose weights
    are not the adapter's base (fingerprint), another tokenizer, and any missing or unexpected key."""
    tensors, header = read_adapter(path)
    file = header["file"]
    if fingerprint(model) != header["base_fingerprint"]:
        raise AdapterError(f"{file}: adapter was trained on base {header['base_fingerprint'][:12]}, "
                           f"not on this model ({fingerprint(model)[:12]}); load the base it was trained on")
    base_config, ours = header.get("base_config"), _computing(model.config)  # an older adapter recorded none
    if base_config is not None and base_config != ours:
        differ = [f"{k} {v}" for k, v in sorted(base_config.items()) if ours.get(k) != v]
        raise AdapterError(f"{file}: adapter was trained on a base of {', '.join(differ) or 'another config'}, which "
                           "this model's weights match but it computes otherwise; load the base it was trained on")
    if tokenizer_hash and header.get("tokenizer_hash") and tokenizer_hash != header["tokenizer_hash"]:
        raise AdapterError(f"{file}: adapter was trained with another tokenizer "
                           f"({header['tokenizer_hash'][:12]} vs {tokenizer_hash[:12]})")
    trainable = [p.requires_grad for p in model.parameters()]
    try:
        attach(model, LoRAConfig.from_dict(header["lora_config"]))
    except (AdapterError, TypeError) as e:  # a header's config that is no config, or fits no layer
        raise AdapterError(f"{file}: {e}") from None

    def refuse(message):
        _unload(model)  # leave no half-attached adapter behind, the weights untouched
        for p, flag in zip(model.parameters(), trainable):
            p.requires_grad_(flag)  # and the model frozen or not, as it came
        raise AdapterError(f"{file}: {message}")

    expected = adapter_state_dict(model)
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        refuse(f"adapter keys do not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, v in expected.items():
        if tensors[k].shape != v.shape:
            refuse(f"{k} has shape {tuple(tensors[k].shape)}, the model needs {tuple(v.shape)}")
        # a diverged training's adapter hashes as valid as any: its nan would reach every merged weight
        if not torch.isfinite(tensors[k]).all():
            refuse(f"{k} holds non-finite values (nan or inf), which merging would spread to every output")
    model.load_state_dict(tensors, strict=False)
    return header


def peft_files(out_dir):
    """The files export_peft writes into out_dir (weights, then config)."""
    return [Path(out_dir) / "adapter_model.safetensors", Path(out_dir) / "adapter_config.json"]


def export_peft(model, out_dir):
    """Write out_dir/adapter_model.safetensors + adapter_config.json in PEFT's LoRA format for
    Hugging Face GPT-2 (Conv1D layers: fan_in_fan_out), for the base written by model.export_hf."""
    layers = lora_layers(model)
    if not layers:
        raise AdapterError("export_peft: the model has no LoRA layers")
    if any(layer.merged for _, layer in layers):  # its weights, exported, would carry the delta PEFT adds again
        raise AdapterError("export_peft: adapters are merged into the weights; unmerge() first")
    check_export_dir(out_dir, peft_files(out_dir), "export_peft")
    drop_earlier_config(peft_files(out_dir))
    cfg = model.lora_config
    tensors = {}
    for name, layer in layers:
        # PEFT's lora_A / lora_B are nn.Linear(in, r) / nn.Linear(r, out): the same matrices as ours
        tensors[f"base_model.model.{name}.lora_A.weight"] = layer.lora_A.float()
        tensors[f"base_model.model.{name}.lora_B.weight"] = layer.lora_B.float()
    out_dir = Path(out_dir)
    save_tensors(tensors, out_dir / "adapter_model.safetensors")
    peft_config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": None,
        "r": cfg.r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout,
        "target_modules": list(cfg.target_modules), "use_rslora": cfg.use_rslora,
        "fan_in_fan_out": True, "bias": "none", "inference_mode": True, "init_lora_weights": True,
        "modules_to_save": None, "layers_to_transform": None,
    }
    atomic_write_text(out_dir / "adapter_config.json", json.dumps(peft_config, indent=2) + "\n")
    return out_dir


def merge_files(checkpoint, adapter, out):
    """The base checkpoint with the adapter file merged in, written to out as a plain checkpoint ->
    (the file, its header: merged_meta's)."""
    model, meta = load_checkpoint(checkpoint)
    return save_merged(model, meta, load_adapter(model, adapter, meta.get("tokenizer_hash")), out)


def save_merged(model, base_meta, header, out):
    """A base (its header: base_meta) with the adapter load_adapter attached to it (its header: header)
    merged in, written to out as a plain checkpoint -> (the file, its header: merged_meta's)."""
    meta = merged_meta(base_meta, header)
    return save_checkpoint(merge(model), out, meta), meta


def check_outputs(args):
    """Refuse, before anything is read or written, every file --out and --export-peft would write that cannot
    be: one refused after another was written would leave half the work (a merge without its export)."""
    inputs = [input_weights_file(args.checkpoint, "model.safetensors"),
              input_weights_file(args.adapter, "adapter.safetensors")]
    merged = output_weights_file(args.out, "model.safetensors", "--out") if args.out else None
    exported = peft_files(args.export_peft) if args.export_peft else []
    # a merge or export written over its base or adapter would destroy it
    if merged:
        check_output(merged, inputs)
    if exported:
        check_export_dir(args.export_peft, exported, "--export-peft", inputs)
    if merged and merged.resolve() in {f.resolve() for f in exported}:
        raise AdapterError(f"{merged}: --out names a file --export-peft writes too, which would replace the "
                           "merged checkpoint; give --out another path")


@stops_in_one_line("each file is written whole or not at all; run the same command again")
def main():
    p = argparse.ArgumentParser(description="accrete LoRA: merge an adapter into its base checkpoint, "
                                "or export it in PEFT's format. With neither --out nor --export-peft, "
                                "check that the adapter fits the checkpoint.")
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="The base checkpoint the adapter was trained on (a directory or its model.safetensors).")
    p.add_argument("--adapter", required=True, metavar="ADAPTER",
                   help="The adapter to load: adapter.safetensors or the directory holding it.")
    p.add_argument("--out", metavar="DIR",
                   help="Merge the adapter into the base and write the result here as a plain checkpoint "
                   "(a directory; a path ending in .safetensors is the checkpoint file itself).")
    p.add_argument("--export-peft", metavar="DIR",
                   help="Write the adapter here in PEFT's format (a directory), for the base that model.py "
                   "--export-hf writes.")
    args = p.parse_args()
    try:
        check_outputs(args)
        # read once for both outputs: each read hashes every weight of the checkpoint and the adapter
        model, meta = load_checkpoint(args.checkpoint)
        header = load_adapter(model, args.adapter, meta.get("tokenizer_hash"))
        if args.export_peft:  # before the merge, which takes the adapter's layers out of the model
            print("wrote", export_peft(model, args.export_peft))
        if args.out:
            print("wrote", save_merged(model, meta, header, args.out)[0])
        if not (args.out or args.export_peft):
            print(f"{header['file']}: fits {args.checkpoint}; config {header['lora_config']}")
    except (ValueError, FileNotFoundError) as e:
        fail(e)


if __name__ == "__main__":
    main()
