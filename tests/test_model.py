"""model.py: the GPT, its checkpoints, its fingerprint and GPT-2 (Hugging Face format) interop."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import GPT, GPTConfig, CheckpointError, export_hf, fingerprint, import_hf, load_checkpoint, \
    read_tensors, save_checkpoint, save_tensors  # noqa: E402
from in_process import ctrl_c, run_main  # noqa: E402

MICRO = GPTConfig.preset("micro")  # vocab 512, block 64, 2 layers, 2 heads, 64 wide


def micro_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("micro", **overrides)).eval()


def randomized(model, seed=0, std=0.1):
    """Every parameter random (biases and LayerNorms included), so no convention hides behind a zero or a one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if ("ln_" in name and name.endswith("weight")) else 0.0
            p.copy_(base + std * torch.randn(p.shape, generator=g))
    return model


def tokens(B=2, T=16, vocab=MICRO.vocab_size, seed=0):
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


# ----------------------------------------------------------------------------- forward and loss

def test_logits_have_shape_batch_time_vocab_in_float32():
    logits, loss = micro_model()(tokens(3, 10))
    assert logits.shape == (3, 10, MICRO.vocab_size)
    assert logits.dtype == torch.float32
    assert loss is None


def test_fresh_model_loss_is_about_ln_vocab():
    model = micro_model()
    _, loss = model(tokens(4, 64, seed=1), tokens(4, 64, seed=2))
    assert abs(loss.item() - math.log(MICRO.vocab_size)) < 0.05


def test_targets_minus_one_are_ignored_in_the_loss():
    model = randomized(micro_model())
    x, y = tokens(2, 12, seed=1), tokens(2, 12, seed=2)
    y_masked = y.clone()
    y_masked[0, :5] = -1
    y_masked[1, 7:] = -1
    logits, loss = model(x, y_masked)
    keep = y_masked != -1
    expected = F.cross_entropy(logits[keep], y[keep])
    assert torch.allclose(loss, expected, atol=1e-6)


def test_sequence_longer_than_block_size_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        micro_model()(tokens(1, MICRO.block_size + 1))


# ----------------------------------------------------------------------------- initialization

def test_init_follows_gpt2_with_residual_projections_scaled_by_depth():
    model = micro_model(n_layer=4)
    expected_proj_std = 0.02 / math.sqrt(2 * 4)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert abs(p.std().item() - expected_proj_std) / expected_proj_std < 0.1, name
        elif name.endswith(("c_attn.weight", "c_fc.weight", "wte.weight", "wpe.weight")):
            assert abs(p.std().item() - 0.02) / 0.02 < 0.1, name
        elif "ln_" in name and name.endswith("weight"):
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name


def test_output_head_is_tied_to_token_embedding():
    model = micro_model()
    assert model.lm_head.weight is model.transformer.wte.weight
    assert "lm_head.weight" in model.state_dict()


# ----------------------------------------------------------------------------- generate

def test_greedy_generation_is_deterministic_and_picks_the_argmax():
    model = randomized(micro_model())
    prompt = tokens(2, 5)
    out = model.generate(prompt, 6, temperature=0)
    assert out.shape == (2, 11)
    assert torch.equal(out[:, :5], prompt)
    assert torch.equal(out, model.generate(prompt, 6, temperature=0))
    for t in range(5, 11):
        logits, _ = model(out[:, :t])
        assert torch.equal(out[:, t], logits[:, -1].argmax(-1))


