"""lora.py: LoRALinear, attach / merge / unmerge, adapter files and PEFT export."""

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import GPT, GPTConfig, export_hf, fingerprint, load_checkpoint, read_tensors, save_checkpoint, \
    save_tensors  # noqa: E402
import lora  # noqa: E402
from lora import _FoldedLoRAFunction, _UnfoldedLoRAFunction, AdapterError, DEFAULT_TARGETS, LoRAConfig, LoRALinear, attach, load_adapter, lora_layers, \
    merge, merged_meta, save_adapter, unmerge, export_peft  # noqa: E402
from in_process import ctrl_c, run_main  # noqa: E402

MICRO = GPTConfig.preset("micro")  # vocab 512, block 64, 2 layers, 2 heads, 64 wide


def base_model(seed=0):
    """A micro GPT with every weight random (biases and LayerNorms included)."""
    torch.manual_seed(seed)
    model = GPT(MICRO).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if ("ln_" in name and name.endswith("weight")) else 0.0
            p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
    return model


def with_trained_adapter(model, cfg=None, seed=1):
    """Attach an adapter and give it random non-zero A and B, as if it had been trained."""
    attach(model, cfg or LoRAConfig())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_A.copy_(0.1 * torch.randn(layer.lora_A.shape, generator=g))
            layer.lora_B.copy_(0.1 * torch.randn(layer.lora_B.shape, generator=g))
    return model


def tokens(B=2, T=16, seed=0):
    return torch.randint(0, MICRO.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


def logits(model, idx=None):
    with torch.no_grad():
        return model(tokens() if idx is None else idx)[0]


# ----------------------------------------------------------------------------- config and attach

def test_lora_config_defaults_target_the_four_block_linears():
    cfg = LoRAConfig()
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.use_rslora) == (8, 16, 0.0, False)
    assert tuple(cfg.target_modules) == ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj") == DEFAULT_TARGETS
    assert cfg.scaling == 2.0


def test_lora_config_round_trips_through_a_dict():
    cfg = LoRAConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=("attn.c_attn",), use_rslora=True)
    assert LoRAConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_attach_returns_the_trainable_count_r_times_in_plus_out_per_target():
    model = base_model()
    C, r = MICRO.n_embd, 8
    per_block = (r * (C + 3 * C)      # attn.c_attn: 64 -> 192
                 + r * (C + C)        # attn.c_proj: 64 -> 64
                 + r * (C + 4 * C)    # mlp.c_fc:    64 -> 256
                 + r * (4 * C + C))   # mlp.c_proj: 256 -> 64
    n = attach(model, LoRAConfig(r=r))
    assert n == MICRO.n_layer * per_block == 16384
    assert n == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_attach_freezes_everything_but_lora_parameters():
    model = base_model()
    attach(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.rsplit(".", 1)[-1] in ("lora_A", "lora_B") for n in trainable)
    assert len(trainable) == 2 * 4 * MICRO.n_layer


def test_attach_only_wraps_the_chosen_targets():
    model = base_model()
    n = attach(model, LoRAConfig(r=2, target_modules=("attn.c_attn",)))
    assert [name for name, _ in lora_layers(model)] == [f"transformer.h.{i}.attn.c_attn" for i in range(MICRO.n_layer)]
    assert n == MICRO.n_layer * 2 * (MICRO.n_embd + 3 * MICRO.n_embd)


def test_attach_keeps_the_base_state_dict_keys_and_adds_only_lora_keys():
    model = base_model()
    base_keys = set(model.state_dict())
    attach(model)
    keys = set(model.state_dict())
    assert base_keys <= keys
    assert all("lora_" in k for k in keys - base_keys)


def test_attach_twice_is_refused():
    model = base_model()
    attach(model)
    layers = lora_layers(model)
    with pytest.raises(AdapterError, match=r"^this model already has LoRA layers; merge\(\) them first$"):
        attach(model)
    assert lora_layers(model) == layers  # the same layers, none wrapped a second time


def test_target_that_matches_nothing_is_refused_and_leaves_the_model_trainable():
    model = base_model()
    with pytest.raises(AdapterError, match="nowhere"):
        attach(model, LoRAConfig(target_modules=("nowhere",)))
    assert all(p.requires_grad for p in model.parameters())


def test_a_target_names_whole_dotted_parts_as_peft_does_and_an_empty_one_is_dropped():
    def names(targets):
        model = base_model()
        attach(model, LoRAConfig(target_modules=targets))
        return [n.split(".", 3)[-1] for n, _ in lora_layers(model)]

    assert names(("c_fc",)) == ["mlp.c_fc"] * MICRO.n_layer
    assert names(("attn.c_attn", "")) == ["attn.c_attn"] * MICRO.n_layer  # "a,".split(","): not every linear
    assert names(("c_proj",)) == ["attn.c_proj", "mlp.c_proj"] * MICRO.n_layer
    with pytest.raises(AdapterError, match="match no linear"):
        names(("fc",))  # a part of a name's last part names nothing (PEFT: no module)


def test_every_target_must_match_a_layer_even_beside_one_that_does():
    model = base_model()
    with pytest.raises(AdapterError, match=r"^target_modules \['mlp\.cfc', 'ffn'\] match no linear layer in the "
                                           r"blocks \(the block linears: attn\.c_attn, attn\.c_proj, mlp\.c_fc, "
                                           r"mlp\.c_proj\)$"):
        attach(model, LoRAConfig(target_modules=("attn.c_attn", "mlp.cfc", "ffn")))
    assert not lora_layers(model) and all(p.requires_grad for p in model.parameters())


def test_spaces_around_target_names_are_no_part_of_them():
    model = base_model()
    attach(model, LoRAConfig(target_modules=tuple("attn.c_attn, mlp.c_fc ".split(","))))
    assert [n.split(".", 3)[-1] for n, _ in lora_layers(model)] == ["attn.c_attn", "mlp.c_fc"] * MICRO.n_layer
    assert model.lora_config.target_modules == ("attn.c_attn", "mlp.c_fc")