def test_sampling_with_a_seeded_generator_is_reproducible():
    model = randomized(micro_model())
    prompt = tokens(2, 5)
    a = model.generate(prompt, 8, temperature=0.8, top_k=50, generator=torch.Generator().manual_seed(7))
    b = model.generate(prompt, 8, temperature=0.8, top_k=50, generator=torch.Generator().manual_seed(7))
    c = model.generate(prompt, 8, temperature=0.8, top_k=50, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_top_k_one_equals_greedy():
    model = randomized(micro_model())
    prompt = tokens(2, 5)
    greedy = model.generate(prompt, 6, temperature=0)
    top1 = model.generate(prompt, 6, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(top1, greedy)


def test_top_k_samples_only_among_the_k_most_likely_tokens():
    model = randomized(micro_model())
    out = model.generate(tokens(4, 3), 5, temperature=2.0, top_k=3, generator=torch.Generator().manual_seed(0))
    for t in range(3, 8):
        logits, _ = model(out[:, :t])
        top3 = logits[:, -1].topk(3).indices
        assert (top3 == out[:, t:t + 1]).any(dim=1).all()


def test_top_k_zero_samples_from_every_token_as_none_does():
    model = randomized(micro_model())
    prompt = tokens(2, 5)
    off = model.generate(prompt, 6, temperature=1.0, top_k=None, generator=torch.Generator().manual_seed(3))
    zero = model.generate(prompt, 6, temperature=1.0, top_k=0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(zero, off)


@pytest.mark.parametrize("kw, match", [({"top_k": -1}, r"top_k -1: must be >= 0"),
                                       ({"temperature": -0.5}, r"temperature -0\.5: must be >= 0")])
def test_a_negative_top_k_or_temperature_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        micro_model().generate(tokens(1, 3), 2, **kw)


def test_generation_past_block_size_crops_the_context():
    model = randomized(micro_model(block_size=8))
    out = model.generate(tokens(1, 6), 10, temperature=0)
    assert out.shape == (1, 16)
    for t in range(8, 16):  # each token follows from the last block_size tokens before it
        assert out[0, t] == model(out[:, t - 8:t])[0][0, -1].argmax()


# ----------------------------------------------------------------------------- size and FLOPs

def test_num_params_matches_a_hand_count():
    V, T, L, C = MICRO.vocab_size, MICRO.block_size, MICRO.n_layer, MICRO.n_embd
    per_block = (2 * C                     # ln_1
                 + C * 3 * C + 3 * C       # attn.c_attn
                 + C * C + C               # attn.c_proj
                 + 2 * C                   # ln_2
                 + C * 4 * C + 4 * C       # mlp.c_fc
                 + 4 * C * C + C)          # mlp.c_proj
    total = V * C + T * C + L * per_block + 2 * C  # wte (tied head counted once), wpe, blocks, ln_f
    model = micro_model()
    assert model.num_params(non_embedding=False) == total == 136960
    assert model.num_params() == total - T * C


def test_flops_per_token_is_6n_plus_attention_term():
    model = micro_model()
    N, L, H, C, T = model.num_params(), MICRO.n_layer, MICRO.n_head, MICRO.n_embd, MICRO.block_size
    assert model.flops_per_token() == 6 * N + 12 * L * H * (C // H) * T == 6 * 132864 + 12 * 2 * 64 * 64
    assert model.flops_per_token(seq_len=32) == 6 * N + 12 * L * C * 32


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_keeps_weights_config_and_meta(tmp_path):
    model = randomized(micro_model())
    meta = {"tokenizer_hash": "abc123", "mode": "pretrain", "step": 42, "units": ["u1", "u2"]}
    file = save_checkpoint(model, tmp_path / "ckpt", meta)
    assert file == tmp_path / "ckpt" / "model.safetensors"
    loaded, loaded_meta = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config == model.config
    assert_same_tensors(loaded.state_dict(), model.state_dict())
    assert {k: loaded_meta[k] for k in meta} == meta
    assert torch.equal(loaded(tokens())[0], model(tokens())[0])


def test_loaded_checkpoint_keeps_the_head_tied(tmp_path):
    save_checkpoint(randomized(micro_model()), tmp_path, {})
    loaded, _ = load_checkpoint(tmp_path)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight


def test_checkpoint_stores_the_tied_embedding_once(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path, {})
    tensors, header = read_tensors(file)
    assert "lm_head.weight" not in tensors and "transformer.wte.weight" in tensors
    assert header["config"] == MICRO.to_dict()


def test_load_checkpoint_accepts_the_file_itself(tmp_path):
    file = save_checkpoint(randomized(micro_model()), tmp_path, {})
    loaded, _ = load_checkpoint(file)
    assert fingerprint(loaded) == fingerprint(randomized(micro_model()))


def test_fingerprint_is_stable_across_save_and_load(tmp_path):
    model = randomized(micro_model())
    save_checkpoint(model, tmp_path, {})
    loaded, meta = load_checkpoint(tmp_path)
    assert fingerprint(loaded) == fingerprint(model) == meta["fingerprint"]
    assert len(fingerprint(model)) == 64


def test_fingerprint_hashes_values_as_float32_not_the_dtype():
    model = randomized(micro_model()).to(torch.bfloat16)
    assert fingerprint(model) == fingerprint(model.float())  # bf16 values are exact in float32


def test_fingerprint_changes_when_one_weight_changes():
    model = randomized(micro_model())
    before = fingerprint(model)
    with torch.no_grad():
        model.transformer.h[1].mlp.c_fc.bias[3] += 1e-6
    assert fingerprint(model) != before


def test_missing_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere"):
        load_checkpoint(tmp_path / "nowhere")


def test_truncated_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path, {})
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path)


def test_garbage_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(tmp_path)


def test_load_without_the_check_skips_the_content_hash_and_loads_the_bytes_as_stored(tmp_path):
    model = randomized(micro_model())
    file = save_checkpoint(model, tmp_path, {})
    data = bytearray(file.read_bytes())
    data[-1] ^= 0x01  # one bit of the last stored weight, as a bad disk would flip it
    file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path)
    loaded, _ = load_checkpoint(tmp_path, check=False)
    before, after = dict(model.named_parameters()), dict(loaded.named_parameters())  # the tied head once
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == 1 and (before[changed[0]] != after[changed[0]]).sum() == 1


def test_safetensors_file_without_config_is_not_a_checkpoint(tmp_path):
    file = tmp_path / "model.safetensors"
    save_file({"x": torch.zeros(2)}, str(file))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(file)


def test_config_mismatch_raises_checkpoint_error_naming_file_and_field(tmp_path):
    save_checkpoint(micro_model(), tmp_path, {})
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*n_layer"):
        load_checkpoint(tmp_path, config=GPTConfig.preset("micro", n_layer=3))
    model, _ = load_checkpoint(tmp_path, config=GPTConfig.preset("micro"))  # the same config is accepted
    assert model.config == MICRO


def test_weight_of_another_shape_raises_checkpoint_error_naming_file_and_key(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path, {})
    tensors, header = read_tensors(file)
    tensors["transformer.wpe.weight"] = torch.zeros(32, MICRO.n_embd)  # the header still says block 64
    save_tensors(tensors, file, header)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*transformer\.wpe\.weight"):
        load_checkpoint(tmp_path)


def test_integer_weights_raise_checkpoint_error_naming_file_and_key(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path, {})
    tensors, header = read_tensors(file)
    tensors["transformer.ln_f.weight"] = tensors["transformer.ln_f.weight"].to(torch.int32)  # would load as 0s and 1s
    save_tensors(tensors, file, header)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: transformer\.ln_f\.weight holds torch\.int32"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("meta, said", [
    (["mode", "pretrain"], "header field 'meta' must be a JSON object, not ['mode', 'pretrain']"),
    ({"tokenizer_hash": 5}, "header field 'tokenizer_hash' must be a string, not 5"),
    ({"tokens": "x"}, "header field 'tokens' must be a number, not 'x'"),
    ({"flops": [1]}, "header field 'flops' must be a number, not [1]"),
    ({"seconds": True}, "header field 'seconds' must be a number, not True"),
    ({"units": ["a", 1]}, "header field 'units' must be a list of unit ids, not ['a', 1]")])