@pytest.mark.parametrize("bad, match", [(dict(r=0), "rank r must be"), (dict(r=-2), "rank r must be"),
                                        (dict(lora_dropout=1.0), "dropout must be"),
                                        (dict(target_modules=("",)), "target_modules is empty"),
                                        (dict(target_modules=(1,)), "target_modules must be a list of names"),
                                        (dict(lora_alpha=0), "alpha must be a finite number > 0, not 0$"),
                                        (dict(lora_alpha=-16.0), "alpha must be a finite number > 0, not -16.0"),
                                        (dict(lora_alpha=float("nan")), "alpha must be a finite number > 0, not nan"),
                                        (dict(lora_alpha=float("inf")), "alpha must be a finite number > 0, not inf"),
                                        (dict(lora_alpha=True), "alpha must be a finite number > 0, not True")])
def test_a_config_that_cannot_work_is_refused_in_one_line(bad, match):
    with pytest.raises(AdapterError, match=match):
        LoRAConfig(**bad)


def test_an_adapter_whose_header_config_fits_no_layer_is_refused_naming_the_file(tmp_path):
    model = with_trained_adapter(base_model())
    file = save_adapter(model, tmp_path)
    tensors, header = read_tensors(file)
    for cfg in (dict(header["lora_config"], target_modules=["nowhere"]), dict(header["lora_config"], r=0),
                dict(header["lora_config"], lora_alpha=0.0)):
        save_tensors(tensors, file, dict(header, lora_config=cfg))
        base = base_model()
        with pytest.raises(AdapterError, match=rf"^{file}: "):
            load_adapter(base, file)
        assert not lora_layers(base) and all(p.requires_grad for p in base.parameters())


# ----------------------------------------------------------------------------- forward, merge, unmerge

def test_fresh_adapter_leaves_the_logits_exactly_unchanged():
    model = base_model()
    before = logits(model)
    attach(model)
    assert torch.equal(logits(model), before)


def test_attached_unmerged_adapter_keeps_the_base_fingerprint():
    model = base_model()
    fp = fingerprint(model)
    with_trained_adapter(model)
    assert fingerprint(model) == fp


def test_base_plus_adapter_equals_the_merged_model():
    model = with_trained_adapter(base_model())
    with_adapter = logits(model)
    assert (with_adapter - logits(base_model())).abs().max() > 1e-2  # the adapter does something
    merged = merge(copy.deepcopy(model))
    assert (logits(merged) - with_adapter).abs().max().item() < 1e-5


def test_merge_without_unload_then_unmerge_restores_the_base_weights():
    base = base_model()
    model = with_trained_adapter(base_model())
    merge(model, unload=False)
    assert all(layer.merged for _, layer in lora_layers(model))
    assert fingerprint(model) != fingerprint(base)
    unmerge(model)
    base_sd, sd = base.state_dict(), model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in base_sd.items())  # bit for bit: (W + d) - d would not be
    assert fingerprint(model) == fingerprint(base)


def test_an_adapter_saved_after_merge_and_unmerge_loads_on_its_base(tmp_path):
    model = with_trained_adapter(base_model())
    unmerge(merge(model, unload=False))
    file = save_adapter(model, tmp_path)
    assert load_adapter(base_model(), file)["base_fingerprint"] == fingerprint(base_model())


def test_an_adapter_given_where_a_checkpoint_goes_is_named_as_an_adapter(tmp_path):
    """Not "no model config": the file is an adapter, and the checkpoint it was trained on is what is asked."""
    file = save_adapter(with_trained_adapter(base_model()), tmp_path)
    with pytest.raises(ValueError, match=f"^{file}: a LoRA adapter, not a checkpoint; give the checkpoint it was "
                                         r"trained on \(with evaluate.py, as CHECKPOINT\+ADAPTER\)$"):
        load_checkpoint(file)
    with pytest.raises(ValueError, match=f"^{tmp_path}: an adapter's directory, not a checkpoint's; give the "):
        load_checkpoint(tmp_path)


def test_merged_without_unload_gives_the_adapter_logits_once():
    model = with_trained_adapter(base_model())
    with_adapter = logits(model)
    merge(model, unload=False)  # the adapter path is skipped while merged: not added twice
    assert (logits(model) - with_adapter).abs().max().item() < 1e-5


def test_merge_returns_a_plain_gpt_with_base_keys_that_loads_strictly():
    merged = merge(with_trained_adapter(base_model()))
    assert type(merged) is GPT
    assert not lora_layers(merged) and not hasattr(merged, "lora_config")
    fresh = GPT(MICRO).eval()
    assert list(merged.state_dict()) == list(fresh.state_dict())
    fresh.load_state_dict(merged.state_dict(), strict=True)
    assert torch.equal(logits(fresh), logits(merged))
    assert all(p.requires_grad for p in merged.parameters())


def test_merged_model_changes_the_fingerprint():
    fp = fingerprint(base_model())
    assert fingerprint(merge(with_trained_adapter(base_model()))) != fp


def test_rslora_scales_by_alpha_over_sqrt_r():
    model = base_model()
    attach(model, LoRAConfig(r=4, lora_alpha=8, use_rslora=True))
    assert all(layer.scaling == 8 / 2 for _, layer in lora_layers(model))
    assert LoRAConfig(r=4, lora_alpha=8, use_rslora=True).scaling == 4.0
    assert LoRAConfig(r=4, lora_alpha=8).scaling == 2.0


def test_lora_dropout_is_active_in_train_mode_and_inactive_in_eval():
    model = with_trained_adapter(base_model(), LoRAConfig(lora_dropout=0.5))
    no_dropout = merge(copy.deepcopy(model))
    model.train()
    torch.manual_seed(0)
    a = logits(model)
    b = logits(model)
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(logits(model), logits(model))
    assert (logits(model) - logits(no_dropout)).abs().max().item() < 1e-5


def test_gradients_flow_only_into_lora_a_and_b():
    model = with_trained_adapter(base_model())
    model.train()
    _, loss = model(tokens(), tokens(seed=1))
    loss.backward()
    for name, p in model.named_parameters():
        if name.endswith(("lora_A", "lora_B")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_lora_linear_keeps_the_base_parameter_objects():
    linear = torch.nn.Linear(8, 4)
    layer = LoRALinear(linear, r=2, lora_alpha=4)
    assert layer.weight is linear.weight and layer.bias is linear.bias
    assert not layer.weight.requires_grad
    assert torch.equal(layer.lora_B, torch.zeros(4, 2)) and layer.lora_A.abs().sum() > 0


# ----------------------------------------------------------------------------- adapter files

def test_save_adapter_writes_only_lora_tensors_and_a_header(tmp_path):
    model = with_trained_adapter(base_model())
    file = save_adapter(model, tmp_path / "ad", {"units": ["u1"], "tokenizer_hash": "tok1"})
    assert file == tmp_path / "ad" / "adapter.safetensors"
    tensors, header = read_tensors(file)
    assert len(tensors) == 2 * 4 * MICRO.n_layer and all("lora_" in k for k in tensors)
    assert header["lora_config"] == LoRAConfig().to_dict()
    assert header["base_fingerprint"] == fingerprint(base_model())
    assert header["units"] == ["u1"] and header["tokenizer_hash"] == "tok1"


def test_user_meta_cannot_override_the_base_fingerprint(tmp_path):
    model = with_trained_adapter(base_model())
    file = save_adapter(model, tmp_path, {"base_fingerprint": "0" * 64})
    assert read_tensors(file)[1]["base_fingerprint"] == fingerprint(model)


def test_save_adapter_of_a_model_without_lora_is_refused(tmp_path):
    with pytest.raises(AdapterError, match="attach"):
        save_adapter(base_model(), tmp_path)


def test_load_adapter_round_trip_gives_identical_logits(tmp_path):
    model = with_trained_adapter(base_model(), LoRAConfig(r=4, lora_alpha=8, target_modules=("attn.c_attn", "mlp.c_fc")))
    save_adapter(model, tmp_path, {"units": ["u1"]})
    other = base_model()
    header = load_adapter(other, tmp_path)
    assert header["units"] == ["u1"]
    assert other.lora_config == model.lora_config
    assert torch.equal(logits(other), logits(model))


def test_adapter_for_another_base_is_refused_naming_the_file(tmp_path):
    save_adapter(with_trained_adapter(base_model(seed=0)), tmp_path)
    other = base_model(seed=1)
    with pytest.raises(AdapterError, match="adapter.safetensors"):
        load_adapter(other, tmp_path)
    assert not lora_layers(other)


def test_adapter_for_a_base_of_the_same_weights_and_another_n_head_is_refused(tmp_path):
    """n_head shapes no weight, so the fingerprint cannot tell the bases apart; what they compute differs."""
    save_adapter(with_trained_adapter(base_model()), tmp_path)
    other = base_model()
    other.config = GPTConfig(**dict(MICRO.to_dict(), n_head=4))  # the same weights, 4 heads of 16, not 2 of 32
    for block in other.transformer.h:
        block.attn.n_head = 4
    assert fingerprint(other) == fingerprint(base_model())
    with pytest.raises(AdapterError, match=r"adapter\.safetensors: adapter was trained on a base of n_head 2, which"):
        load_adapter(other, tmp_path)
    assert not lora_layers(other)
    assert load_adapter(base_model(), tmp_path)["base_config"]["n_head"] == 2  # its own base is accepted


def test_a_refused_adapter_leaves_float64_weights_bit_for_bit(tmp_path):
    """Refusing undoes the attach without a merge, which would round float64 weights to float32."""
    model = base_model().double()
    with torch.no_grad():  # weights float32 cannot hold
        for p in model.parameters():
            p.add_(1e-12 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    file = save_adapter(with_trained_adapter(copy.deepcopy(model)), tmp_path)
    rewrite_adapter(file, lambda t: t.pop("transformer.h.1.mlp.c_fc.lora_B"))
    with pytest.raises(AdapterError, match="missing"):
        load_adapter(model, file)
    assert not lora_layers(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_merging_float64_weights_computes_in_float64():
    model = with_trained_adapter(base_model().double())
    with_adapter = logits(model)
    assert (logits(merge(model)) - with_adapter).abs().max().item() < 1e-12  # float32 would leave about 1e-7


def test_adapter_for_another_tokenizer_is_refused(tmp_path):
    save_adapter(with_trained_adapter(base_model()), tmp_path, {"tokenizer_hash": "aaaa"})
    model = base_model()
    with pytest.raises(AdapterError, match="tokenizer"):
        load_adapter(model, tmp_path, tokenizer_hash="bbbb")
    assert not lora_layers(model)
    load_adapter(model, tmp_path, tokenizer_hash="aaaa")  # the right tokenizer is accepted


def rewrite_adapter(file, edit):
    tensors, header = read_tensors(file)
    edit(tensors)
    save_tensors(tensors, file, header)


def assert_left_as_the_plain_base(model):
    base = base_model()
    assert not lora_layers(model)
    assert list(model.state_dict()) == list(base.state_dict())
    assert fingerprint(model) == fingerprint(base)


def test_adapter_with_a_missing_key_is_refused_and_leaves_no_adapter(tmp_path):
    file = save_adapter(with_trained_adapter(base_model()), tmp_path)
    rewrite_adapter(file, lambda t: t.pop("transformer.h.1.mlp.c_fc.lora_B"))
    model = base_model()
    with pytest.raises(AdapterError, match=r"adapter\.safetensors.*missing.*h\.1\.mlp\.c_fc\.lora_B"):
        load_adapter(model, tmp_path)
    assert_left_as_the_plain_base(model)


def test_adapter_with_an_unexpected_key_is_refused_and_leaves_no_adapter(tmp_path):
    file = save_adapter(with_trained_adapter(base_model()), tmp_path)
    rewrite_adapter(file, lambda t: t.update({"transformer.h.0.attn.c_attn.lora_C": torch.zeros(2, 2)}))
    model = base_model()
    with pytest.raises(AdapterError, match=r"adapter\.safetensors.*unexpected.*lora_C"):
        load_adapter(model, tmp_path)
    assert_left_as_the_plain_base(model)


def test_adapter_with_a_wrong_shape_is_refused_and_leaves_no_adapter(tmp_path):
    file = save_adapter(with_trained_adapter(base_model()), tmp_path)
    rewrite_adapter(file, lambda t: t.update({"transformer.h.0.attn.c_attn.lora_A": torch.zeros(3, MICRO.n_embd)}))
    model = base_model()
    with pytest.raises(AdapterError, match=r"adapter\.safetensors.*lora_A.*shape"):
        load_adapter(model, tmp_path)
    assert_left_as_the_plain_base(model)


def test_truncated_adapter_file_is_refused_naming_the_file(tmp_path):
    file = save_adapter(with_trained_adapter(base_model()), tmp_path)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 3])
    model = base_model()
    with pytest.raises(AdapterError, match="adapter.safetensors"):
        load_adapter(model, file)
    assert not lora_layers(model)


def test_garbage_adapter_file_is_refused_naming_the_file(tmp_path):
    file = tmp_path / "adapter.safetensors"
    file.write_bytes(b"\xff" * 1000)
    with pytest.raises(AdapterError, match="adapter.safetensors"):
        load_adapter(base_model(), tmp_path)


def test_missing_adapter_file_is_refused_naming_the_file(tmp_path):
    with pytest.raises(AdapterError, match="nothing.safetensors"):
        load_adapter(base_model(), tmp_path / "nothing.safetensors")


def test_checkpoint_passed_as_an_adapter_is_refused(tmp_path):
    file = save_checkpoint(base_model(), tmp_path, {})
    with pytest.raises(AdapterError, match="not an accrete adapter"):
        load_adapter(base_model(), file)


def test_adapter_errors_are_value_errors():
    assert issubclass(AdapterError, ValueError)


# ----------------------------------------------------------------------------- PEFT export and CLI

def test_export_peft_of_merged_adapters_is_refused_as_saving_them_is(tmp_path):
    """Merged but attached: its weights already hold the delta, which PEFT would add again."""
    model = merge(with_trained_adapter(base_model()), unload=False)
    for write in (export_peft, save_adapter):
        with pytest.raises(AdapterError, match="adapters are merged into the weights; unmerge\\(\\) first"):
            write(model, tmp_path / write.__name__)
        assert not (tmp_path / write.__name__).exists()


def test_export_peft_writes_peft_keys_shapes_and_config(tmp_path):
    cfg = LoRAConfig(r=4, lora_alpha=8, lora_dropout=0.05, use_rslora=True)
    model = with_trained_adapter(base_model(), cfg)
    export_peft(model, tmp_path)
    with safe_open(str(tmp_path / "adapter_model.safetensors"), framework="pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        a = f.get_tensor("base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight")
    C = MICRO.n_embd
    expected = {}
    for i in range(MICRO.n_layer):
        for target, (n_in, n_out) in {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C),
                                      "mlp.c_fc": (C, 4 * C), "mlp.c_proj": (4 * C, C)}.items():
            expected[f"base_model.model.transformer.h.{i}.{target}.lora_A.weight"] = (4, n_in)
            expected[f"base_model.model.transformer.h.{i}.{target}.lora_B.weight"] = (n_out, 4)
    assert shapes == expected
    assert torch.equal(a, model.transformer.h[0].mlp.c_fc.lora_A)
    pc = json.loads((tmp_path / "adapter_config.json").read_text())
    assert pc["peft_type"] == "LORA" and pc["task_type"] == "CAUSAL_LM"
    assert (pc["r"], pc["lora_alpha"], pc["lora_dropout"], pc["use_rslora"]) == (4, 8, 0.05, True)
    assert pc["target_modules"] == list(DEFAULT_TARGETS)
    assert pc["fan_in_fan_out"] is True and pc["bias"] == "none"


def test_a_merged_header_takes_the_adapters_tokenizer_hash_when_the_base_has_none():
    assert merged_meta({"init_hf": "gpt2"}, {"tokenizer_hash": "tok1"})["tokenizer_hash"] == "tok1"
    assert merged_meta({"tokenizer_hash": "tok0"}, {"tokenizer_hash": "tok1"})["tokenizer_hash"] == "tok0"


def test_set_dropout_leaves_the_adapters_dropout_as_its_config_says():
    model = with_trained_adapter(base_model(), LoRAConfig(lora_dropout=0.2))
    model.set_dropout(0.5)
    assert {layer.lora_dropout.p for _, layer in lora_layers(model)} == {0.2} == {model.lora_config.lora_dropout}
    assert model.transformer.h[0].mlp.dropout.p == model.transformer.drop.p == model.config.dropout == 0.5


def test_an_adapter_path_is_a_file_only_when_it_ends_in_safetensors(tmp_path):
    model = with_trained_adapter(base_model())
    assert save_adapter(model, tmp_path / "ad.v1") == tmp_path / "ad.v1" / "adapter.safetensors"
    assert save_adapter(model, tmp_path / "one.safetensors") == tmp_path / "one.safetensors"
    for path in (tmp_path / "ad.v1", tmp_path / "one.safetensors"):
        assert lora.read_adapter(path)[1]["base_fingerprint"] == fingerprint(base_model())
    # a path that is not there yet is read by the same rule: a directory, unless it ends in .safetensors
    with pytest.raises(AdapterError, match=r"x\.v1/adapter\.safetensors"):
        lora.read_adapter(tmp_path / "x.v1")


def test_cli_merges_an_adapter_file_into_a_checkpoint_equal_to_merge(tmp_path):
    save_checkpoint(base_model(), tmp_path / "base", {"tokenizer_hash": "tok1", "units": ["u0"]})
    model = with_trained_adapter(base_model())
    save_adapter(model, tmp_path / "ad", {"tokenizer_hash": "tok1", "units": ["u1"]})
    r = subprocess.run([sys.executable, "lora.py", "--checkpoint", str(tmp_path / "base"),
                        "--adapter", str(tmp_path / "ad"), "--out", str(tmp_path / "merged")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    loaded, meta = load_checkpoint(tmp_path / "merged")
    merged = merge(model)
    sd = merged.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())
    assert meta["mode"] == "merged" and meta["units"] == ["u0", "u1"]
    assert meta["base_fingerprint"] == fingerprint(base_model())
    assert meta["fingerprint"] == fingerprint(merged)


def write_base_and_adapter(d):
    save_checkpoint(base_model(), d / "base", {"units": ["u0"]})
    save_adapter(with_trained_adapter(base_model()), d / "ad", {"units": ["u1"]})


@pytest.fixture
def merge_cli(capsys):
    """lora.py merging the adapter d/ad into the checkpoint d/base, written to `out`: in this process (no
    interpreter to start), its exit status and what it printed."""
    return lambda d, out: run_main(lora.main, ["--checkpoint", d / "base", "--adapter", d / "ad", "--out", out],
                                   capsys)


def files_under(d):
    return sorted((str(f.relative_to(d)), f.read_bytes()) for f in d.rglob("*") if f.is_file())


@pytest.mark.parametrize("out, file", [("base", "base/model.safetensors"),
                                       ("base/model.safetensors", "base/model.safetensors"),
                                       ("ad/adapter.safetensors", "ad/adapter.safetensors")])
def test_cli_merge_over_its_own_base_or_adapter_is_refused_and_leaves_them_as_they_were(tmp_path, out, file,
                                                                                         merge_cli):
    write_base_and_adapter(tmp_path)
    before = files_under(tmp_path)
    r = merge_cli(tmp_path, tmp_path / out)
    assert r.returncode == 2
    assert r.stderr == f"error: {tmp_path / file}: is the input it would be made from, which writing it would " \
                       "destroy; write to another directory\n"
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("below", ["", "x"])
def test_cli_merge_into_an_out_that_names_an_existing_file_exits_2_with_one_line(tmp_path, below, merge_cli):
    write_base_and_adapter(tmp_path)
    (tmp_path / "afile").write_text("mine")
    r = merge_cli(tmp_path, tmp_path / "afile" / below)
    assert r.returncode == 2
    assert r.stderr == f"error: {tmp_path / 'afile'}: is a file, not a directory, so " \
                       f"{tmp_path / 'afile' / below / 'model.safetensors'} cannot be made there\n"
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.fixture
def lora_cli(capsys):
    """lora.py's command line with any arguments, in this process: its exit status and what it printed."""
    return lambda *args: run_main(lora.main, args, capsys)


def test_cli_merge_with_an_export_peft_that_cannot_be_written_writes_no_merge_either(tmp_path, lora_cli):
    """Every output is checked before any is written: a refused export leaves no merged checkpoint behind."""
    write_base_and_adapter(tmp_path)
    (tmp_path / "pf").write_text("mine")
    before = files_under(tmp_path)
    r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / "m1",
                 "--export-peft", tmp_path / "pf")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / 'pf'}: is a file, not a directory, so " \
                       f"{tmp_path / 'pf' / 'adapter_model.safetensors'} cannot be made there\n"
    assert not (tmp_path / "m1").exists() and files_under(tmp_path) == before