def test_a_checkpoint_record_field_of_the_wrong_type_raises_naming_the_file(tmp_path, meta, said):
    file = save_checkpoint(micro_model(), tmp_path, {})
    tensors, header = read_tensors(file)
    save_tensors(tensors, file, dict(header, meta=meta))  # with a valid content hash: only the field is wrong
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path)
    assert str(e.value) == f"{file}: {said}"


def test_missing_weight_raises_checkpoint_error_naming_the_file(tmp_path):
    file = save_checkpoint(micro_model(), tmp_path, {})
    tensors, header = read_tensors(file)
    del tensors["transformer.ln_f.bias"]
    save_tensors(tensors, file, header)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*ln_f\.bias"):
        load_checkpoint(tmp_path)


def test_save_tensors_writes_a_file_safetensors_itself_reads_for_every_dtype(tmp_path):
    tensors = {"f32": torch.randn(3, 5), "bf16": torch.randn(7).bfloat16(), "f16": torch.randn(2, 3).half(),
               "f64": torch.randn(4, dtype=torch.float64), "i64": torch.arange(5), "i8": torch.arange(3, dtype=torch.int8),
               "bool": torch.tensor([True, False, True]), "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 4)}
    save_tensors(tensors, tmp_path / "t.safetensors", {"note": ["é", 1]})
    back = load_file(str(tmp_path / "t.safetensors"))
    assert back.keys() == tensors.keys()
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
    assert read_tensors(tmp_path / "t.safetensors")[1] == {"note": ["é", 1]}


def test_the_same_weights_and_meta_give_the_same_file_bytes(tmp_path):
    model = randomized(micro_model())
    meta = {"mode": "pretrain", "units": ["u1"], "step": 3, "tokenizer_hash": "abc"}
    a, b = save_checkpoint(model, tmp_path / "a", meta), save_checkpoint(model, tmp_path / "b", meta)
    assert a.read_bytes() == b.read_bytes()


def test_checkpoint_errors_are_value_errors():
    assert issubclass(CheckpointError, ValueError)


def test_a_path_is_a_checkpoint_file_only_when_it_ends_in_safetensors(tmp_path):
    model = randomized(micro_model())
    assert save_checkpoint(model, tmp_path / "merged.v1", {}) == tmp_path / "merged.v1" / "model.safetensors"
    assert save_checkpoint(model, tmp_path / "one.safetensors", {}) == tmp_path / "one.safetensors"
    for path in (tmp_path / "merged.v1", tmp_path / "one.safetensors"):
        assert fingerprint(load_checkpoint(path)[0]) == fingerprint(model)


def test_cli_export_of_missing_checkpoint_exits_2_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, "model.py", "--export-hf", str(tmp_path / "MISSING"),
                        "--out", str(tmp_path / "X")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "MISSING" in lines[0]
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize("bad, says", [
    (dict(n_head=5), "n_embd 384 is not a multiple of n_head 5"),
    (dict(n_head=0), "n_head must be a whole number >= 1, not 0"),
    (dict(vocab_size="64"), "vocab_size must be a whole number >= 1, not '64'"),
    (dict(vocab_size=-1), "vocab_size must be a whole number >= 1, not -1"),
    (dict(n_layer=True), "n_layer must be a whole number >= 1, not True"),
    (dict(block_size=64.0), "block_size must be a whole number >= 1, not 64.0"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), not 1.0"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\), not -0.1"),
    (dict(bias="no"), "bias must be true or false, not 'no'")])
def test_a_model_config_that_cannot_be_built_is_a_value_error_naming_the_field(bad, says):
    with pytest.raises(ValueError, match=f"^model config: {says}$"):
        GPTConfig(**bad)


@pytest.mark.parametrize("config, says", [([], "model config must be a JSON object, not list"),
                                          (dict(MICRO.to_dict(), n_head=3), "n_embd 64 is not a multiple of n_head 3"),
                                          (dict(MICRO.to_dict(), n_embd=None), "n_embd must be a whole number")])
def test_a_checkpoint_whose_header_config_is_no_config_is_a_checkpoint_error_naming_the_file(tmp_path, config, says):
    file = save_checkpoint(micro_model(), tmp_path)
    tensors, header = read_tensors(file)
    save_tensors(tensors, file, dict(header, config=config))
    with pytest.raises(CheckpointError, match=rf"^{file}: bad model config in its header: (model config: )?{says}"):
        load_checkpoint(tmp_path)