@pytest.mark.parametrize("blocked", ["adapter_config.json", "adapter_model.safetensors"])
def test_export_peft_with_a_directory_where_one_of_its_files_goes_writes_neither(tmp_path, blocked, lora_cli):
    write_base_and_adapter(tmp_path)
    (tmp_path / "pe" / blocked).mkdir(parents=True)
    before = files_under(tmp_path)
    r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / "m1",
                 "--export-peft", tmp_path / "pe")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / 'pe' / blocked}: is a directory, where the output file would be written\n"
    assert not (tmp_path / "m1").exists() and files_under(tmp_path) == before
    with pytest.raises(ValueError, match=f"{blocked}: is a directory"):  # export_peft itself checks before writing
        export_peft(with_trained_adapter(base_model()), tmp_path / "pe")
    assert files_under(tmp_path) == before


def test_an_export_peft_stopped_before_its_config_leaves_no_earlier_config_beside_its_weights(tmp_path,
                                                                                              monkeypatch):
    # the earlier config's lora_alpha would scale the new adapter's weights silently
    export_peft(with_trained_adapter(base_model()), tmp_path / "pe")
    monkeypatch.setattr(lora, "atomic_write_text", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        export_peft(with_trained_adapter(base_model()), tmp_path / "pe")
    assert (tmp_path / "pe" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "pe" / "adapter_config.json").exists()


def test_cli_out_that_names_a_file_export_peft_writes_is_refused(tmp_path, lora_cli):
    write_base_and_adapter(tmp_path)
    out = tmp_path / "pe" / "adapter_model.safetensors"
    r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", out,
                 "--export-peft", tmp_path / "pe")
    assert (r.returncode, r.stderr) == (2, f"error: {out}: --out names a file --export-peft writes too, which "
                                           "would replace the merged checkpoint; give --out another path\n")
    assert not (tmp_path / "pe").exists()


@pytest.mark.parametrize("name, existing", [("pe.safetensors", False), ("pe.bin", True)])
def test_cli_export_peft_into_a_path_named_as_a_file_is_refused_and_writes_no_merge_either(tmp_path, name, existing,
                                                                                           lora_cli):
    """A PEFT export is a directory, as model.py's --export-hf is: refused alike, before anything is written."""
    write_base_and_adapter(tmp_path)
    out = tmp_path / name
    if existing:
        out.write_text("mine")
    before = files_under(tmp_path)
    r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / "m1",
                 "--export-peft", out)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {out}: ends in {out.suffix}, as a file's name does, but --export-peft writes a " \
                       "directory (its adapter_model.safetensors and adapter_config.json); give a directory's path\n"
    assert out.is_file() == existing and not (tmp_path / "m1").exists() and files_under(tmp_path) == before
    with pytest.raises(ValueError, match=rf"^{out}: ends in {out.suffix}, as a file's name does, but export_peft "
                                           "writes a directory"):
        export_peft(with_trained_adapter(base_model()), out)
    assert out.is_file() == existing and files_under(tmp_path) == before


@pytest.mark.parametrize("given, says", [
    ("--checkpoint", "is a file, not a checkpoint directory; give the checkpoint's directory or its model.safetensors"),
    ("--adapter", "is a file, not an adapter directory; give the adapter's directory or its adapter.safetensors")])