def test_cli_with_a_model_that_cannot_be_built_exits_2_with_one_line():
    r = subprocess.run([sys.executable, "model.py", "--preset", "micro", "--vocab-size", "-1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == "error: model config: vocab_size must be a whole number >= 1, not -1\n"


@pytest.fixture
def cli(capsys):
    """model.py's command line in this process (no interpreter to start): its exit status and what it printed."""
    import model
    return lambda *args: run_main(model.main, args, capsys)


@pytest.mark.parametrize("convert, out", [("--export-hf", "dir"), ("--import-hf", "dir"), ("--import-hf", "file")])
def test_cli_conversion_into_its_own_input_is_refused_and_leaves_it_as_it_was(tmp_path, convert, out, cli):
    src = tmp_path / "src"
    if convert == "--export-hf":
        file = save_checkpoint(randomized(micro_model()), src)
    else:
        file = export_hf(randomized(micro_model()), src) / "model.safetensors"
    before = sorted((f.name, f.read_bytes()) for f in src.iterdir())
    r = cli(convert, src, "--out", src if out == "dir" else file)
    assert r.returncode == 2
    assert r.stderr == f"error: {file}: is the input it would be made from, which writing it would destroy; " \
                       "write to another directory\n"
    assert sorted((f.name, f.read_bytes()) for f in src.iterdir()) == before


@pytest.mark.parametrize("convert", ["--export-hf", "--import-hf"])
@pytest.mark.parametrize("below", ["", "x"])
def test_cli_out_that_names_an_existing_file_exits_2_with_one_line(tmp_path, convert, below, cli):
    src = tmp_path / "src"
    if convert == "--export-hf":
        save_checkpoint(micro_model(), src)
    else:
        export_hf(micro_model(), src)
    (tmp_path / "afile").write_text("mine")
    out = tmp_path / "afile" / below
    r = cli(convert, src, "--out", out)
    assert r.returncode == 2
    assert r.stderr == f"error: {tmp_path / 'afile'}: is a file, not a directory, so " \
                       f"{out / 'model.safetensors'} cannot be made there\n"
    assert (tmp_path / "afile").read_text() == "mine"


def everything_under(d):
    """Every path under d, with a file's bytes (None for a directory): a refusal leaves it as it was."""
    return sorted((str(f.relative_to(d)), f.read_bytes() if f.is_file() else None) for f in d.rglob("*"))


def read_nothing(*args, **kwargs):
    raise AssertionError("the checkpoint was read before the refusal")


@pytest.mark.parametrize("name, existing", [("hf.safetensors", False), ("hf.bin", True), ("hf.JSON", False)])
def test_cli_export_hf_into_an_out_named_as_a_file_is_refused_before_the_checkpoint_is_read(tmp_path, name, existing,
                                                                                            cli, monkeypatch):
    """The export writes a directory: one named hf.safetensors would be taken for the weights file by anyone
    reading it (load_checkpoint included)."""
    import model
    save_checkpoint(micro_model(), tmp_path / "ckpt")
    out = tmp_path / name
    if existing:
        out.write_text("mine")
    before = everything_under(tmp_path)
    monkeypatch.setattr(model, "load_checkpoint", read_nothing)
    r = cli("--export-hf", tmp_path / "ckpt", "--out", out)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {out}: ends in {out.suffix}, as a file's name does, but --export-hf writes a " \
                       "directory (its model.safetensors and config.json); give a directory's path\n"
    assert everything_under(tmp_path) == before
    with pytest.raises(CheckpointError, match=rf"^{out}: ends in {out.suffix}, as a file's name does, but export_hf "
                                              r"writes a directory \(its model\.safetensors and config\.json\)"):
        export_hf(micro_model(), out)
    assert everything_under(tmp_path) == before


def test_cli_export_hf_into_a_directory_with_a_dot_in_its_name_writes_it(tmp_path, cli):
    save_checkpoint(micro_model(), tmp_path / "ckpt")
    r = cli("--export-hf", tmp_path / "ckpt", "--out", tmp_path / "hf.v1")
    assert (r.returncode, r.stdout) == (0, f"wrote {tmp_path / 'hf.v1'}\n")
    assert sorted(f.name for f in (tmp_path / "hf.v1").iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("convert", ["--export-hf", "--import-hf"])
def test_cli_a_plain_file_for_the_input_is_named_a_file_not_a_missing_checkpoint(tmp_path, convert, cli):
    # it was "base.pt/model.safetensors: no such checkpoint", as if the file were not there
    (tmp_path / "base.pt").write_text("mine")
    r = cli(convert, tmp_path / "base.pt", "--out", tmp_path / "out")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / 'base.pt'}: is a file, not a checkpoint directory; give the checkpoint's " \
                       "directory or its model.safetensors\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["base.pt"]
    for read in (load_checkpoint, import_hf):
        with pytest.raises(CheckpointError, match=r"base\.pt: is a file, not a checkpoint directory"):
            read(tmp_path / "base.pt")


@pytest.mark.parametrize("name", ["ckpt.json", "ckpt.pt"])
def test_cli_import_hf_into_an_out_named_as_a_file_but_not_safetensors_is_refused(tmp_path, name, cli):
    """--out is a directory, or the .safetensors checkpoint file itself: ckpt.json made a directory would
    pass for a file, as --export-hf's would."""
    export_hf(micro_model(), tmp_path / "hf")
    r = cli("--import-hf", tmp_path / "hf", "--out", tmp_path / name)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / name}: ends in {Path(name).suffix}, as a file's name does, but " \
                       "--import-hf writes a directory (its model.safetensors); give a directory's path\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["hf"]
    r = cli("--import-hf", tmp_path / "hf", "--out", tmp_path / "ckpt.safetensors")
    assert (r.returncode, r.stdout) == (0, f"wrote {tmp_path / 'ckpt.safetensors'}\n")


@pytest.mark.parametrize("args, says", [
    (["--import-hf", "hf", "--export-hf", "ckpt"], "--import-hf and --export-hf: give one of them (each writes --out)"),
    (["--export-hf", "ckpt", "--vocab-size", "512"], "--vocab-size goes with --preset (a size to print)"),
    (["--import-hf", "hf", "--preset", "smoke"], "--preset names a model to print"),
    (["--preset", "micro"], "--out goes with --import-hf or --export-hf (printing a preset writes nothing)")])
def test_cli_refuses_flags_a_conversion_would_drop_and_writes_nothing(tmp_path, cli, args, says):
    save_checkpoint(micro_model(), tmp_path / "ckpt")
    export_hf(micro_model(), tmp_path / "hf")
    r = cli(*(str(tmp_path / a) if a in ("hf", "ckpt") else a for a in args), "--out", tmp_path / "out")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(f"model.py: error: {says}")  # argparse's
    assert not (tmp_path / "out").exists()


def test_an_imported_gpt2_checkpoint_carries_gpt2_s_tokenizer_and_is_refused_on_another_corpus(tmp_path, cli):
    """GPT-2's weights read GPT-2's tokens: scored on a corpus with its own BPE they would only seem to fit
    (its 50257 rows hold any smaller vocabulary)."""
    import bpe
    import evaluate
    model = randomized(micro_model())
    export_hf(model, tmp_path / "hf")
    assert cli("--import-hf", tmp_path / "hf", "--out", tmp_path / "ours").returncode == 0
    gpt2_hash = bpe.tokenizer_hash({"type": "gpt2"}, b"")
    assert load_checkpoint(tmp_path / "ours")[1]["tokenizer_hash"] == gpt2_hash
    assert evaluate.load_model(tmp_path / "ours", tokenizer_hash=gpt2_hash)[0].config == model.config
    with pytest.raises(evaluate.EvalError, match=rf"ours: checkpoint was trained with tokenizer {gpt2_hash[:12]}, "
                                                 "the corpus has 0123456789ab"):
        evaluate.load_model(tmp_path / "ours", tokenizer_hash="0123456789ab" * 5)


def test_an_exported_checkpoint_imported_again_reads_its_own_corpus_s_tokenizer(tmp_path, cli):
    """export_hf names the checkpoint's tokenizer in config.json (transformers keeps the entry), so the
    round trip is exact in what the weights read as well as in the weights."""
    import evaluate
    ours = "0123456789ab" * 5
    model = randomized(micro_model())
    save_checkpoint(model, tmp_path / "ckpt", {"tokenizer_hash": ours})
    assert cli("--export-hf", tmp_path / "ckpt", "--out", tmp_path / "hf").returncode == 0
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["accrete_tokenizer_hash"] == ours
    assert cli("--import-hf", tmp_path / "hf", "--out", tmp_path / "back").returncode == 0
    assert load_checkpoint(tmp_path / "back")[1]["tokenizer_hash"] == ours
    back = evaluate.load_model(tmp_path / "back", tokenizer_hash=ours)[0]
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values()))
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps(dict(cfg, accrete_tokenizer_hash=7)))
    r = cli("--import-hf", tmp_path / "hf", "--out", tmp_path / "again")
    assert (r.returncode, r.stderr) == (2, f"error: {tmp_path / 'hf' / 'config.json'}: accrete_tokenizer_hash is 7, "
                                           "not the hash of a tokenizer (a string)\n")
    assert not (tmp_path / "again").exists()