def test_cli_a_plain_file_for_the_checkpoint_or_adapter_is_named_a_file_not_a_missing_one(tmp_path, given, says,
                                                                                          lora_cli):
    # it was "base.pt/model.safetensors: no such checkpoint", as if the file were not there
    write_base_and_adapter(tmp_path)
    (tmp_path / "base.pt").write_text("mine")
    paths = {"--checkpoint": tmp_path / "base", "--adapter": tmp_path / "ad", given: tmp_path / "base.pt"}
    r = lora_cli(*(x for flag in ("--checkpoint", "--adapter") for x in (flag, paths[flag])), "--out", tmp_path / "m1")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"error: {tmp_path / 'base.pt'}: {says}\n")
    assert not (tmp_path / "m1").exists()
    if given == "--adapter":
        with pytest.raises(AdapterError, match=rf"^{tmp_path / 'base.pt'}: {says}$"):
            lora.read_adapter(tmp_path / "base.pt")


@pytest.mark.parametrize("name", ["m.pt", "m.json"])
def test_cli_merge_into_an_out_named_as_a_file_but_not_safetensors_is_refused(tmp_path, name, lora_cli):
    """--out is a directory, or the .safetensors checkpoint file itself: m.pt made a directory would pass
    for a file, as --export-peft's would."""
    write_base_and_adapter(tmp_path)
    before = files_under(tmp_path)
    r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / name)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / name}: ends in {Path(name).suffix}, as a file's name does, but --out " \
                       "writes a directory (its model.safetensors); give a directory's path\n"
    assert not (tmp_path / name).exists() and files_under(tmp_path) == before
    r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / "m.safetensors")
    assert r.returncode == 0 and load_checkpoint(tmp_path / "m.safetensors")[1]["units"] == ["u0", "u1"]


def counting(monkeypatch, name, reads):
    """lora.`name`, counting its calls in reads[name]."""
    real = getattr(lora, name)

    def counted(*args, **kwargs):
        reads[name] = reads.get(name, 0) + 1
        return real(*args, **kwargs)
    monkeypatch.setattr(lora, name, counted)


def test_cli_merge_with_export_peft_reads_the_checkpoint_and_the_adapter_once(tmp_path, lora_cli, monkeypatch):
    """Each read hashes every weight: the two outputs share one."""
    write_base_and_adapter(tmp_path)
    reads = {}
    for name in ("load_checkpoint", "read_adapter"):
        counting(monkeypatch, name, reads)
    r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / "m",
                 "--export-peft", tmp_path / "pe")
    assert (r.returncode, r.stderr) == (0, "")
    assert reads == {"load_checkpoint": 1, "read_adapter": 1}


def test_cli_merge_with_export_peft_writes_the_bytes_each_writes_alone(tmp_path, lora_cli):
    write_base_and_adapter(tmp_path)
    args = ["--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad"]
    assert lora_cli(*args, "--out", tmp_path / "both" / "m", "--export-peft", tmp_path / "both" / "pe").returncode == 0
    assert lora_cli(*args, "--out", tmp_path / "alone" / "m").returncode == 0
    assert lora_cli(*args, "--export-peft", tmp_path / "alone" / "pe").returncode == 0
    assert files_under(tmp_path / "both") == files_under(tmp_path / "alone")
    assert [name for name, _ in files_under(tmp_path / "both")] == [
        "m/model.safetensors", "pe/adapter_config.json", "pe/adapter_model.safetensors"]


def test_cli_ctrl_c_ends_in_one_line_and_writes_nothing(tmp_path, lora_cli, monkeypatch):
    write_base_and_adapter(tmp_path)
    before = files_under(tmp_path)

    monkeypatch.setattr(lora, "load_checkpoint", ctrl_c)
    try:
        r = lora_cli("--checkpoint", tmp_path / "base", "--adapter", tmp_path / "ad", "--out", tmp_path / "m1")
    except KeyboardInterrupt:  # caught, or it would stop the whole test session
        pytest.fail("Ctrl-C escaped main(): the command ends in a traceback")
    assert (r.returncode, r.stdout) == (130, "")
    assert r.stderr == "interrupted: each file is written whole or not at all; run the same command again\n"
    assert not (tmp_path / "m1").exists() and files_under(tmp_path) == before


def test_peft_loads_the_export_and_gives_our_base_plus_adapter_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    results = {}
    for use_rslora in (False, True):
        cfg = LoRAConfig(r=4, lora_alpha=8, use_rslora=use_rslora)
        model = with_trained_adapter(base_model(), cfg)
        out = tmp_path / f"rslora_{use_rslora}"
        export_hf(model, out / "base")  # the base weights only: lora_ tensors are not part of it
        export_peft(model, out / "adapter")
        hf = transformers.GPT2LMHeadModel.from_pretrained(str(out / "base"))
        peft_model = peft.PeftModel.from_pretrained(hf, str(out / "adapter")).eval()
        idx = tokens(2, 24, seed=3)
        with torch.no_grad():
            theirs = peft_model(input_ids=idx).logits
        results[use_rslora] = (theirs - logits(model, idx)).abs().max().item()
    print(f"PEFT vs ours: max abs diff {results[False]:.3g} (alpha/r), {results[True]:.3g} (rslora)")
    assert max(results.values()) < 1e-4


# ----------------------------------------------------------------------------- the kernels

KERNEL_CLASSES = [_FoldedLoRAFunction, _UnfoldedLoRAFunction]


def random_lora_layer(bias=True, dtype=torch.float64, r=3, lora_alpha=6, use_rslora=False, seed=0):
    """A LoRALinear 6 -> 5 whose weight, bias, A and B are all random and nonzero."""
    torch.manual_seed(seed)
    layer = LoRALinear(torch.nn.Linear(6, 5, bias=bias).to(dtype), r=r, lora_alpha=lora_alpha, use_rslora=use_rslora)
    with torch.no_grad():
        layer.lora_A.normal_()
        layer.lora_B.normal_()
    return layer


def plain_autograd(layer, x):
    """The layer's output written with plain autograd ops, as reference."""
    return F.linear(x, layer.weight, layer.bias) + F.linear(F.linear(x, layer.lora_A), layer.lora_B) * layer.scaling


def grads(out, grad_out, *tensors):
    return torch.autograd.grad(out, [t for t in tensors if t.requires_grad], grad_out)


@pytest.mark.parametrize("use_rslora", [False, True])
@pytest.mark.parametrize("kernel", KERNEL_CLASSES)
def test_lora_output_is_base_plus_alpha_over_r_or_sqrt_r_times_x_at_bt(monkeypatch, kernel, use_rslora):
    monkeypatch.setitem(lora.KERNELS, "cpu", kernel)
    r, alpha = 4, 8.0
    layer = random_lora_layer(r=r, lora_alpha=alpha, use_rslora=use_rslora)
    x = torch.randn(3, 7, 6, dtype=torch.float64)
    s = alpha / math.sqrt(r) if use_rslora else alpha / r
    expected = x @ layer.weight.t() + layer.bias + s * (x @ layer.lora_A.t() @ layer.lora_B.t())
    with torch.no_grad():
        assert torch.allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kernel", KERNEL_CLASSES)
def test_kernel_gradients_pass_a_float64_gradcheck(kernel, bias):
    layer = random_lora_layer(bias=bias)
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    f = lambda x, A, B: kernel.apply(x, layer.weight, layer.bias, A, B, layer.scaling)
    assert torch.autograd.gradcheck(f, (x, layer.lora_A, layer.lora_B))


@pytest.mark.parametrize("x_needs_grad", [True, False])  # False: the first block, fed by frozen embeddings
@pytest.mark.parametrize("kernel", KERNEL_CLASSES)
def test_kernel_output_and_gradients_equal_plain_autograds(kernel, x_needs_grad):
    layer = random_lora_layer()
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=x_needs_grad)
    grad_out = torch.randn(2, 4, 5, dtype=torch.float64)
    out = kernel.apply(x, layer.weight, layer.bias, layer.lora_A, layer.lora_B, layer.scaling)
    ref = plain_autograd(layer, x)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    got, want = grads(out, grad_out, x, layer.lora_A, layer.lora_B), grads(ref, grad_out, x, layer.lora_A, layer.lora_B)
    assert len(got) == (3 if x_needs_grad else 2)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNEL_CLASSES)