def test_save_checkpoint_where_a_directory_or_file_stands_in_the_way_is_a_checkpoint_error(tmp_path):
    (tmp_path / "d.safetensors").mkdir()
    with pytest.raises(CheckpointError, match=r"d\.safetensors: is a directory, where the output file would be"):
        save_checkpoint(micro_model(), tmp_path / "d.safetensors")
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(CheckpointError, match=r"afile: is a file, not a directory, so .*afile/x/model\.safetensors"):
        save_checkpoint(micro_model(), tmp_path / "afile" / "x")
    assert (tmp_path / "afile").read_text() == "mine" and not list((tmp_path / "d.safetensors").iterdir())


# ----------------------------------------------------------------------------- GPT-2 (Hugging Face) interop

def gpt2_format_tensors(config, seed=0, prefix="transformer.", buffers=True, lm_head=False):
    """Random weights laid out as Hugging Face's GPT-2 stores them: Conv1D weights are (in, out),
    and the causal-mask buffers attn.bias (1, 1, n, n) and attn.masked_bias (a scalar) are present."""
    g = torch.Generator().manual_seed(seed)
    C, V, N = config.n_embd, config.vocab_size, config.block_size

    def rnd(*shape, base=0.0):
        return base + 0.1 * torch.randn(shape, generator=g)

    t = {"wte.weight": rnd(V, C), "wpe.weight": rnd(N, C), "ln_f.weight": rnd(C, base=1.0), "ln_f.bias": rnd(C)}
    for i in range(config.n_layer):
        h = f"h.{i}."
        t.update({
            h + "ln_1.weight": rnd(C, base=1.0), h + "ln_1.bias": rnd(C),
            h + "attn.c_attn.weight": rnd(C, 3 * C), h + "attn.c_attn.bias": rnd(3 * C),
            h + "attn.c_proj.weight": rnd(C, C), h + "attn.c_proj.bias": rnd(C),
            h + "ln_2.weight": rnd(C, base=1.0), h + "ln_2.bias": rnd(C),
            h + "mlp.c_fc.weight": rnd(C, 4 * C), h + "mlp.c_fc.bias": rnd(4 * C),
            h + "mlp.c_proj.weight": rnd(4 * C, C), h + "mlp.c_proj.bias": rnd(C),
        })
        if buffers:
            t[h + "attn.bias"] = torch.tril(torch.ones(N, N)).view(1, 1, N, N)
            t[h + "attn.masked_bias"] = torch.tensor(-1e4)
    t = {prefix + k: v for k, v in t.items()}
    if lm_head:  # a tied head stored anyway: equal to wte, in a tensor of its own. Equal by value only:
        # its row 0 holds +0.0 where wte's holds -0.0 (torch.equal calls them equal), so a test can tell
        # which of the two tensors a model was loaded from
        t[prefix + "wte.weight"][0] = -0.0
        t["lm_head.weight"] = t[prefix + "wte.weight"].clone()
        t["lm_head.weight"][0] = 0.0
        assert torch.equal(t["lm_head.weight"], t[prefix + "wte.weight"])
    return t