def test_kernel_under_cpu_bf16_autocast_matches_plain_autograd_to_bf16_precision(kernel):
    layer = random_lora_layer(dtype=torch.float32)
    x = torch.randn(4, 16, 6, requires_grad=True)
    grad_out = torch.randn(4, 16, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = kernel.apply(x, layer.weight, layer.bias, layer.lora_A, layer.lora_B, layer.scaling)
        ref = plain_autograd(layer, x)
    assert out.dtype == ref.dtype == torch.bfloat16
    pairs = [(out.float(), ref.float())] + list(zip(grads(out, grad_out.bfloat16(), x, layer.lora_A, layer.lora_B),
                                                    grads(ref, grad_out.bfloat16(), x, layer.lora_A, layer.lora_B)))
    for got, want in pairs:
        assert got.dtype == want.dtype
        assert (got - want).abs().max() <= 0.02 * want.abs().max(), (got - want).abs().max()


def test_lora_linear_runs_the_folded_kernel_on_the_cpu_unless_kernels_says_otherwise(monkeypatch):
    layer = random_lora_layer(dtype=torch.float32)
    x = torch.randn(2, 6)
    assert lora.KERNELS["cpu"] is _FoldedLoRAFunction and lora.KERNELS["cuda"] is _UnfoldedLoRAFunction
    assert layer(x).grad_fn.name() == "_FoldedLoRAFunctionBackward"
    monkeypatch.setitem(lora.KERNELS, "cpu", _UnfoldedLoRAFunction)
    assert layer(x).grad_fn.name() == "_UnfoldedLoRAFunctionBackward"


def test_unfolded_kernel_gives_a_micro_model_the_loss_and_adapter_gradients_of_the_folded_one(monkeypatch):
    results = {}
    for kernel in KERNEL_CLASSES:
        monkeypatch.setitem(lora.KERNELS, "cpu", kernel)
        model = with_trained_adapter(base_model()).train()
        _, loss = model(tokens(), tokens(seed=1))
        loss.backward()
        results[kernel] = loss.item(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    (loss_f, grads_f), (loss_u, grads_u) = results.values()
    assert abs(loss_f - loss_u) < 1e-5
    assert grads_f.keys() == grads_u.keys() and len(grads_f) == 2 * 4 * MICRO.n_layer
    for n in grads_f:
        assert torch.allclose(grads_f[n], grads_u[n], rtol=1e-4, atol=1e-6), n


def test_a_refused_adapter_leaves_a_frozen_model_frozen(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("micro"))
    attach(model, LoRAConfig(r=2))
    file = save_adapter(model, tmp_path)
    tensors, header = read_tensors(file)
    tensors.pop(next(iter(tensors)))
    from model import save_tensors
    save_tensors(tensors, file, header)
    base = GPT(GPTConfig.preset("micro"))
    base.load_state_dict(merge(model).state_dict())
    for p in base.parameters():
        p.requires_grad_(False)
    with pytest.raises(AdapterError, match="missing"):
        load_adapter(base, file)
    assert not lora_layers(base) and not any(p.requires_grad for p in base.parameters())


def test_under_bf16_autocast_a_small_adapter_still_changes_the_output():
    """A fresh adapter's delta is below half of bf16's resolution at the weights' size. Folded into
    W' in float32 and then cast, W's spread of values rounds it up or down in proportion, so the
    outputs move by the delta on average; folded after W is cast to bf16, it would round away."""
    torch.manual_seed(0)
    layer = LoRALinear(torch.nn.Linear(64, 32), r=4, lora_alpha=8)
    with torch.no_grad():
        layer.lora_B.normal_(std=1e-4)  # scaling * B A ~1e-4 against weights ~0.06 (bf16 half-ulp ~1e-4)
    x = torch.randn(4096, 64)
    delta = x @ layer.delta_weight().t()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        seen = layer(x).float() - torch.nn.functional.linear(x, layer.weight, layer.bias).float()
    share = (seen * delta).sum() / (delta * delta).sum()  # the part of the delta the outputs show
    assert 0.8 < share < 1.2, share


def test_merged_meta_adds_the_adapters_units_and_takes_its_training_figures_and_none_of_the_bases():
    base = {"mode": "pretrain", "units": ["a"], "tokens": 100, "flops": 600, "seconds": 50.0, "trainable_params": 10_000,
            "tokenizer_hash": "t", "fingerprint": "the base's weights"}
    adapter = {"mode": "lora", "units": ["b"], "tokens": 20, "tokens_total": 120, "flops_total": 680, "seconds": 4.0,
               "trainable_params": 300}
    meta = merged_meta(base, adapter)
    assert meta == {"mode": "merged", "units": ["a", "b"], "tokens": 20, "tokens_total": 120, "flops_total": 680,
                    "seconds": 4.0, "trainable_params": 300, "tokenizer_hash": "t"}  # no flops: the adapter has none
    assert base["units"] == ["a"] and base["seconds"] == 50.0  # the base's header is left as it was


# ----------------------------------------------------------------------------- bad adapter files

def rewrite_header(file, **fields):
    tensors, header = read_tensors(file)
    save_tensors(tensors, file, dict(header, **fields))  # with a valid content hash: only the fields are wrong


@pytest.mark.parametrize("field, value, must", [
    ("base_fingerprint", 5, "a string"), ("base_fingerprint", ["ab"], "a string"),
    ("lora_config", "r=8", "a JSON object"), ("tokenizer_hash", 5, "a string"),
    ("units", "atoms", "a list of unit ids"), ("units", [{"a": 1}], "a list of unit ids"),
    ("tokens", "x", "a number"), ("flops", [1], "a number")])
def test_an_adapter_header_field_of_the_wrong_type_is_one_line_naming_the_file_and_field(tmp_path, field, value,
                                                                                        must, merge_cli):
    write_base_and_adapter(tmp_path)
    file = tmp_path / "ad" / "adapter.safetensors"
    rewrite_header(file, **{field: value})
    before = files_under(tmp_path)
    r = merge_cli(tmp_path, tmp_path / "merged")
    assert (r.returncode, r.stderr) == (2, f"error: {file}: header field {field!r} must be {must}, not {value!r}\n")
    assert files_under(tmp_path) == before  # nothing merged, nothing written


@pytest.mark.parametrize("key, value", [("lora_dropout", "0.1"), ("use_rslora", "yes"), ("target_modules", "attn")])
def test_an_adapter_config_field_of_the_wrong_type_is_refused_naming_the_file_and_value(tmp_path, key, value):
    file = save_adapter(with_trained_adapter(base_model()), tmp_path)
    rewrite_header(file, lora_config=dict(read_tensors(file)[1]["lora_config"], **{key: value}))
    model = base_model()
    with pytest.raises(AdapterError, match=rf"^{file}: LoRA {key} must be .*, not {value!r}$"):
        load_adapter(model, file)
    assert_left_as_the_plain_base(model)


def test_target_modules_given_as_one_string_is_refused_as_it_was_given_not_letter_by_letter():
    with pytest.raises(AdapterError, match=r"^LoRA target_modules must be a list of names of block linears, "
                                           r"not 'attn'$"):
        LoRAConfig(target_modules="attn")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_an_adapter_with_non_finite_weights_is_refused_naming_the_file_and_tensor_and_nothing_is_merged(
        tmp_path, bad, merge_cli):
    write_base_and_adapter(tmp_path)
    file = tmp_path / "ad" / "adapter.safetensors"
    key = "transformer.h.1.mlp.c_fc.lora_B"

    def poison(t):
        t[key] = t[key].clone()
        t[key][3, 1] = bad
    rewrite_adapter(file, poison)
    before = files_under(tmp_path)
    r = merge_cli(tmp_path, tmp_path / "merged")
    assert (r.returncode, r.stderr) == (2, f"error: {file}: {key} holds non-finite values (nan or inf), which "
                                           "merging would spread to every output\n")
    assert files_under(tmp_path) == before
    model = base_model()
    with pytest.raises(AdapterError, match=rf"^{file}: {key} holds non-finite"):
        load_adapter(model, file)
    assert_left_as_the_plain_base(model)