def write_gpt2_dir(out_dir, config, tensors):
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "activation_function": "gelu_new",
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head,
        "layer_norm_epsilon": 1e-5, "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
    }))
    return out_dir


def reference_gpt2_logits(t, config, idx, prefix="transformer."):
    """GPT-2's forward pass written directly on the raw Hugging Face tensors (Conv1D: x @ W + b)."""
    w = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in t.items()}
    C, nh = config.n_embd, config.n_head
    B, T = idx.shape

    def ln(x, name):
        return F.layer_norm(x, (C,), w[name + ".weight"], w[name + ".bias"], eps=1e-5)

    def conv1d(x, name):
        return x @ w[name + ".weight"] + w[name + ".bias"]

    x = w["wte.weight"][idx] + w["wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(config.n_layer):
        q, k, v = conv1d(ln(x, f"h.{i}.ln_1"), f"h.{i}.attn.c_attn").split(C, dim=2)
        q, k, v = (z.view(B, T, nh, C // nh).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // nh)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + conv1d(y, f"h.{i}.attn.c_proj")
        hidden = F.gelu(conv1d(ln(x, f"h.{i}.ln_2"), f"h.{i}.mlp.c_fc"), approximate="tanh")
        x = x + conv1d(hidden, f"h.{i}.mlp.c_proj")
    return ln(x, "ln_f") @ w["wte.weight"].t()


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_export_then_import_hf_gives_identical_tensors(tmp_path, dropout):
    model = randomized(micro_model(dropout=dropout))
    export_hf(model, tmp_path / "hf")
    back = import_hf(tmp_path / "hf")
    assert back.config == model.config
    assert_same_tensors(back.state_dict(), model.state_dict())
    assert back.lm_head.weight is back.transformer.wte.weight


def test_export_hf_writes_gpt2_layout_and_config(tmp_path):
    model = randomized(micro_model())
    export_hf(model, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as f:
        assert f.metadata().get("format") == "pt"  # transformers refuses the file without it
        c_attn = f.get_tensor("transformer.h.0.attn.c_attn.weight")
    assert c_attn.shape == (MICRO.n_embd, 3 * MICRO.n_embd)  # Conv1D: (in, out)
    assert torch.equal(c_attn, model.transformer.h[0].attn.c_attn.weight.t())
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["activation_function"] == "gelu_new"
    assert (cfg["vocab_size"], cfg["n_positions"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"]) == \
        (MICRO.vocab_size, MICRO.block_size, MICRO.n_layer, MICRO.n_head, MICRO.n_embd)


def test_an_export_hf_stopped_before_its_config_leaves_no_earlier_config_beside_its_weights(tmp_path, monkeypatch):
    import model as M
    export_hf(randomized(micro_model()), tmp_path)
    monkeypatch.setattr(M, "atomic_write_text", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        export_hf(randomized(micro_model(), seed=1), tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not (tmp_path / "config.json").exists()


def test_export_hf_refuses_a_model_without_biases(tmp_path):
    with pytest.raises(CheckpointError, match="bias"):
        export_hf(micro_model(bias=False), tmp_path)


@pytest.mark.parametrize("prefix", ["transformer.", ""])
@pytest.mark.parametrize("lm_head", [False, True])
def test_import_hf_reads_gpt2_checkpoints_with_mask_buffers(tmp_path, prefix, lm_head):
    t = gpt2_format_tensors(MICRO, seed=3, prefix=prefix, buffers=True, lm_head=lm_head)
    model = import_hf(write_gpt2_dir(tmp_path / "gpt2", MICRO, t))
    assert model.config == MICRO
    assert torch.equal(model.transformer.h[1].mlp.c_fc.weight, t[prefix + "h.1.mlp.c_fc.weight"].t())
    assert torch.equal(model.transformer.h[0].attn.c_attn.bias, t[prefix + "h.0.attn.c_attn.bias"])
    assert model.lm_head.weight is model.transformer.wte.weight
    # the head is tied: the model computes with the file's wte, and a stored lm_head (refused unless equal to
    # wte) is only checked, never loaded. Bit for bit: wte's -0.0s, not the stored head's +0.0s.
    assert torch.equal(model.transformer.wte.weight, t[prefix + "wte.weight"])
    if lm_head:
        assert torch.signbit(model.lm_head.weight[0]).all() and not torch.signbit(t["lm_head.weight"][0]).any()


def test_import_hf_refuses_an_untied_head_naming_the_file(tmp_path):
    t = gpt2_format_tensors(MICRO, lm_head=True)
    t["lm_head.weight"][5, 7] += 0.01  # one weight apart from wte: dropped, it would change the logits
    write_gpt2_dir(tmp_path, MICRO, t)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: lm_head\.weight differs from wte \(an untied"):
        import_hf(tmp_path)


def test_import_hf_refuses_a_config_that_unties_the_head(tmp_path):
    write_gpt2_dir(tmp_path, MICRO, gpt2_format_tensors(MICRO))
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(cfg, tie_word_embeddings=False)))
    with pytest.raises(CheckpointError, match=r"config\.json: tie_word_embeddings is false"):
        import_hf(tmp_path)


def test_imported_gpt2_gives_the_logits_of_a_reference_forward_on_the_raw_tensors(tmp_path):
    t = gpt2_format_tensors(MICRO, seed=4)
    model = import_hf(write_gpt2_dir(tmp_path / "gpt2", MICRO, t))
    idx = tokens(2, 20, seed=5)
    ours, _ = model(idx)
    reference = reference_gpt2_logits(t, MICRO, idx)
    assert (ours - reference).abs().max().item() < 1e-4


def test_import_hf_without_config_json_raises_checkpoint_error(tmp_path):
    write_gpt2_dir(tmp_path, MICRO, gpt2_format_tensors(MICRO))
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        import_hf(tmp_path)


def test_import_hf_of_a_config_that_does_not_fit_the_weights_raises_checkpoint_error(tmp_path):
    write_gpt2_dir(tmp_path, MICRO, gpt2_format_tensors(GPTConfig.preset("micro", n_layer=1)))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        import_hf(tmp_path)


def test_transformers_gpt2_loads_the_export_and_gives_our_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = randomized(micro_model())
    export_hf(model, tmp_path / "hf")
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path / "hf")).eval()
    idx = tokens(2, 24, seed=6)
    with torch.no_grad():
        theirs = hf(idx).logits
        ours, _ = model(idx)
    diff = (theirs - ours).abs().max().item()
    print(f"transformers GPT2LMHeadModel vs ours: max abs diff {diff:.3g}")
    assert diff < 1e-4


def test_import_hf_with_an_incomplete_config_is_a_checkpoint_error(tmp_path):
    export_hf(GPT(GPTConfig.preset("micro")), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    del cfg["n_positions"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="config.json: missing field 'n_positions'"):
        import_hf(tmp_path)


def gpt2_dir_with(d, **fields):
    """A GPT-2 directory of MICRO's shape whose config.json has these fields set (None: left out)."""
    write_gpt2_dir(d, MICRO, gpt2_format_tensors(MICRO))
    cfg = dict(json.loads((d / "config.json").read_text()), **fields)
    (d / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if v is not None}))
    return d


@pytest.mark.parametrize("field, value", [("layer_norm_epsilon", 1e-6), ("scale_attn_weights", False),
                                          ("scale_attn_by_inverse_layer_idx", True), ("activation_function", "relu")])
def test_import_hf_refuses_a_config_field_that_changes_what_the_model_computes(tmp_path, field, value):
    with pytest.raises(CheckpointError, match=rf"^{tmp_path / 'config.json'}: {field} is {json.dumps(value)}, "
                                              "which accrete's GPT does not compute"):
        import_hf(gpt2_dir_with(tmp_path, **{field: value}))


def test_import_hf_accepts_what_changes_only_the_precision_or_repeats_gpt2s_values(tmp_path):
    model = import_hf(gpt2_dir_with(tmp_path, reorder_and_upcast_attn=True, scale_attn_weights=True,
                                    scale_attn_by_inverse_layer_idx=False, activation_function="gelu_pytorch_tanh"))
    assert model.config == MICRO


def test_import_hf_takes_the_dropout_of_the_config_and_hugging_faces_default_without_one(tmp_path):
    assert import_hf(gpt2_dir_with(tmp_path / "a", resid_pdrop=0.2, embd_pdrop=0.2, attn_pdrop=0.2)).config.dropout == 0.2
    assert import_hf(gpt2_dir_with(tmp_path / "b", resid_pdrop=None, embd_pdrop=None, attn_pdrop=None)).config.dropout == 0.1


def test_import_hf_refuses_three_dropouts_that_differ(tmp_path):
    with pytest.raises(CheckpointError, match=r"config\.json: resid_pdrop 0\.1, embd_pdrop 0\.0, attn_pdrop 0\.1 differ; "
                                              "accrete's GPT has one dropout for all three"):
        import_hf(gpt2_dir_with(tmp_path, resid_pdrop=0.1, embd_pdrop=0.0, attn_pdrop=0.1))
    # NaN is unequal to itself: named as no probability, not as three dropouts that differ
    nan = dict(resid_pdrop=float("nan"), embd_pdrop=float("nan"), attn_pdrop=float("nan"))
    with pytest.raises(CheckpointError, match=r"config\.json: resid_pdrop is NaN, not a dropout probability"):
        import_hf(gpt2_dir_with(tmp_path / "nan", **nan))
    with pytest.raises(CheckpointError, match=r"config\.json: embd_pdrop is \"0\.1\", not a dropout probability"):
        import_hf(gpt2_dir_with(tmp_path / "text", embd_pdrop="0.1"))


@pytest.mark.parametrize("fields, says", [
    (dict(n_head=3), "model config: n_embd 64 is not a multiple of n_head 3"),
    (dict(vocab_size="512"), "model config: vocab_size must be a whole number >= 1, not '512'"),
    (dict(n_layer=0), "model config: n_layer must be a whole number >= 1, not 0"),
    (dict(resid_pdrop=1.0, embd_pdrop=1.0, attn_pdrop=1.0), r"model config: dropout must be in \[0, 1\), not 1.0")])
def test_import_hf_of_a_config_that_cannot_be_built_is_a_checkpoint_error_naming_it(tmp_path, fields, says):
    with pytest.raises(CheckpointError, match=rf"^{tmp_path / 'config.json'}: {says}$"):
        import_hf(gpt2_dir_with(tmp_path, **fields))


def test_import_hf_of_a_config_that_is_no_json_object_is_a_checkpoint_error(tmp_path):
    write_gpt2_dir(tmp_path, MICRO, gpt2_format_tensors(MICRO))
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(CheckpointError, match=r"config\.json: holds a JSON list, not the object of a GPT-2 config"):
        import_hf(tmp_path)


# ----------------------------------------------------------------------------- the command line's bad input

@pytest.mark.parametrize("blocked", ["config.json", "model.safetensors"])
def test_cli_export_hf_with_a_directory_where_one_of_its_files_goes_writes_neither(tmp_path, blocked, cli):
    save_checkpoint(micro_model(), tmp_path / "ckpt")
    (tmp_path / "hf" / blocked).mkdir(parents=True)
    r = cli("--export-hf", tmp_path / "ckpt", "--out", tmp_path / "hf")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / 'hf' / blocked}: is a directory, where the output file would be written\n"
    assert [f.name for f in (tmp_path / "hf").iterdir()] == [blocked]  # no file beside it, no temporary
    with pytest.raises(CheckpointError, match=f"{blocked}: is a directory"):  # export_hf itself checks first
        export_hf(micro_model(), tmp_path / "hf")
    assert [f.name for f in (tmp_path / "hf").iterdir()] == [blocked]


@pytest.mark.parametrize("encode, byte, offset", [(lambda text: text.encode("utf-16"), 0xff, 0),
                                                  (lambda text: text.replace("gpt2", "gpt\xe9").encode("latin-1"),
                                                   0xe9, None)])
def test_cli_import_hf_of_a_config_that_is_not_utf8_names_the_file_the_byte_and_its_offset(tmp_path, encode, byte,
                                                                                           offset, cli):
    cfg = gpt2_dir_with(tmp_path / "hf") / "config.json"
    text = cfg.read_text()
    cfg.write_bytes(encode(text))
    offset = text.index("gpt2") + 3 if offset is None else offset
    r = cli("--import-hf", tmp_path / "hf", "--out", tmp_path / "ours")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {cfg}: invalid UTF-8 (byte 0x{byte:02x} at offset {offset}); save it as UTF-8\n"
    assert not (tmp_path / "ours").exists()


def refuse_to_build(monkeypatch):
    """This machine with 8 GiB of memory, and no GPT built: a test of a refusal never allocates a huge model."""
    import model
    monkeypatch.setattr(model, "machine_memory", lambda: 8 * 2 ** 30)

    def built(config):
        raise AssertionError(f"a model of {config} was built")
    monkeypatch.setattr(model, "GPT", built)


TOO_BIG = "a model of vocab_size 100000000000, block_size 64, n_layer 2 and n_embd 64 has 6,400,000,102,400 " \
          "parameters at least, whose float32 weights take 23841.9 GiB, more than the 8.0 GiB of memory of this machine"


def test_cli_import_hf_of_a_model_too_big_for_memory_is_refused_before_it_is_built(tmp_path, cli, monkeypatch):
    gpt2_dir_with(tmp_path / "hf", vocab_size=100_000_000_000)
    refuse_to_build(monkeypatch)
    r = cli("--import-hf", tmp_path / "hf", "--out", tmp_path / "ours")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {tmp_path / 'hf' / 'config.json'}: {TOO_BIG}\n"
    assert not (tmp_path / "ours").exists()


def test_a_checkpoint_whose_header_config_is_too_big_for_memory_is_refused_before_it_is_built(tmp_path, monkeypatch):
    file = save_checkpoint(micro_model(), tmp_path)
    tensors, header = read_tensors(file)
    save_tensors(tensors, file, dict(header, config=dict(MICRO.to_dict(), vocab_size=100_000_000_000)))
    refuse_to_build(monkeypatch)
    with pytest.raises(CheckpointError, match=f"^{file}: {TOO_BIG}$"):
        load_checkpoint(tmp_path)


def test_cli_prints_the_size_of_a_model_too_big_for_memory_without_building_it(cli):
    vocab, small = 100_000_000_000, micro_model()
    more = (vocab - MICRO.vocab_size) * MICRO.n_embd  # the embedding's rows beyond micro's
    total, without_positions = (small.num_params(False) + more) / 1e6, (small.num_params() + more) / 1e6
    r = cli("--preset", "micro", "--vocab-size", vocab)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == f"micro: {GPTConfig.preset('micro', vocab_size=vocab)}\n" \
                       f"parameters: {total:.2f}M ({without_positions:.2f}M without positions); " \
                       f"training FLOPs per token: {(small.flops_per_token() + 6 * more) / 1e6:.1f}M\n"
    r = cli("--preset", "micro", "--vocab-size", 10 ** 17)  # past torch's int64 sizes: not even shapes can be made
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: --vocab-size {10 ** 17}: an embedding of {10 ** 17} x 64 entries is more than a " \
                       "tensor can hold\n"


def test_cli_ctrl_c_ends_in_one_line_and_writes_nothing(tmp_path, cli, monkeypatch):
    import model
    save_checkpoint(micro_model(), tmp_path / "ckpt")

    monkeypatch.setattr(model, "load_checkpoint", ctrl_c)
    try:
        r = cli("--export-hf", tmp_path / "ckpt", "--out", tmp_path / "hf")
    except KeyboardInterrupt:  # caught, or it would stop the whole test session
        pytest.fail("Ctrl-C escaped main(): the command ends in a traceback")
    assert (r.returncode, r.stdout) == (130, "")
    assert r.stderr == "interrupted: each file is written whole or not at all; run the same command again\n"
    assert not (tmp_path / "hf").exists()
