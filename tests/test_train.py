"""train.py: the one loop in its three modes, exact resume after SIGKILL, DDP equivalence, bad input."""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lora
from common import sha256_file
from model import GPT, GPTConfig, load_checkpoint, read_tensors, save_checkpoint, save_tensors
from train import TokenFileStream, TrainConfig, TrainError, arg_parser, lr_at, peak_flops_of, resolve_device, \
    setup_process, train
from in_process import run_main
from unit_files import snapshot, write_unit

ROOT = Path(__file__).resolve().parent.parent
RUN = dict(batch_size=8, log_interval=5, eval_iters=2, quiet=True)  # finetune and lora: the model is the --init's
MICRO = dict(preset="micro", vocab_size=64, block_size=32, **RUN)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    """A small repeating token pattern: easy to learn, so loss must fall fast."""
    d = tmp_path_factory.mktemp("tokens")
    pattern = np.tile(np.arange(40, dtype=np.uint16), 500)
    pattern.tofile(d / "train.bin")
    pattern[:2000].tofile(d / "val.bin")
    return d / "train.bin"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus of one primitive unit with a 300-token BPE: training from it appends to its passport."""
    import curriculum
    d = tmp_path_factory.mktemp("corpus")
    header = {"unit": "prim", "kind": "primitive", "level": 0, "title": "prim", "concepts": [], "requires": [],
              "source": "test", "license": "CC0-1.0"}
    docs = [{"text": f"The {a} is {c}. Q: What color is the {a}? A: The {a} is {c}."}
            for a, c in [("apple", "red"), ("sky", "blue"), ("grass", "green"), ("snow", "white")]] * 30
    (d / "prim.jsonl").write_text("".join(json.dumps(x) + "\n" for x in [header, *docs]))
    curriculum.init(d / "corpus", [d / "prim.jsonl"], vocab_size=300)
    curriculum.add(d / "corpus", [d / "prim.jsonl"], log=lambda m: None)
    return d / "corpus"


def _primitive_and(d, knowledge):
    """A corpus in d of a primitive unit and the knowledge unit files `knowledge` writes into d."""
    import curriculum
    header = {"unit": "prim", "kind": "primitive", "level": 0, "title": "prim", "concepts": [], "requires": [],
              "source": "test", "license": "CC0-1.0"}
    docs = [{"text": f"The {a} is {c}."} for a, c in [("apple", "red"), ("sky", "blue"), ("snow", "white")]] * 30
    (d / "prim.jsonl").write_text("".join(json.dumps(x) + "\n" for x in [header, *docs]))
    files = [d / "prim.jsonl", *knowledge(d)]
    curriculum.init(d / "corpus", files, vocab_size=300)
    curriculum.add(d / "corpus", files, log=lambda m: None)
    return d / "corpus"


@pytest.fixture(scope="module")
def unit_corpus(tmp_path_factory):
    """A corpus of primitive text and one knowledge unit, "atoms": what a unit's adapter trains on."""
    return _primitive_and(tmp_path_factory.mktemp("unit_corpus"), lambda d: [write_unit(d, "atoms", level=1)])


@pytest.fixture(scope="module")
def levels_corpus(tmp_path_factory):
    """Primitive text and two knowledge units on two levels, "early" (0) and "late" (1): a curriculum."""
    return _primitive_and(tmp_path_factory.mktemp("levels_corpus"),
                          lambda d: [write_unit(d, "early", level=0, n_docs=40),
                                     write_unit(d, "late", level=1, n_docs=40)])


@pytest.fixture(scope="module")
def lonely_corpus(tmp_path_factory):
    """Primitive text and "lonely", a knowledge unit of one document: all of it trains, none is held out."""
    import curriculum
    d = _primitive_and(tmp_path_factory.mktemp("lonely_corpus"), lambda d: [write_unit(d, "lonely", n_docs=1)])
    corpus = curriculum.Corpus(d)
    assert corpus.units["lonely"]["val_tokens"] == 0 < corpus.units["lonely"]["tokens"]
    return d


# MICRO's parameters as nanoGPT counts them for FLOPs (position embeddings left out): the tied token
# embedding, two blocks (two LayerNorms, c_attn, c_proj, c_fc, mlp.c_proj) and the final LayerNorm
MICRO_N = 64 * 64 + 2 * (2 * 128 + (64 * 192 + 192) + (64 * 64 + 64) + (64 * 256 + 256) + (256 * 64 + 64)) + 128
MICRO_ATTN = 12 * 2 * 2 * 32 * 32  # 12 * n_layer * n_head * head size * T
MICRO_LORA = 2 * 8 * ((64 + 192) + (64 + 64) + (64 + 256) + (256 + 64))  # r=8 on all four targets, two blocks


def run(*args, env=None, check=True):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, check=check)


DIES_AT = """
import inspect, os, signal, sys
# a shell's background job starts with Ctrl-C ignored, which Python keeps: the SIGINT sent below must not be
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {root!r})
sys.argv = {argv!r}
import {module}
real, matched = {module}.{function}, 0

def dying(*args, **kwargs):
    global matched
    where = dict(inspect.signature(real).bind(*args, **kwargs).arguments, caller=sys._getframe(1).f_code.co_name)
    matched += bool(eval({when!r}, globals(), where))
    if matched == {nth} and not {after}:
        os.kill(os.getpid(), {sig})
    result = real(*args, **kwargs)
    if matched == {nth} and {after}:
        os.kill(os.getpid(), {sig})
    return result

{module}.{function} = dying
import {script}
{script}.main()
"""


def killed_at(script, args, target, when, nth=1, after=False, timeout=300, sig=signal.SIGKILL):
    """Run `python SCRIPT.py ARGS...` from the repository root as a real process that SIGKILLs itself
    (or sends itself sig: SIGINT is a Ctrl-C) at an exact point: at the nth call of `target`
    ("module.function") whose arguments (and `caller`, the calling function's name) make the expression
    `when` true, before that call runs or, with after, once it has returned -> the completed process
    (its stderr captured), whose returncode is -SIGKILL where it got there. Unlike a kill from outside
    once a file appears, where it dies does not hang on how fast the machine is."""
    module, function = target.split(".")
    code = DIES_AT.format(root=str(ROOT), argv=[str(ROOT / script), *map(str, args)], module=module,
                          function=function, when=when, nth=nth, after=after, script=Path(script).stem, sig=int(sig))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


@pytest.fixture
def cli(capsys):
    """train.py's command line in this process (no interpreter to start), as run() gives its result."""
    import train as T
    return lambda *args: run_main(T.main, args, capsys)


@pytest.fixture
def lora_cli(capsys):
    """lora.py's command line in this process."""
    return lambda *args: run_main(lora.main, args, capsys)


def max_diff(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k] - sb[k]).abs().max().item() for k in sa)


def test_pretrain_loss_falls_on_a_repeating_pattern(tokens, tmp_path):
    r = train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path), max_steps=40, lr=3e-3,
                          warmup=5, **MICRO))
    assert r.steps == 40 and r.tokens == 40 * 8 * 32
    assert r.train_loss < 1.0 < np.log(64)  # from ln(64) = 4.16 at init
    assert r.val_loss < 1.0
    model, meta = load_checkpoint(r.checkpoint)
    assert meta["mode"] == "pretrain" and meta["step"] == 40 and meta["tokens"] == r.tokens
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [5, 10, 15, 20, 25, 30, 35, 40]


def _base(tmp_path):
    """A fresh random micro model saved as a checkpoint: the start for finetune and lora."""
    torch.manual_seed(0)
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=64, block_size=32)), tmp_path / "base", {})
    return tmp_path / "base"


def test_finetune_loss_falls_and_records_the_base_fingerprint(tokens, tmp_path):
    base = _base(tmp_path)
    r = train(TrainConfig(mode="finetune", init=str(base), data=str(tokens), out_dir=str(tmp_path / "ft"),
                          max_steps=40, lr=3e-3, warmup=5, **RUN))
    assert r.train_loss < 1.0
    _, meta = load_checkpoint(r.checkpoint)
    assert meta["base_fingerprint"] == load_checkpoint(base)[1]["fingerprint"]


def test_gpt2_weights_train_on_gpt2_s_tokens_only(corpus, tokens, tmp_path):
    """--init-hf: the outputs carry GPT-2's tokenizer; a corpus with a BPE of its own is refused, though
    its vocabulary fits in GPT-2's rows."""
    from model import export_hf
    from bpe import tokenizer_hash
    torch.manual_seed(0)
    export_hf(GPT(GPTConfig.preset("micro", vocab_size=320, block_size=32)), tmp_path / "hf")
    kw = dict(RUN, mode="finetune", init_hf=str(tmp_path / "hf"), max_steps=2)
    r = train(TrainConfig(data=str(tokens), out_dir=str(tmp_path / "ft"), **kw))  # tokens of no named tokenizer
    gpt2 = tokenizer_hash({"type": "gpt2"}, b"")
    assert load_checkpoint(r.checkpoint)[1]["tokenizer_hash"] == gpt2
    with pytest.raises(TrainError, match=rf"^{tmp_path / 'hf'}: checkpoint was trained with tokenizer {gpt2[:12]}, "
                                         "the data uses"):
        train(TrainConfig(corpus=str(corpus), units="prim", out_dir=str(tmp_path / "ft2"), **kw))
    assert not (tmp_path / "ft2").exists()
    # weights model.py --export-hf wrote from a model of this corpus name its tokenizer: they train on it
    import curriculum
    own = curriculum.Corpus(corpus).tokenizer_hash
    export_hf(GPT(GPTConfig.preset("micro", vocab_size=320, block_size=32)), tmp_path / "ours", own)
    r = train(TrainConfig(corpus=str(corpus), units="prim", out_dir=str(tmp_path / "ft3"),
                          **dict(kw, init_hf=str(tmp_path / "ours"))))
    assert load_checkpoint(r.checkpoint)[1]["tokenizer_hash"] == own


def test_finetune_trains_with_the_dropout_asked_not_the_checkpoint_s(tokens, tmp_path):
    """The base was saved with dropout 0: --dropout 0.5 must reach every dropout of the loaded model."""
    import train as T
    model = T.build_model(TrainConfig(mode="finetune", init=str(_base(tmp_path)), data=str(tokens),
                                      dropout=0.5, **RUN)).model
    x = torch.randint(0, 64, (2, 32))
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])  # dropout masks differ call to call
    assert model.config.dropout == 0.5 and {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.5}
    assert all(b.attn.dropout == 0.5 for b in model.transformer.h)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])


def test_lora_trains_only_the_adapter_and_loss_falls(tokens, tmp_path):
    base = _base(tmp_path)
    r = train(TrainConfig(mode="lora", init=str(base), data=str(tokens), out_dir=str(tmp_path / "lora"),
                          max_steps=60, lr=3e-2, warmup=5, lora_r=8, merge=True, **RUN))
    assert r.train_loss < np.log(64) - 0.5  # frozen random embeddings: the adapter alone must lower the loss
    assert r.adapter.endswith("adapter.safetensors") and r.checkpoint.endswith("model.safetensors")
    assert r.trainable_params == 2 * sum(8 * (i + o) for i, o in ((64, 192), (64, 64), (64, 256), (256, 64)))
    base_model, base_meta = load_checkpoint(base)
    merged, meta = load_checkpoint(r.checkpoint)
    # the merged model is base + adapter; the embedding and LayerNorms were frozen
    assert torch.equal(merged.transformer.wte.weight, base_model.transformer.wte.weight)
    assert meta["mode"] == "merged" and meta["base_fingerprint"] == base_meta["fingerprint"]
    lora.load_adapter(base_model, r.adapter)
    x = torch.randint(0, 64, (2, 32))
    assert (base_model(x)[0] - merged(x)[0]).abs().max() < 1e-5


def test_pretraining_flops_are_tokens_times_6n_plus_attention(tokens, tmp_path):
    r = train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path), max_steps=3, **MICRO))
    assert MICRO_N == 104_192 and r.tokens == 3 * 8 * 32
    assert r.flops == 768 * (6 * 104_192 + 49_152) == 517_865_472
    assert (r.tokens_total, r.flops_total) == (768, 517_865_472)  # from random init: nothing before
    meta = load_checkpoint(r.checkpoint)[1]
    assert (meta["flops"], meta["tokens_total"], meta["flops_total"]) == (517_865_472, 768, 517_865_472)


def test_lora_flops_leave_out_the_frozen_weight_gradients_and_add_to_the_inits_totals(tokens, tmp_path):
    torch.manual_seed(0)
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=64, block_size=32)), tmp_path / "base",
                    {"tokens": 5, "flops": 7, "tokens_total": 9000, "flops_total": 11})
    r = train(TrainConfig(mode="lora", init=str(tmp_path / "base"), data=str(tokens), out_dir=str(tmp_path / "lora"),
                          max_steps=3, merge=True, **RUN))
    # frozen weights: forward and input gradient (4 per parameter); the adapter's: all 6
    per_token = 4 * MICRO_N + 6 * MICRO_LORA + MICRO_ATTN
    assert per_token == 564_224 and r.flops == 768 * 564_224
    assert (r.tokens_total, r.flops_total) == (9000 + 768, 11 + 768 * 564_224)
    header = lora.read_adapter(r.adapter)[1]
    merged = load_checkpoint(r.checkpoint)[1]
    for meta in (header, merged):
        assert (meta["flops"], meta["tokens_total"], meta["flops_total"]) == (r.flops, r.tokens_total, r.flops_total)


def test_totals_fall_back_to_the_init_checkpoints_own_tokens_and_flops(tokens, tmp_path):
    torch.manual_seed(0)
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=64, block_size=32)), tmp_path / "base",
                    {"tokens": 5000, "flops": 7})
    r = train(TrainConfig(mode="finetune", init=str(tmp_path / "base"), data=str(tokens), out_dir=str(tmp_path / "ft"),
                          max_steps=3, **RUN))
    assert (r.tokens, r.flops) == (768, 517_865_472)
    assert (r.tokens_total, r.flops_total) == (5768, 517_865_479)


def test_the_passport_records_each_runs_flops_and_totals(corpus, tmp_path):
    import curriculum
    r = train(TrainConfig(mode="pretrain", corpus=str(corpus), out_dir=str(tmp_path), max_steps=2,
                          **dict(MICRO, vocab_size=300)))
    event = curriculum.Corpus(corpus).passport.events("model_trained")[-1]
    assert event["out_dir"] == str(tmp_path) and r.flops > 0
    assert (event["tokens"], event["flops"], event["tokens_total"], event["flops_total"]) == \
        (r.tokens, r.flops, r.tokens, r.flops)


def test_a_merged_adapter_costs_its_adapter_event_only_in_the_passport(corpus, tmp_path):
    import curriculum
    base = train(TrainConfig(mode="pretrain", corpus=str(corpus), out_dir=str(tmp_path / "base"), max_steps=2,
                             **dict(MICRO, vocab_size=300)))
    r = train(TrainConfig(mode="lora", init=base.out_dir, corpus=str(corpus), out_dir=str(tmp_path / "lora"),
                          max_steps=2, merge=True, **RUN))
    passport = curriculum.Corpus(corpus).passport
    adapter, merged = passport.events("adapter_trained")[-1], passport.events("model_trained")[-1]
    assert (adapter["tokens"], adapter["flops"]) == (r.tokens, r.flops) and r.flops > 0
    assert (merged["mode"], merged["adapter"], merged["tokens"], merged["flops"]) == ("merged", r.adapter, 0, 0)
    assert merged["flops_total"] == adapter["flops_total"] == base.flops + r.flops
    assert sum(e["flops"] for e in passport.events() if e.get("out_dir", "").startswith(str(tmp_path))) == \
        base.flops + r.flops


def test_a_merge_in_training_writes_what_lora_py_writes_and_its_passport_event_names_every_unit(corpus, tmp_path, lora_cli):
    import curriculum
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=300, block_size=32)), tmp_path / "base",
                    {"units": ["old"], "tokens": 40, "flops": 9, "step": 77})
    r = train(TrainConfig(mode="lora", init=str(tmp_path / "base"), corpus=str(corpus), out_dir=str(tmp_path / "lora"),
                          max_steps=2, merge=True, meta={"units": ["new"]}, **RUN))
    lora_py = lora_cli("--checkpoint", tmp_path / "base", "--adapter", r.adapter, "--out", tmp_path / "cli")
    assert lora_py.returncode == 0, lora_py.stderr
    meta = load_checkpoint(r.checkpoint)[1]
    assert meta == load_checkpoint(tmp_path / "cli")[1]  # the same weights, the same header
    assert (meta["units"], meta["step"], meta["tokens"], meta["tokens_total"]) == (["old", "new"], 2, r.tokens,
                                                                                   40 + r.tokens)
    event = curriculum.Corpus(corpus).passport.events("model_trained")[-1]
    assert (event["mode"], event["units"], event["init"], event["adapter"]) == \
        ("merged", ["old", "new"], str(tmp_path / "base"), r.adapter)
    assert (event["tokens"], event["flops"], event["flops_total"]) == (0, 0, 9 + r.flops)
    assert event["checkpoint_sha256"] == sha256_file(r.checkpoint)


def test_a_command_line_adapter_names_its_own_units_and_both_merges_write_one_header(unit_corpus, tmp_path, lora_cli):
    """No meta from the caller (the command line has no flag for it), an init that carries units: the
    adapter holds the unit its selection read, not the init's, so lora.py adds them once."""
    import curriculum
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=300, block_size=32)), tmp_path / "base",
                    {"units": ["old"], "tokens": 40, "flops": 9})
    r = train(TrainConfig(mode="lora", init=str(tmp_path / "base"), corpus=str(unit_corpus), units="atoms",
                          out_dir=str(tmp_path / "lora"), max_steps=2, merge=True, **RUN))
    assert lora.read_adapter(r.adapter)[1]["units"] == ["atoms"]
    lora_py = lora_cli("--checkpoint", tmp_path / "base", "--adapter", r.adapter, "--out", tmp_path / "cli")
    assert lora_py.returncode == 0, lora_py.stderr
    meta = load_checkpoint(r.checkpoint)[1]
    assert meta == load_checkpoint(tmp_path / "cli")[1] and meta["units"] == ["old", "atoms"]
    passport = curriculum.Corpus(unit_corpus).passport
    assert passport.events("adapter_trained")[-1]["units"] == ["atoms"]
    assert passport.events("model_trained")[-1]["units"] == ["old", "atoms"]


def test_a_merge_in_training_keeps_the_base_s_dropout_as_lora_py_does(corpus, tmp_path, lora_cli):
    """--dropout is the adapter's training: the merged model is its base with the adapter folded in."""
    from model import read_tensors
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=300, block_size=32, dropout=0.1)), tmp_path / "base")
    r = train(TrainConfig(mode="lora", init=str(tmp_path / "base"), corpus=str(corpus), out_dir=str(tmp_path / "lora"),
                          max_steps=2, merge=True, dropout=0.3, **RUN))
    lora_py = lora_cli("--checkpoint", tmp_path / "base", "--adapter", r.adapter, "--out", tmp_path / "cli")
    assert lora_py.returncode == 0, lora_py.stderr
    ours, theirs = (read_tensors(f, check=False)[1]["config"] for f in (r.checkpoint, tmp_path / "cli/model.safetensors"))
    assert ours["dropout"] == theirs["dropout"] == 0.1 and ours == theirs
    assert load_checkpoint(r.checkpoint)[0].config.dropout == 0.1


def test_a_command_line_finetune_adds_the_units_it_read_to_its_inits(unit_corpus, tmp_path):
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=300, block_size=32)), tmp_path / "base",
                    {"units": ["old"]})
    cfg = TrainConfig(mode="finetune", init=str(tmp_path / "base"), corpus=str(unit_corpus), max_steps=1,
                      **RUN)
    assert load_checkpoint(train(cfg, out_dir=str(tmp_path / "ft")).checkpoint)[1]["units"] == ["old", "atoms"]
    # the caller's units stand as given (the ladder names all a fine-tune holds)
    given = train(cfg, out_dir=str(tmp_path / "given"), meta={"units": ["atoms"]})
    assert load_checkpoint(given.checkpoint)[1]["units"] == ["atoms"]


def test_snapshots_hold_the_weights_and_compute_at_their_steps(tokens, tmp_path):
    cfg = TrainConfig(mode="pretrain", data=str(tokens), max_steps=5, schedule="constant", warmup=0, dropout=0.1,
                      **MICRO)
    r = train(cfg, out_dir=str(tmp_path / "run"), snapshot_steps=(2, 5))
    short = train(cfg, out_dir=str(tmp_path / "short"), max_steps=2)  # a constant lr: the same first two steps
    snaps = tmp_path / "run" / "snapshots"
    assert sorted(p.name for p in snaps.iterdir()) == ["step-000002", "step-000005"]
    at2, meta = load_checkpoint(snaps / "step-000002")
    assert max_diff(at2, load_checkpoint(short.checkpoint)[0]) == 0.0
    assert max_diff(load_checkpoint(snaps / "step-000005")[0], load_checkpoint(r.checkpoint)[0]) == 0.0
    assert meta["snapshot"] is True and meta["step"] == 2 and meta["tokens"] == meta["tokens_total"] == 512
    assert meta["flops"] == meta["flops_total"] == 512 * (6 * MICRO_N + MICRO_ATTN)


def test_pretrain_takes_the_vocab_size_from_the_token_file_s_meta_json(tmp_path):
    path = tmp_path / "train.bin"
    np.random.default_rng(0).integers(0, 1000, 4096).astype(np.uint16).tofile(path)
    cfg = TrainConfig(mode="pretrain", data=str(path), out_dir=str(tmp_path / "out"), max_steps=1, preset="micro",
                      block_size=32, quiet=True)
    with pytest.raises(TrainError, match="token id 999 is outside the model's vocab of 512"):
        train(cfg)  # the micro preset's 512
    (tmp_path / "meta.json").write_text('{"vocab_size": 1024}')
    assert load_checkpoint(train(cfg).checkpoint)[0].config.vocab_size == 1024


def test_pretrain_takes_the_vocab_size_from_the_corpus_tokenizer(corpus, tmp_path):
    r = train(TrainConfig(mode="pretrain", corpus=str(corpus), units="all", out_dir=str(tmp_path / "out"),
                          max_steps=1, preset="micro", block_size=32, quiet=True))
    assert load_checkpoint(r.checkpoint)[0].config.vocab_size == 300  # the fixture's BPE, not micro's 512


def test_snapshot_steps_beyond_max_steps_are_refused(tmp_path):
    with pytest.raises(TrainError, match=r"--snapshot-steps \[300\]: steps must be whole numbers from 1 to"):
        train(TrainConfig(max_steps=200, snapshot_steps=(100, 300), out_dir=str(tmp_path)))
    assert arg_parser().parse_args(["--snapshot-steps", "50,100,200"]).snapshot_steps == (50, 100, 200)


@pytest.mark.parametrize("field, value", [("log_interval", 0), ("grad_accum", 0), ("batch_size", 0),
                                          ("eval_iters", 0), ("max_steps", -1), ("ckpt_interval", -5)])
def test_a_count_below_its_least_is_refused_before_anything_runs(field, value, tmp_path):
    with pytest.raises(TrainError, match=rf"^--{field.replace('_', '-')} {value}: must be at least"):
        train(TrainConfig(out_dir=str(tmp_path / "out"), **{field: value}))
    assert not (tmp_path / "out").exists()


def test_a_resumed_run_records_each_snapshot_once(corpus, tmp_path):
    import curriculum
    args = ["--mode", "pretrain", "--corpus", corpus, "--preset", "micro", "--vocab-size", 300, "--block-size", 32,
            "--max-steps", 100, "--ckpt-interval", 50, "--snapshot-steps", "10,55", "--quiet"]
    out = tmp_path / "run"
    # killed after its snapshot at step 55 is in the passport, before its next resume state (step 100),
    # as its 78th step starts: the resumed run redoes steps 51-77 and must neither record snapshot 55
    # twice nor lose snapshot 10
    killed = killed_at("train.py", [*args, "--out", out], "train.train_step", "step == 77")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert read_tensors(out / "train_state.safetensors")[1]["step"] == 50
    recorded = [(e.get("step"), Path(e["out_dir"]).name) for e in curriculum.Corpus(corpus).passport.events()
                if e.get("out_dir", "").startswith(str(out))]
    assert recorded == [(10, "step-000010"), (55, "step-000055")]
    train(TrainConfig(mode="pretrain", corpus=str(corpus), out_dir=str(out), max_steps=100, ckpt_interval=50,
                      snapshot_steps=(10, 55), resume=True, **dict(MICRO, vocab_size=300)))
    events = [e for e in curriculum.Corpus(corpus).passport.events("model_trained")
              if e["out_dir"].startswith(str(out))]
    assert [(e.get("snapshot"), e.get("step"), Path(e["out_dir"]).name) for e in events] == \
        [(True, 10, "step-000010"), (True, 55, "step-000055"), (None, 100, "run")]
    assert events[1]["tokens"] == 55 * 8 * 32 and events[2]["tokens"] == 100 * 8 * 32
    for e in events:
        assert sha256_file(e["checkpoint"]) == e["checkpoint_sha256"]


def test_a_snapshot_is_known_by_its_weights_after_its_run_directory_moved(corpus, tmp_path):
    """A moved run's resume redoes a snapshot step under a new path: the passport still holds it."""
    from train import _recorded
    train(TrainConfig(mode="pretrain", corpus=str(corpus), out_dir=str(tmp_path / "a"), max_steps=3,
                      snapshot_steps=(2,), **dict(MICRO, vocab_size=300)))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    snap = tmp_path / "b" / "snapshots" / "step-000002"
    assert _recorded(corpus, snap, 2) and not _recorded(corpus, snap, 3)
    assert not _recorded(corpus, tmp_path / "b" / "snapshots" / "step-000001", 1)
    (snap / "model.safetensors").write_bytes(b"other weights")
    assert not _recorded(corpus, snap, 2)


def test_ema_saves_the_warmed_up_moving_average_of_the_per_step_weights(tokens, tmp_path):
    base = _base(tmp_path)
    # a constant lr and no warmup: a run of k steps takes the same first k steps as a longer one
    cfg = TrainConfig(mode="finetune", init=str(base), data=str(tokens), schedule="constant", warmup=0, lr=3e-3,
                      **RUN)
    weights = [load_checkpoint(base)[0].state_dict()]
    for k in (1, 2, 3):
        weights.append(load_checkpoint(train(cfg, out_dir=str(tmp_path / f"k{k}"), max_steps=k).checkpoint)[0]
                       .state_dict())
    r = train(cfg, out_dir=str(tmp_path / "ema"), max_steps=3, ema=0.2, snapshot_steps=(2,))
    saved = load_checkpoint(r.checkpoint)[0].state_dict()
    at2 = load_checkpoint(tmp_path / "ema" / "snapshots" / "step-000002")[0].state_dict()
    # step t (from 0) decays by min(ema, (1 + t) / (10 + t)): 1/10 and 2/11 (the warmup), then 0.2 (the cap)
    decays = [min(0.2, (1 + t) / (10 + t)) for t in range(3)]
    assert decays == pytest.approx([0.1, 2 / 11, 0.2])
    for name in saved:
        expected = [weights[0][name]]
        for w, decay in zip(weights[1:], decays):
            expected.append(expected[-1] + (1 - decay) * (w[name] - expected[-1]))  # decay ema + (1 - decay) w
        torch.testing.assert_close(saved[name], expected[3], rtol=0, atol=1e-6)  # float32 rounding
        torch.testing.assert_close(at2[name], expected[2], rtol=0, atol=1e-6)
    assert not torch.equal(saved["transformer.h.0.mlp.c_fc.weight"], weights[3]["transformer.h.0.mlp.c_fc.weight"])
    # the average leaves training alone: the resume state holds the step-3 weights
    state = read_tensors(tmp_path / "ema" / "train_state.safetensors")[0]
    assert torch.equal(state["model.transformer.h.0.mlp.c_fc.weight"], weights[3]["transformer.h.0.mlp.c_fc.weight"])


def test_ema_is_carried_across_a_resume(tokens, tmp_path):
    cfg = TrainConfig(mode="pretrain", data=str(tokens), schedule="constant", warmup=0, lr=3e-3, ema=0.8, **MICRO)
    straight = train(cfg, out_dir=str(tmp_path / "straight"), max_steps=4)
    train(cfg, out_dir=str(tmp_path / "resumed"), max_steps=2)
    resumed = train(cfg, out_dir=str(tmp_path / "resumed"), max_steps=4, resume=True)
    assert max_diff(load_checkpoint(straight.checkpoint)[0], load_checkpoint(resumed.checkpoint)[0]) == 0.0
    with pytest.raises(TrainError, match="saved by a run with --ema; resume with the same --ema"):
        train(cfg, out_dir=str(tmp_path / "resumed"), max_steps=5, resume=True, ema=0.0)


def test_lora_with_ema_saves_the_averaged_adapter(tokens, tmp_path):
    base = _base(tmp_path)
    cfg = TrainConfig(mode="lora", init=str(base), data=str(tokens), max_steps=3, lr=3e-2, **RUN)
    plain = lora.read_adapter(train(cfg, out_dir=str(tmp_path / "plain")).adapter)[0]
    averaged = lora.read_adapter(train(cfg, out_dir=str(tmp_path / "ema"), ema=0.5).adapter)[0]
    state = read_tensors(tmp_path / "ema" / "train_state.safetensors")[0]
    name = next(k for k in plain if k.endswith("lora_B"))
    assert torch.equal(state["model." + name], plain[name])  # the same training
    assert averaged[name].abs().sum() < plain[name].abs().sum()  # lora_B starts at zero: the average lags


def test_sigkill_after_a_checkpoint_then_resume_ends_with_the_same_weights(tokens, tmp_path):
    cfg = TrainConfig(mode="pretrain", data=str(tokens), max_steps=50, ckpt_interval=5, lr=3e-3, dropout=0.1, **MICRO)
    straight = train(cfg, out_dir=str(tmp_path / "straight"))
    # killed once its first resume state (step 5) is on disk, two steps later, as its 8th step starts:
    # the steps since are lost and redone, with their data and dropout masks
    args = ["--mode", "pretrain", "--data", tokens, "--preset", "micro", "--vocab-size", 64, "--block-size", 32,
            "--max-steps", 50, "--ckpt-interval", 5, "--lr", 3e-3, "--dropout", 0.1, "--quiet"]
    state = tmp_path / "resumed" / "train_state.safetensors"
    killed = killed_at("train.py", [*args, "--out", tmp_path / "resumed"], "train.train_step", "step == 7")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    assert read_tensors(state)[1]["step"] == 5
    resumed = train(cfg, out_dir=str(tmp_path / "resumed"), resume=True)
    a, meta_a = load_checkpoint(straight.checkpoint)
    b, meta_b = load_checkpoint(resumed.checkpoint)
    assert max_diff(a, b) == 0.0
    assert meta_a["tokens"] == meta_b["tokens"] == 50 * 8 * 32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_resumed_cuda_run_with_dropout_draws_the_same_masks(tokens, tmp_path):
    cfg = TrainConfig(mode="pretrain", data=str(tokens), max_steps=20, ckpt_interval=10, lr=3e-3, dropout=0.1,
                      schedule="constant", device="cuda", **MICRO)
    straight = train(cfg, out_dir=str(tmp_path / "straight"))
    train(dataclasses.replace(cfg, max_steps=10), out_dir=str(tmp_path / "resumed"))
    resumed = train(cfg, out_dir=str(tmp_path / "resumed"), resume=True)  # each step seeds the GPU's generator
    assert max_diff(load_checkpoint(straight.checkpoint)[0], load_checkpoint(resumed.checkpoint)[0]) < 1e-6


def test_two_process_ddp_matches_one_process_with_twice_the_accumulation(tokens, tmp_path, cli):
    """With dropout too: each micro-batch's masks are seeded by its place in the global sequence."""
    common = ["--mode", "pretrain", "--data", tokens, "--preset", "micro", "--vocab-size", 64, "--block-size", 32,
              "--max-steps", 6, "--lr", 3e-3, "--dropout", 0.1, "--quiet"]
    one = cli(*common, "--grad-accum", 2, "--out", tmp_path / "one")  # the one process: this one
    assert one.returncode == 0, one.stderr
    # --standalone: a free port of its own, not torchrun's default 29500, which another run may hold
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(ROOT / "train.py"), *map(str, [*common, "--grad-accum", 1, "--out", tmp_path / "two"])],
                   cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    a, meta_a = load_checkpoint(tmp_path / "one")
    b, meta_b = load_checkpoint(tmp_path / "two")
    assert max_diff(a, b) < 1e-5
    assert meta_a["tokens"] == meta_b["tokens"]


def test_under_ddp_every_rank_averages_the_weights_rank_0_broadcast(tokens, tmp_path):
    """Each rank draws its own init (its seed + rank) before DDP broadcasts rank 0's: a weight average
    taken from the drawn init would validate another model on every rank but 0."""
    script = tmp_path / "ranks.py"
    script.write_text(f"""import os, sys
sys.path.insert(0, {str(ROOT)!r})
from train import train
r = train(mode="pretrain", data={str(tokens)!r}, out_dir={str(tmp_path / "out")!r}, preset="micro", vocab_size=64,
          block_size=32, batch_size=4, max_steps=2, eval_iters=2, ema=0.99, quiet=True)
open({str(tmp_path)!r} + "/val-" + os.environ["RANK"], "w").write(repr(r.val_loss))
""")
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
                   cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (tmp_path / "val-0").read_text() == (tmp_path / "val-1").read_text()


def test_the_loss_reaches_the_host_only_at_the_log_interval(tokens, tmp_path, monkeypatch):
    import train as train_module
    synced = []
    for name in ("item", "tolist", "__float__", "__bool__"):  # what copies a tensor's value to the host
        def counted(self, *a, _real=getattr(torch.Tensor, name)):
            caller = sys._getframe(1)
            if caller.f_code.co_filename == train_module.__file__:
                synced.append(caller.f_code.co_name)
            return _real(self, *a)
        monkeypatch.setattr(torch.Tensor, name, counted)
    train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path), max_steps=20, ema=0.9,
                      **dict(MICRO, log_interval=10)))
    assert synced == ["mean_loss", "mean_loss", "evaluate"]  # the loss at steps 10 and 20, the val loss at the end
    # an evaluation pauses the clock: the step before it is synced first, so its device work is on the clock
    synced.clear()
    train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "evals"), max_steps=10,
                      **dict(MICRO, log_interval=10, eval_interval=5)))
    assert synced == ["mean_loss", "evaluate", "mean_loss", "evaluate"]


def test_lora_mfu_counts_the_flops_the_run_records_not_6n(tokens, tmp_path, monkeypatch):
    import train as train_module
    monkeypatch.setattr(train_module, "peak_flops", lambda device: 1e11)
    printed = []
    cfg = TrainConfig(mode="lora", init=str(_base(tmp_path)), data=str(tokens), out_dir=str(tmp_path / "lora"),
                      max_steps=4, **dict(RUN, quiet=False, log_interval=2))
    train(cfg, log=printed.append)
    mfu = [float(line.split(" mfu ")[1].split("%")[0]) for line in printed if " mfu " in line]
    tps = [e["tokens_per_sec"] for e in map(json.loads, (tmp_path / "lora" / "log.jsonl").read_text().splitlines())
           if "tokens_per_sec" in e]
    per_token = 4 * MICRO_N + 6 * MICRO_LORA + MICRO_ATTN  # the lora-aware count, 84% of 6N + attention
    assert len(mfu) == len(tps) == 2
    assert mfu == pytest.approx([per_token * t / 1e11 * 100 for t in tps], abs=0.051)


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
                                        ("NVIDIA H100 NVL", None), ("NVIDIA A100-SXM4-80GB", 312e12),
                                        ("NVIDIA A100-PCIE-40GB", 312e12), ("NVIDIA A10", None),
                                        ("NVIDIA L40S", 362e12), ("NVIDIA L4", 121e12), ("NVIDIA L40", None),
                                        ("NVIDIA GeForce RTX 4090", 165e12), ("NVIDIA H200", 989e12),
                                        ("NVIDIA GH200 480GB", 989e12),
                                        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", None),  # a slice: a share of the peak
                                        ("Tesla T4", None)])
def test_peak_flops_match_whole_words_of_the_gpu_name_variant_first(name, peak):
    assert peak_flops_of(name) == peak


def test_cosine_schedule_warms_up_then_decays_to_min_lr_on_the_last_step():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup=10, max_steps=111)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0) and lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(109, cfg) > 0.1 and lr_at(110, cfg) == pytest.approx(0.1)
    short = TrainConfig(lr=1.0, min_lr=0.0, warmup=0, max_steps=3)
    assert [lr_at(s, short) for s in range(3)] == pytest.approx([1.0, 0.5, 0.0])


def test_wsd_schedule_warms_up_holds_lr_then_decays_linearly_over_the_last_decay_frac():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup=10, max_steps=100, schedule="wsd")  # decay_frac 0.2: 80..99
    assert lr_at(4, cfg) == pytest.approx(0.5) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == lr_at(50, cfg) == lr_at(79, cfg) == 1.0
    assert lr_at(80, cfg) == pytest.approx(0.955) and lr_at(89, cfg) == pytest.approx(0.55)
    assert lr_at(99, cfg) == pytest.approx(0.1)
    half = TrainConfig(lr=1.0, min_lr=0.0, warmup=0, max_steps=10, schedule="wsd", decay_frac=0.5)
    assert [lr_at(s, half) for s in range(3, 10)] == pytest.approx([1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    five = TrainConfig(lr=1.0, min_lr=0.1, warmup=0, max_steps=5, schedule="wsd")  # one decay step: the last
    assert [lr_at(s, five) for s in range(5)] == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.1])


def test_a_wsd_warmup_that_reaches_into_the_decay_meets_it_without_a_drop():
    """Warmup 8 of 10 steps, decay over the last 5: the ramp rises until it meets the decay, then follows it."""
    cfg = TrainConfig(lr=1.0, min_lr=0.0, warmup=8, max_steps=10, schedule="wsd", decay_frac=0.5)
    lrs = [lr_at(s, cfg) for s in range(10)]
    assert lrs == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.6, 0.4, 0.2, 0.0])


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_a_decay_shorter_than_its_warmup_still_ends_at_min_lr(schedule):
    """A run no longer than its warmup (a 2-step adapter has warmup 1) warms up over all but its last step."""
    lrs = lambda **kw: [lr_at(s, TrainConfig(lr=1.0, min_lr=0.1, schedule=schedule, **kw)) for s in range(kw["max_steps"])]
    # wsd keeps its decay window (the last 4.2 of 21 steps), and the warmup meets it there
    before_last = 1.0 if schedule == "cosine" else 1.0 - 0.9 * (19 - (20 - 4.2)) / 4.2
    assert lrs(warmup=20, max_steps=21)[-2:] == pytest.approx([before_last, 0.1])
    assert lrs(warmup=20, max_steps=5) == pytest.approx([0.25, 0.5, 0.75, 1.0, 0.1])
    assert lrs(warmup=1, max_steps=2) == pytest.approx([1.0, 0.1]) and lrs(warmup=3, max_steps=1) == pytest.approx([0.1])


def test_constant_schedule_warms_up_then_stays_at_lr():
    cfg = TrainConfig(lr=2.0, min_lr=0.1, warmup=4, max_steps=100, schedule="constant")
    assert [lr_at(s, cfg) for s in (0, 1, 3, 4, 50, 99, 100)] == pytest.approx([0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0])


def test_the_loop_trains_each_step_at_the_schedules_lr(tokens, tmp_path):
    cfg = TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path), max_steps=10, warmup=2, lr=1e-3,
                      min_lr=0.0, schedule="wsd", decay_frac=0.5, **dict(MICRO, log_interval=1))
    train(cfg)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [e["lr"] for e in log if "lr" in e] == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3, 1e-3, 8e-4, 6e-4, 4e-4,
                                                                 2e-4, 0.0])


def test_every_flag_has_a_help_sentence_and_fixed_sets_list_their_choices():
    actions = {a.dest: a for a in arg_parser()._actions if a.dest != "help"}
    assert set(actions) == {f.name for f in dataclasses.fields(TrainConfig)} - {"meta"}
    assert all(len(a.help) > 10 for a in actions.values())
    assert actions["mode"].choices == ("pretrain", "finetune", "lora")
    assert actions["order"].choices == ("curriculum", "shuffled")
    assert actions["schedule"].choices == ("cosine", "wsd", "constant") and actions["schedule"].default == "cosine"
    args = arg_parser().parse_args(["--out", "x", "--max-steps", "7", "--no-compile", "--merge"])
    assert (args.out_dir, args.max_steps, args.compile, args.merge) == ("x", 7, False, True)


def test_a_value_outside_its_choices_is_refused_in_process_too(tmp_path):
    with pytest.raises(TrainError, match="unknown order 'random': use curriculum, shuffled"):
        train(TrainConfig(order="random", out_dir=str(tmp_path)))


@pytest.fixture
def two_gpus(monkeypatch):
    """CUDA faked on the CPU: two devices."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_cuda_and_auto_name_the_process_local_gpu_by_index(two_gpus):
    assert resolve_device("cuda", env={}) == torch.device("cuda", 0)
    assert resolve_device("auto", env={}) == torch.device("cuda", 0)
    torchrun = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}
    assert resolve_device("cuda", env=torchrun) == torch.device("cuda", 1)
    assert resolve_device("auto", env=torchrun) == torch.device("cuda", 1)


def test_cuda_n_is_taken_as_given_and_refused_beyond_the_device_count(two_gpus):
    assert resolve_device("cuda:1", env={}) == torch.device("cuda", 1)
    with pytest.raises(TrainError, match="--device cuda:2: there is no cuda:2, this machine has 2 CUDA device"):
        resolve_device("cuda:2", env={})
    with pytest.raises(TrainError, match="LOCAL_RANK 2"):
        resolve_device("cuda", env={"LOCAL_RANK": "2", "WORLD_SIZE": "3"})
    with pytest.raises(TrainError, match="under torchrun each process takes its own GPU"):
        resolve_device("cuda:0", env={"LOCAL_RANK": "1", "WORLD_SIZE": "2"})


def test_auto_is_the_cpu_without_cuda_and_cuda_is_then_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", env={}) == torch.device("cpu")
    assert resolve_device("cpu", env={"LOCAL_RANK": "1", "WORLD_SIZE": "2"}) == torch.device("cpu")
    with pytest.raises(TrainError, match="--device cuda: CUDA is not available"):
        resolve_device("cuda", env={})


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda:-1", "tpu"])
def test_an_unknown_device_is_refused(name):
    with pytest.raises(TrainError, match=f"--device '{name}': use auto, cpu, cuda, cuda:N or mps"):
        resolve_device(name, env={})


def test_setup_sets_the_cuda_device_only_by_index(two_gpus, monkeypatch):
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    calls = []

    def set_device(d):  # as torch's: an index, or a device that has one
        assert isinstance(d, int) or d.index is not None, "Expected a torch.device with a specified index"
        calls.append(d)
    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    for name in ("auto", "cuda", "cuda:1"):
        setup_process(TrainConfig(device=name))
    assert calls == [torch.device("cuda", 0), torch.device("cuda", 0), torch.device("cuda", 1)]


def test_token_stream_is_deterministic_and_resumable(tokens):
    a = TokenFileStream(tokens, 4, 16, seed=3)
    first = [a.next_batch() for _ in range(3)]
    b = TokenFileStream(tokens, 4, 16, seed=3)
    b.load_state_dict({"batch": 2})
    assert np.array_equal(b.next_batch()[0], first[2][0])
    x, y = first[0]
    assert x.shape == (4, 16) and np.array_equal(x[:, 1:], y[:, :-1])


def test_token_stream_refuses_a_corpus_selection_s_cursor(tokens):
    """A curriculum.Stream cursor (it names its selection) is not a count of this file's batches; a
    cursor saved before cursors named their kind is a token file's."""
    s = TokenFileStream(tokens, 4, 16)
    for cursor in ({"batch": 3, "selection_hash": "ab" * 32}, {"kind": "corpus", "batch": 3}):
        with pytest.raises(TrainError, match=r"^stream cursor was saved by a run on a corpus selection \(--corpus\), "
                                             r"not a token file; resume with the same data source$"):
            s.load_state_dict(cursor)
    assert s.batch == 0 and s.state_dict() == {"kind": "token_file", "batch": 0}
    s.load_state_dict({"batch": 3})
    assert s.batch == 3


def test_token_stream_draws_every_window_of_its_slice_and_no_other(tmp_path):
    """Every start from 0 to len - T - 1 (so the last token is a target too), a file of T + 1 tokens is
    one window, and the train slice's windows never cross into the held-out slice after it."""
    np.arange(50, dtype=np.uint16).tofile(tmp_path / "t.bin")  # token i at position i: x[:, 0] is the start
    whole = TokenFileStream(tmp_path / "t.bin", 8, 8)
    starts = {int(i) for _ in range(60) for i in whole.next_batch()[0][:, 0]}
    assert starts == set(range(50 - 8))
    first = TokenFileStream(tmp_path / "t.bin", 8, 4, start=0.0, end=0.9)  # tokens 0-44
    targets = {int(t) for _ in range(60) for t in first.next_batch()[1].ravel()}
    assert targets == set(range(1, 45))
    held = TokenFileStream(tmp_path / "t.bin", 2, 4, start=0.9, end=1.0)  # tokens 45-49: one window
    x, y = held.next_batch()
    assert x.tolist() == [[45, 46, 47, 48]] * 2 and y.tolist() == [[46, 47, 48, 49]] * 2
    with pytest.raises(TrainError, match="5 tokens, too few for block_size 5"):
        TokenFileStream(tmp_path / "t.bin", 2, 5, start=0.9, end=1.0)


def test_token_ids_beyond_the_vocab_are_refused(tmp_path):
    np.arange(300, dtype=np.uint16).tofile(tmp_path / "big.bin")
    with pytest.raises(TrainError, match="big.bin: token id 299 is outside the model's vocab of 64"):
        train(TrainConfig(mode="pretrain", data=str(tmp_path / "big.bin"), out_dir=str(tmp_path / "o"), **MICRO))


@pytest.mark.parametrize("problem", ["missing", "corrupted"])
def test_bad_init_checkpoint_is_one_line_error_and_exit_2(tokens, tmp_path, problem, cli):
    ckpt = tmp_path / "ckpt"
    if problem == "corrupted":
        ckpt.mkdir()
        (ckpt / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    r = cli("--mode", "finetune", "--init", ckpt, "--data", tokens, "--out", tmp_path / "out")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "model.safetensors" in r.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.parametrize("args, says", [(["--n-head", "3"], "n_embd 64 is not a multiple of n_head 3"),
                                        (["--n-layer", "0"], "n_layer must be a whole number >= 1, not 0")])
def test_a_model_that_cannot_be_built_is_one_line_error_and_exit_2(tokens, tmp_path, args, says, cli):
    r = cli("--preset", "micro", *args, "--data", tokens, "--out", tmp_path / "out")
    assert r.returncode == 2 and r.stderr == f"error: model config: {says}\n"
    assert not (tmp_path / "out").exists()


def test_resume_with_other_settings_is_refused_naming_them(tokens, tmp_path):
    cfg = TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "run"), max_steps=4, lr=1e-3,
                      warmup=1, **MICRO)
    train(cfg)
    with pytest.raises(TrainError, match=r"train_state\.safetensors: saved by a run with other settings "
                                         r"\(lr 0\.001 -> 0\.05, seed 1337 -> 99\); resume with the same ones"):
        train(cfg, lr=5e-2, seed=99, max_steps=6, resume=True)
    # a longer run, other logging: the same run, continued
    assert train(cfg, max_steps=6, log_interval=2, resume=True).steps == 6


def test_a_state_saved_with_settings_its_run_ignored_resumes_without_them(tokens, tmp_path):
    """Saved before they were refused: a finetune's model shape (--preset, --block-size) and adapter flags, and a
    replay share with nothing to rehearse, changed nothing the run did; refused now, they cannot be given again."""
    train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "base"), max_steps=2, **MICRO))
    cfg = TrainConfig(mode="finetune", init=str(tmp_path / "base"), data=str(tokens), out_dir=str(tmp_path / "ft"),
                      max_steps=4, **RUN)
    train(cfg)
    state = tmp_path / "ft" / "train_state.safetensors"
    tensors, meta = read_tensors(state)
    meta["config"].update(preset="micro", block_size=32, lora_r=4, merge=True, replay=0.3)
    save_tensors(tensors, state, meta)
    assert train(cfg, max_steps=6, resume=True).steps == 6
    meta["config"].update(lr=0.5)  # a setting the run used is still compared
    save_tensors(tensors, state, meta)
    with pytest.raises(TrainError, match=r"saved by a run with other settings \(lr 0\.5 -> "):
        train(cfg, max_steps=8, resume=True)


def test_training_into_a_directory_with_another_run_s_state_is_refused(tokens, tmp_path):
    cfg = TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "run"), max_steps=2, **MICRO)
    train(cfg)
    log = (tmp_path / "run" / "log.jsonl").read_text()
    with pytest.raises(TrainError, match=r"train_state\.safetensors: an earlier training's state is here; "
                                         r"--resume continues it, or train into another --out"):
        train(cfg, max_steps=5)
    assert (tmp_path / "run" / "log.jsonl").read_text() == log  # nothing of the refused run written


@pytest.mark.parametrize("weights", ["model.safetensors", "adapter.safetensors"])
@pytest.mark.parametrize("resume", [False, True])
def test_training_into_a_directory_with_weights_but_no_state_is_refused(tokens, tmp_path, weights, resume):
    # a lora.py merge or a model.py --import-hf output there was replaced by the run's model, exit 0
    out = tmp_path / "merged"
    out.mkdir()
    (out / weights).write_bytes(b"theirs")
    cfg = TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(out), max_steps=2, resume=resume, **MICRO)
    with pytest.raises(TrainError, match=rf"^{out / weights}: weights are here with no training state to resume, "
                                         rf"and a run would replace them; train into another --out, or remove "
                                         rf"{weights}$"):
        train(cfg)
    assert sorted(f.name for f in out.iterdir()) == [weights] and (out / weights).read_bytes() == b"theirs"
    # a run's own directory holds its state beside its weights: entered again (as the ladder does), it resumes
    (out / weights).unlink()
    assert train(cfg).steps == 2 and train(cfg, max_steps=4, resume=True).steps == 4


def test_a_run_stopped_after_its_last_state_resumes_with_its_losses(tokens, tmp_path):
    """Killed between the final resume state and the model file: the resumed run has no step left to
    train, and must still write the losses it ended with, not NaN."""
    cfg = TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "run"), max_steps=4, **MICRO)
    done = train(cfg)
    (tmp_path / "run" / "model.safetensors").unlink()
    again = train(cfg, resume=True)
    assert (again.train_loss, again.val_loss) == (done.train_loss, done.val_loss) and not np.isnan(again.val_loss)
    assert load_checkpoint(again.checkpoint)[1]["val_loss"] == done.val_loss


def test_resume_from_another_init_is_refused_and_a_moved_init_resumes(tokens, tmp_path):
    """The state holds the init's weights: a resume from other weights would mix the two bases."""
    base = _base(tmp_path)
    cfg = TrainConfig(mode="lora", data=str(tokens), out_dir=str(tmp_path / "run"), max_steps=2, **RUN)
    train(cfg, init=str(base))
    torch.manual_seed(1)
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=64, block_size=32)), tmp_path / "other", {})
    with pytest.raises(TrainError, match=r"run/train_state\.safetensors: saved by a run from init [0-9a-f]{12}, "
                                         r"but --init .*other is [0-9a-f]{12}; resume with the init it started"):
        train(cfg, init=str(tmp_path / "other"), max_steps=4, resume=True)
    base.rename(tmp_path / "moved")  # the same weights elsewhere: the same run, continued
    r = train(cfg, init=str(tmp_path / "moved"), max_steps=4, resume=True)
    assert r.steps == 4
    assert lora.read_adapter(r.adapter)[1]["base_fingerprint"] == load_checkpoint(tmp_path / "moved")[1]["fingerprint"]


def test_resume_state_from_another_mode_is_refused(tokens, tmp_path):
    train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path), max_steps=5, **MICRO))
    base = _base(tmp_path)
    with pytest.raises(TrainError, match="saved by a pretrain run"):
        train(TrainConfig(mode="finetune", init=str(base), data=str(tokens), out_dir=str(tmp_path), max_steps=5,
                          resume=True, **RUN))


def test_cpu_training_keeps_big_allocations_on_the_malloc_heap_where_libc_is_glibc():
    import platform
    from train import keep_big_allocations_on_the_heap
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_big_allocations_on_the_heap() is expected
    if not expected:
        return
    # in a fresh process, as a training run: the ladder's tiny model, four steps for the heap to grow
    # to its working size, then the page faults of ten more: 65,000-81,000 measured while free()
    # trims the heap's top back to the kernel and each step faults it in again, 0-5,600 without
    code = ("import resource, torch, train\n"
            "from model import GPT, GPTConfig\n"
            "train.keep_big_allocations_on_the_heap()\n"
            "torch.manual_seed(0)\n"
            "model = GPT(GPTConfig(vocab_size=2048, block_size=128, n_layer=4, n_head=4, n_embd=128))\n"
            "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
            "x = torch.randint(0, 2048, (16, 128))\n"
            "def step():\n"
            "    model(x, x)[1].backward()\n"
            "    opt.step()\n"
            "    opt.zero_grad(set_to_none=True)\n"
            "for _ in range(4):\n"
            "    step()\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(10):\n"
            "    step()\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert int(out.stdout) < 20_000


# ----------------------------------------------------------------------------- a diverged run

def _passport_events(corpus):
    import curriculum
    return [e["event"] for e in curriculum.Corpus(corpus).passport.events()]


@pytest.mark.parametrize("snapshot_steps, at", [((), 5), ((2,), 2)])
def test_a_diverged_run_is_refused_and_writes_nothing(corpus, tmp_path, snapshot_steps, at):
    """--lr 1e9 turns the loss into nan within a step: the run stops where it would first write (its first
    log step, or a snapshot before it) and leaves no model, snapshot, log line or passport event behind."""
    before = _passport_events(corpus)
    out = tmp_path / "run"
    with pytest.raises(TrainError, match=rf"^diverged at step {at}: loss (nan|inf); lower --lr \(now 1e\+09\)"):
        train(TrainConfig(mode="pretrain", corpus=str(corpus), out_dir=str(out), max_steps=10, lr=1e9,
                          snapshot_steps=snapshot_steps, **dict(MICRO, vocab_size=300)))
    assert not out.exists() and _passport_events(corpus) == before


@pytest.mark.parametrize("what", ["loss", "val loss"])
def test_a_run_that_diverges_after_logging_keeps_a_valid_log_and_writes_no_model(tokens, tmp_path, monkeypatch, what):
    """Step 5 is logged and evaluated; at step 10 the loss (or the val loss) is inf: the log keeps what was
    finite, valid JSON, and nothing else is written."""
    import train as T
    name = "mean_loss" if what == "loss" else "evaluate"
    real, calls = getattr(T, name), []

    def diverging(*a, **k):  # the second measurement, at step 10
        calls.append(a)
        return real(*a, **k) if len(calls) < 2 else float("inf")
    monkeypatch.setattr(T, name, diverging)
    with pytest.raises(TrainError, match=rf"^diverged at step 10: {what} inf; lower --lr \(now 0\.001\) and train "
                                         r"into another --out$"):
        train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path), max_steps=20, eval_interval=5,
                          **MICRO))
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    # the val loss is measured after the step's training loss, which stands
    steps = [(5, False), (5, True)] + [(10, False)] * (what == "val loss")
    assert [(e["step"], "val_loss" in e) for e in log] == steps
    assert all(np.isfinite(e.get("loss", e.get("val_loss"))) for e in log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]


def test_a_diverged_command_line_run_is_one_line_and_exit_2(tokens, tmp_path):
    r = run("--data", tokens, "--preset", "micro", "--vocab-size", 64, "--block-size", 32, "--max-steps", 2,
            "--lr", "1e9", "--out", tmp_path / "out", check=False)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: diverged at step 2: loss ") and "lower --lr (now 1e+09)" in r.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- validation data

def test_the_val_batches_are_the_shuffled_selection_s_whatever_the_run_s_order_and_budget(levels_corpus):
    """A curriculum run's validation read level 0 only, and was not comparable with a shuffled run's."""
    import train as T
    cfgs = [TrainConfig(corpus=str(levels_corpus), order=order, token_budget=budget, **MICRO)
            for order, budget in (("curriculum", 8 * 32 * 4), ("shuffled", None), ("curriculum", 8 * 32 * 1000))]
    vals = [T.build_streams(cfg, 8, 32, 300)[1] for cfg in cfgs]
    batches, units = [], []
    for val in vals:
        batches.append([val.next_batch()[0] for _ in range(4)])
        units.append(set(val.last_units))
    for other in batches[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(batches[0], other))
    assert {"early", "late"} <= units[0]  # both levels (and the primitive text), in the first four batches


def test_a_unit_without_val_tokens_trains_without_a_val_loss(lonely_corpus, tmp_path):
    """One document, all of it for training: the run reports no val loss (as with no val data at all)."""
    import curriculum
    with pytest.raises(curriculum.CurriculumError, match="the selection 'lonely' has no val tokens to serve"):
        curriculum.Stream(lonely_corpus, "lonely", 8, 32, split="val")  # was a ZeroDivisionError (0 / 0)
    for share in (0.0, 0.5):
        out = tmp_path / f"share-{share}"
        r = train(TrainConfig(mode="pretrain", corpus=str(lonely_corpus), units="lonely", primitive_share=share,
                              out_dir=str(out), max_steps=4, eval_interval=2, **dict(MICRO, vocab_size=300)))
        assert np.isnan(r.val_loss) and np.isfinite(r.train_loss)
        assert load_checkpoint(r.checkpoint)[1]["val_loss"] is None
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        assert [e["step"] for e in log] == [4] and "val_loss" not in log[0]
        event = curriculum.Corpus(lonely_corpus).passport.events("model_trained")[-1]
        assert event["out_dir"] == str(out) and event["selection"]["units"] == ["lonely"]


# ----------------------------------------------------------------------------- devices

def test_batches_go_to_any_device_not_only_cuda():
    """--device mps trained on CPU tensors: to_device moved batches to CUDA only (meta stands in for mps)."""
    from train import to_device
    x, y = to_device(np.zeros((2, 4), np.int64), np.ones((2, 4), np.int64), torch.device("meta"))
    assert (x.device.type, y.device.type, x.shape, y.dtype) == ("meta", "meta", (2, 4), torch.int64)
    x, y = to_device(np.zeros((2, 4), np.int64), np.ones((2, 4), np.int64), torch.device("cpu"))
    assert x.device.type == "cpu" and y.sum().item() == 8


# ----------------------------------------------------------------------------- seconds

def test_seconds_count_every_training_step_and_leave_out_evaluation_and_saving(tokens, tmp_path, monkeypatch):
    """On a fake clock: a step takes 1 s, an evaluation 100 s, a resume state 50 s, a snapshot 20 s. The run's
    seconds, its log's, each resume state's (saved when it is written) and a resumed run's are the steps'."""
    import inspect
    import types
    import train as T
    now = [1000.0]
    monkeypatch.setattr(T, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def taking(fn, seconds, record=None):
        def timed(*a, **k):
            if record is not None:
                record.append(inspect.signature(fn).bind(*a, **k).arguments["seconds"])
            now[0] += seconds
            return fn(*a, **k)
        return timed
    saved = []
    monkeypatch.setattr(T, "train_step", taking(T.train_step, 1.0))
    monkeypatch.setattr(T, "evaluate", taking(T.evaluate, 100.0))
    monkeypatch.setattr(T, "save_state", taking(T.save_state, 50.0, saved))
    monkeypatch.setattr(T, "save_snapshot", taking(T.save_snapshot, 20.0))
    cfg = TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path), max_steps=6, eval_interval=1,
                      ckpt_interval=3, snapshot_steps=(2,), **dict(MICRO, log_interval=4))
    r = train(cfg)
    assert r.seconds == 6.0 and saved == [3.0, 6.0]
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(e["step"], e["seconds"], e["tokens_per_sec"]) for e in log if "loss" in e] == [(4, 4.0, 256.0),
                                                                                          (6, 6.0, 256.0)]
    assert load_checkpoint(r.checkpoint)[1]["seconds"] == 6.0
    assert train(cfg, max_steps=8, resume=True).seconds == 8.0


# ----------------------------------------------------------------------------- the curriculum's budget

def test_a_curriculum_spans_the_run_by_default(levels_corpus, tmp_path):
    """The default budget was one pass over the selection whatever --max-steps: a long run wrapped around to
    level 0, a short one never reached level 1. It is the run's tokens now (grad accum included); shuffled
    order keeps one pass, an explicit --token-budget stands, and a resume that trains longer keeps its own."""
    import curriculum
    import train as T
    cfg = TrainConfig(mode="pretrain", corpus=str(levels_corpus), max_steps=3, grad_accum=2,
                      **dict(MICRO, vocab_size=300))
    event = lambda out: [e for e in curriculum.Corpus(levels_corpus).passport.events("model_trained")
                         if e["out_dir"] == str(out)][-1]["selection"]
    train(cfg, out_dir=str(tmp_path / "curriculum"))
    assert (event(tmp_path / "curriculum")["token_budget"], event(tmp_path / "curriculum")["total_rows"]) == \
        (3 * 2 * 8 * 32, 3 * 2 * 8)
    one_pass = curriculum.Stream(levels_corpus, ["all"], 8, 32).token_budget
    assert one_pass != 3 * 2 * 8 * 32
    train(cfg, out_dir=str(tmp_path / "shuffled"), order="shuffled")
    assert event(tmp_path / "shuffled")["token_budget"] == one_pass
    train(cfg, out_dir=str(tmp_path / "given"), token_budget=5000)
    assert event(tmp_path / "given")["token_budget"] == 5000
    # a longer resume: the schedule bends, the curriculum (and the cursor that belongs to it) stays
    train(cfg, out_dir=str(tmp_path / "curriculum"), max_steps=5, resume=True)
    assert event(tmp_path / "curriculum")["token_budget"] == 3 * 2 * 8 * 32
    # every process's micro-batches: the budget is counted as the run's tokens are
    assert T.curriculum_budget(cfg, 4 * 2 * 8 * 32, None) == 3 * 4 * 2 * 8 * 32


# ----------------------------------------------------------------------------- resume

def test_resume_with_another_process_count_or_past_max_steps_is_refused(tokens, tmp_path, monkeypatch):
    import train as T
    cfg = TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "run"), max_steps=4, **MICRO)
    train(cfg)
    assert read_tensors(tmp_path / "run" / "train_state.safetensors")[1]["global_batch"] == 8
    with pytest.raises(TrainError, match=r"run/train_state\.safetensors: saved at step 4, past --max-steps 2; "
                                         r"resume with --max-steps 4 or more"):
        train(cfg, max_steps=2, resume=True)
    # torchrun with 2 processes: twice the sequences a step, which grad accum's refusal did not catch
    real = T.setup_process
    monkeypatch.setattr(T, "setup_process", lambda c: dataclasses.replace(real(c), world=2))
    with pytest.raises(TrainError, match=r"saved by a run of 8 sequences a step \(batch size x grad accum x "
                                         r"processes\), this one takes 16; resume with as many processes"):
        train(cfg, max_steps=6, resume=True)


def test_resume_on_the_other_kind_of_data_source_is_refused_and_a_moved_token_file_resumes(tokens, corpus, tmp_path):
    """A token file's batch count continued on a corpus would start its curriculum mid-way and record the
    file's tokens as the corpus's (and the other way round): the saved cursor names its kind."""
    import curriculum
    cfg = TrainConfig(mode="pretrain", max_steps=2, **dict(MICRO, vocab_size=300))
    train(cfg, data=str(tokens), out_dir=str(tmp_path / "on_file"))
    with pytest.raises(TrainError, match=r"on_file/train_state\.safetensors: stream cursor was saved by a run on a "
                                         r"token file \(--data\), not a corpus selection; resume with the same data"):
        train(cfg, corpus=str(corpus), out_dir=str(tmp_path / "on_file"), max_steps=4, resume=True)
    assert not [e for e in curriculum.Corpus(corpus).passport.events("model_trained")
                if e["out_dir"] == str(tmp_path / "on_file")]
    train(cfg, corpus=str(corpus), out_dir=str(tmp_path / "on_corpus"))
    with pytest.raises(TrainError, match=r"on_corpus/train_state\.safetensors: stream cursor was saved by a run on "
                                         r"a corpus selection \(--corpus\), not a token file; resume with the same"):
        train(cfg, data=str(tokens), out_dir=str(tmp_path / "on_corpus"), max_steps=4, resume=True)
    moved = tmp_path / "moved"  # the same token file elsewhere: the same run, continued
    shutil.copytree(tokens.parent, moved)
    assert train(cfg, data=str(moved / "train.bin"), out_dir=str(tmp_path / "on_file"), max_steps=4,
                 resume=True).steps == 4


def test_a_finished_run_resumed_writes_the_same_outputs_and_records_them_once(corpus, tmp_path):
    cfg = TrainConfig(mode="pretrain", corpus=str(corpus), out_dir=str(tmp_path / "run"), max_steps=3,
                      **dict(MICRO, vocab_size=300))
    first = train(cfg)
    again = train(cfg, resume=True)
    assert again.seconds == first.seconds and sha256_file(again.checkpoint) == sha256_file(first.checkpoint)
    import curriculum
    events = [e for e in curriculum.Corpus(corpus).passport.events("model_trained")
              if e["out_dir"] == str(tmp_path / "run")]
    assert len(events) == 1 and events[0]["step"] == 3


# ----------------------------------------------------------------------------- headers

def test_the_callers_meta_cannot_override_the_runs_figures(tokens, tmp_path):
    r = train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "run"), max_steps=3,
                          meta={"step": 99, "mode": "other", "tokenizer_hash": "ab" * 32, "note": "kept"}, **MICRO))
    meta = load_checkpoint(r.checkpoint)[1]
    # a token file of no named tokenizer: the caller names it
    assert (meta["step"], meta["mode"], meta["tokenizer_hash"], meta["note"]) == (3, "pretrain", "ab" * 32, "kept")


def test_a_snapshot_header_holds_its_own_run_figures_not_its_inits(tokens, tmp_path):
    base = train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "base"), max_steps=5,
                             **MICRO))
    ft = train(TrainConfig(mode="finetune", init=base.out_dir, data=str(tokens), out_dir=str(tmp_path / "ft"),
                           max_steps=4, snapshot_steps=(2,), **RUN))
    snap = load_checkpoint(tmp_path / "ft" / "snapshots" / "step-000002")[1]
    # the snapshot's time and val loss were never measured: none, rather than the base's
    assert "seconds" not in snap and "val_loss" not in snap and snap["step"] == 2
    final = load_checkpoint(ft.checkpoint)[1]
    assert final["val_loss"] == pytest.approx(ft.val_loss) and "snapshot" not in final
    # a fine-tune of the snapshot is no snapshot itself
    again = train(TrainConfig(mode="finetune", init=str(tmp_path / "ft" / "snapshots" / "step-000002"),
                              data=str(tokens), out_dir=str(tmp_path / "ft2"), max_steps=1, **RUN))
    assert "snapshot" not in load_checkpoint(again.checkpoint)[1]


def test_data_is_a_field_like_any_other_when_given_as_a_keyword(tokens, tmp_path):
    r = train(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "run"), max_steps=2, **MICRO)
    assert r.steps == 2 and Path(r.checkpoint).is_file()


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("field, value, says", [
    ("lr", float("inf"), "a finite number above 0"), ("lr", -1.0, "a finite number above 0"),
    ("lr", 0.0, "a finite number above 0"),
    ("min_lr", -1.0, "a number from 0 to --lr"), ("min_lr", float("nan"), "a number from 0 to --lr"),
    ("min_lr", 1.0, "a number from 0 to --lr"),  # above lr (MICRO's 3e-3): a decay would climb
    ("grad_clip", -1.0, r"a finite number, 0 \(no clipping\) or more"),
    ("weight_decay", -0.1, "a finite number, 0 or more"),
    ("beta1", 1.5, r"in \[0, 1\)"), ("beta2", float("nan"), r"in \[0, 1\)"),
    ("dropout", 1.5, r"in \[0, 1\)"), ("lora_dropout", 1.0, r"in \[0, 1\)"),
    ("seed", -1, r"a whole number from 0 to 2\*\*32 - 1"),
    ("seed", 5_000_000_000, r"a whole number from 0 to 2\*\*32 - 1"),
    ("token_budget", 0, r"at least 1 \(left out: the default\)"),
    ("token_budget", -5, r"at least 1 \(left out: the default\)")])
def test_a_value_outside_its_range_is_refused_naming_its_flag(tokens, tmp_path, field, value, says):
    with pytest.raises(TrainError, match=rf"^--{field.replace('_', '-')} {value}: must be {says}$"):
        train(TrainConfig(mode="pretrain", data=str(tokens), out_dir=str(tmp_path / "out"), max_steps=2,
                          **{**MICRO, field: value}))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("vocab", ['"64"', "0", "true", "2.5"])
def test_a_bad_vocab_size_in_meta_json_is_refused_naming_the_file(tmp_path, vocab):
    np.arange(100, dtype=np.uint16).tofile(tmp_path / "train.bin")
    (tmp_path / "meta.json").write_text('{"vocab_size": %s}' % vocab)
    with pytest.raises(TrainError, match=r'meta\.json: "vocab_size" must be a whole number >= 1, not '):
        train(TrainConfig(mode="pretrain", data=str(tmp_path / "train.bin"), out_dir=str(tmp_path / "out"),
                          **dict(MICRO, vocab_size=None)))
    assert not (tmp_path / "out").exists()


def test_data_and_corpus_together_are_refused(tokens, corpus, tmp_path):
    with pytest.raises(TrainError, match=r"^--data .*train\.bin and --corpus .*corpus: give one of them$"):
        train(TrainConfig(data=str(tokens), corpus=str(corpus), out_dir=str(tmp_path / "out"), **MICRO))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, says", [
    (["--seed", "5000000000"], "--seed 5000000000: must be a whole number from 0 to 2**32 - 1"),
    (["--seed", "-1"], "--seed -1: must be a whole number from 0 to 2**32 - 1"),
    (["--mode", "finetune", "--init", "BASE", "--dropout", "1.5"], "--dropout 1.5: must be in [0, 1)"),
    (["--lr", "-1"], "--lr -1.0: must be a finite number above 0"),
    (["--beta1", "1.5"], "--beta1 1.5: must be in [0, 1)")])
def test_bad_flags_are_one_line_naming_the_flag_and_leave_no_output(tokens, tmp_path, args, says, cli):
    args = [str(_base(tmp_path)) if a == "BASE" else a for a in args]
    r = cli("--data", tokens, "--preset", "micro", "--vocab-size", 64, "--block-size", 32, "--max-steps", 2,
            *args, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {says}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("problem, says", [
    ("empty", "x.bin: 0 bytes, not a whole number of uint16 tokens (2 bytes each)"),
    ("odd", "x.bin: 10001 bytes, not a whole number of uint16 tokens (2 bytes each)"),
    ("bad meta", "meta.json: not valid JSON (Expecting property name"),
    ("meta dtype", 'meta.json: must be a JSON object whose "dtype", if any, is "uint16" or "uint32"'),
    ("out is a file", "--out ")])
def test_a_bad_token_file_meta_json_or_out_is_one_line_naming_it(tokens, tmp_path, problem, says, cli):
    data, out = tmp_path / "x.bin", tmp_path / "out"
    data.write_bytes(b"" if problem == "empty" else tokens.read_bytes()[:10001 if problem == "odd" else 10000])
    if problem == "bad meta":
        (tmp_path / "meta.json").write_text("{bad")
    if problem == "meta dtype":
        (tmp_path / "meta.json").write_text('{"dtype": "int8"}')
    if problem == "out is a file":
        out.write_text("a file")
    r = cli("--data", data, "--preset", "micro", "--vocab-size", 64, "--block-size", 32, "--max-steps", 2,
            "--out", out)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert says in r.stderr and str(tmp_path) in r.stderr
    assert out.is_file() if problem == "out is a file" else not out.exists()


@pytest.mark.parametrize("field, value", [("primitive_share", 2.0), ("primitive_share", -0.5),
                                          ("replay", 1.5), ("replay", float("nan"))])
def test_a_share_outside_0_1_is_refused_naming_its_own_flag(corpus, tmp_path, field, value, cli):
    # the curriculum's own check named both shares and the batch and block sizes at once
    flag = f"--{field.replace('_', '-')}"
    r = cli("--corpus", corpus, "--units", "primitive", "--preset", "micro", "--max-steps", 2, flag, value,
            "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {flag} {value}: must be in [0, 1]\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode, units, args, says", [
    ("finetune", "atoms", ("--primitive-share", 1), "--primitive-share 1: every row would be primitive text"),
    ("lora", "late", ("--replay", 1, "--replay-units", "early"),
     "--replay 1: every knowledge row would rehearse other units (--replay-units, or earlier levels)")])
def test_a_share_of_1_is_refused_where_units_are_selected_to_train_on(levels_corpus, unit_corpus, tmp_path, mode,
                                                                     units, args, says, cli):
    # it trained on primitive text (or on the replayed unit) alone, exit 0, and the passport named the unit trained
    import train as T
    c = unit_corpus if units == "atoms" else levels_corpus
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=300, block_size=32)), tmp_path / "base")
    passport = (c / "passport.jsonl").read_bytes()
    r = cli("--mode", mode, "--init", tmp_path / "base", "--corpus", c, "--units", units, *args, "--max-steps", 2,
            "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {says}, none from the knowledge units that --units {units} "
                                           "selects; use a share below 1\n")
    assert not (tmp_path / "out").exists() and (c / "passport.jsonl").read_bytes() == passport
    # primitive text alone is all primitive rows whatever the share: nothing is left out
    T.check_corpus(TrainConfig(corpus=str(c), units="primitive", primitive_share=1.0, replay=1.0))


@pytest.mark.parametrize("units, says", [
    ("atoms", "select one level and no replay units, so there is nothing earlier to rehearse; use replay 0 or name "
              "the units to rehearse"),
    ("primitive", "select no knowledge unit, so every row is primitive text and none would rehearse; use replay 0")])
def test_replay_with_nothing_earlier_to_rehearse_is_refused_and_writes_nothing(unit_corpus, tmp_path, cli, units,
                                                                               says):
    # one level, or none (primitive text alone), and no --replay-units: it trained with no rehearsal, and the
    # passport recorded the share asked
    passport = (unit_corpus / "passport.jsonl").read_bytes()
    r = cli("--corpus", unit_corpus, "--units", units, "--preset", "micro", "--vocab-size", 300, "--block-size", 32,
            "--replay", 0.3, "--max-steps", 2, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: replay 0.3: the units [{units!r}] {says}\n")
    assert not (tmp_path / "out").exists() and (unit_corpus / "passport.jsonl").read_bytes() == passport


@pytest.mark.parametrize("mode, value", [("pretrain", "5"), ("pretrain", "[1, 2]"), ("finetune", "true")])
def test_a_tokenizer_hash_in_meta_json_that_is_no_string_is_refused_naming_the_file(tokens, tmp_path, mode, value,
                                                                                   cli):
    # pretrain wrote it into the model's header; finetune from a checkpoint of a named tokenizer was a TypeError
    data = tmp_path / "data" / "train.bin"
    data.parent.mkdir()
    shutil.copy(tokens, data)
    (data.parent / "meta.json").write_text('{"vocab_size": 64, "tokenizer_hash": %s}' % value)
    torch.manual_seed(0)
    save_checkpoint(GPT(GPTConfig.preset("micro", vocab_size=64, block_size=32)), tmp_path / "base",
                    {"tokenizer_hash": "ab" * 32})
    model = ("--init", tmp_path / "base") if mode == "finetune" else ("--preset", "micro", "--block-size", 32)
    r = cli("--mode", mode, *model, "--data", data, "--max-steps", 2, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {data.parent / 'meta.json'}: \"tokenizer_hash\" must be a string "
                                           f"(the tokenizer's sha256), not {json.loads(value)!r}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode, args, given", [
    ("finetune", ("--n-layer", 8), "--n-layer 8"),
    ("finetune", ("--preset", "small"), "--preset small"),
    ("lora", ("--vocab-size", 128, "--block-size", 64), "--vocab-size 128, --block-size 64"),
    ("finetune", ("--no-bias",), "--no-bias")])
def test_a_model_shape_flag_is_refused_where_the_init_checkpoint_has_the_shape(tokens, tmp_path, mode, args, given,
                                                                              cli):
    # finetune and lora built the --init checkpoint's model, left these out and exited 0
    import train as T
    r = cli("--mode", mode, "--init", _base(tmp_path), "--data", tokens, *args, "--max-steps", 2,
            "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {given}: for --mode pretrain only, which builds the model; "
                                           f"--mode {mode} keeps the shape of its --init checkpoint\n")
    assert not (tmp_path / "out").exists()
    T.check_config(TrainConfig(mode=mode, init=str(tmp_path / "base"), dropout=0.1))  # dropout is every mode's


@pytest.mark.parametrize("mode, args, given", [
    ("finetune", ("--merge",), "--merge"),
    ("pretrain", ("--lora-r", 4, "--lora-alpha", 8), "--lora-r 4, --lora-alpha 8.0"),
    ("pretrain", ("--lora-targets", "c_attn", "--use-rslora"), "--lora-targets c_attn, --use-rslora"),
    ("finetune", ("--lora-dropout", 0.1), "--lora-dropout 0.1")])
def test_an_adapter_flag_is_refused_outside_lora_mode(tokens, tmp_path, mode, args, given, cli):
    # no adapter was trained, none merged: the flags were left out and the run exited 0
    model = ("--init", _base(tmp_path)) if mode == "finetune" else ("--preset", "micro", "--vocab-size", 64,
                                                                    "--block-size", 32)
    r = cli("--mode", mode, *model, "--data", tokens, *args, "--max-steps", 2, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {given}: for --mode lora only, which trains an adapter; "
                                           f"--mode {mode} trains none\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("given", ["--data", "--init"])
def test_a_directory_for_a_token_file_or_a_file_for_a_checkpoint_is_named_for_what_it_is(tokens, corpus, tmp_path,
                                                                                        given, cli):
    # they were "no such token file" and "passport.jsonl/model.safetensors: no such checkpoint"
    if given == "--data":
        args = ("--preset", "micro", "--vocab-size", 64, "--block-size", 32, "--data", tokens.parent)
        says = f"{tokens.parent}: is a directory, not a token file; give the .bin file of tokens"
    else:
        args = ("--mode", "finetune", "--init", corpus / "passport.jsonl", "--data", tokens)
        says = (f"--init {corpus / 'passport.jsonl'}: is a file, not a checkpoint directory; give the checkpoint's "
                "directory or its model.safetensors")
    r = cli(*args, "--max-steps", 2, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {says}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["run.json", "run.pt", "run.safetensors"])
def test_an_out_named_as_a_file_is_refused_on_the_command_line(tokens, tmp_path, name, cli):
    # it made a directory run.json, which would pass for a file; --export-hf refused such a name already
    out = tmp_path / name
    r = cli("--data", tokens, "--preset", "micro", "--vocab-size", 64, "--block-size", 32, "--max-steps", 2,
            "--out", out)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: {out}: ends in {out.suffix}, as a file's name does, but --out writes a directory (its " \
                       "train_state.safetensors, log.jsonl and model.safetensors); give a directory's path\n"
    assert not out.exists()
    # the ladder names a unit's directory after its id, which may hold a dot: train() takes such a directory
    if out.suffix != ".safetensors":  # which save_checkpoint would take for the model file itself
        assert train(TrainConfig(data=str(tokens), out_dir=str(out), max_steps=2, **MICRO)).steps == 2


def test_a_deleted_unit_copy_is_named_as_check_names_it(corpus, tmp_path, cli):
    # it was "[Errno 2] No such file or directory: '.../units/prim.jsonl'"
    c = tmp_path / "corpus"
    shutil.copytree(corpus, c)
    (c / "units" / "prim.jsonl").unlink()
    r = cli("--corpus", c, "--units", "all", "--preset", "micro", "--max-steps", 2, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {c / 'units' / 'prim.jsonl'}: missing (unit 'prim' was added)\n")
    assert not (tmp_path / "out").exists()


def test_init_and_init_hf_together_are_refused(tokens, tmp_path):
    with pytest.raises(TrainError, match=r"^--init .*base and --init-hf gpt2: give one of them$"):
        train(TrainConfig(mode="finetune", init=str(_base(tmp_path)), init_hf="gpt2", data=str(tokens),
                          out_dir=str(tmp_path / "out"), max_steps=2, **MICRO))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("vocab, block, memory, needs, has", [(100_000_000, 64, 16 * 2 ** 30, "95.4 GiB", "16.0 GiB"),
                                                              (300, 32, 2 ** 20, "1.8 MiB", "1.0 MiB")])
def test_a_model_whose_training_state_cannot_fit_in_memory_is_one_line_naming_its_sizes(corpus, tmp_path, monkeypatch,
                                                                                      vocab, block, memory, needs,
                                                                                      has, cli):
    # --vocab-size 100000000 was a DefaultCPUAllocator traceback; nothing is allocated to find out (the memory is
    # the test's: a 1 MiB machine shows that a micro model is measured too)
    import train as T
    monkeypatch.setattr(T, "memory_of", lambda device: memory)
    r = cli("--mode", "pretrain", "--corpus", corpus, "--units", "primitive", "--preset", "micro", "--max-steps", 2,
            "--vocab-size", vocab, "--block-size", block, "--out", tmp_path / "out")
    n = (vocab + block) * 64 + 12 * 2 * 64 ** 2  # the embeddings and the blocks' matrices
    assert (r.returncode, r.stderr) == (2, f"error: a model of vocab_size {vocab}, block_size {block}, n_layer 2 and "
                                           f"n_embd 64 has {n:,} parameters at least; training {n:,} of them takes "
                                           f"{needs} (weights, gradients, AdamW's two moments), more than the "
                                           f"{has} of memory of cpu; "
                                           "choose smaller sizes\n")
    assert not (tmp_path / "out").exists()


def test_an_init_model_whose_training_state_cannot_fit_is_refused_without_advice_its_flags_cannot_follow(
        tokens, tmp_path, monkeypatch, cli):
    # the sizes of a checkpoint are its own: "choose smaller sizes" would name flags that do not apply to it
    import train as T
    monkeypatch.setattr(T, "memory_of", lambda device: 2 ** 16)
    r = cli("--mode", "finetune", "--init", _base(tmp_path), "--data", tokens, "--max-steps", 2,
            "--out", tmp_path / "out")
    n = MICRO_N + 32 * 64  # every parameter, the positions' too: the model is there to count
    assert (r.returncode, r.stderr) == (2, f"error: the --init model, of vocab_size 64, block_size 32, n_layer 2 and "
                                           f"n_embd 64 has {n:,} parameters; training {n:,} of them takes "
                                           f"{16 * n / 2 ** 20:.1f} MiB (weights, gradients, AdamW's two "
                                           "moments), more than the 0.1 MiB of memory of cpu; train it where there "
                                           "is more memory\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode", ["pretrain", "finetune", "lora"])
def test_a_micro_batch_whose_activations_cannot_fit_in_memory_is_one_line_naming_the_flag(tokens, tmp_path,
                                                                                        monkeypatch, mode, cli):
    # --batch-size 3000000 was a DefaultCPUAllocator traceback where memory is limited, and where it is overcommitted
    # a process the kernel kills later without a word; the model's state alone fits
    import train as T
    monkeypatch.setattr(T, "memory_of", lambda device: 16 * 2 ** 30)
    model = ("--preset", "micro", "--vocab-size", 64, "--block-size", 32) if mode == "pretrain" else \
        ("--init", _base(tmp_path))
    r = cli("--mode", mode, *model, "--data", tokens, "--batch-size", 3_000_000, "--max-steps", 2,
            "--out", tmp_path / "out")
    act = 4 * 3_000_000 * 32 * (8 * 2 * 64 + 64)  # 4 bytes, 8 numbers a layer and one a vocabulary entry, per token
    assert act / 2 ** 30 == pytest.approx(389.1, abs=0.05)
    assert r.returncode == 2
    assert r.stderr.startswith("error: --batch-size 3000000: a micro-batch of 3000000 sequences of 32 tokens keeps "
                               "389.1 GiB of activations at least, which with the model's ")
    assert r.stderr.endswith(" is more than the 16.0 GiB of memory of cpu; choose a smaller --batch-size "
                             "(a larger --grad-accum keeps the batch)\n")
    assert not (tmp_path / "out").exists()


def test_the_memory_floor_passes_every_preset_at_its_batch_on_the_machine_it_is_meant_for():
    # the floor refuses only the impossible: micro and tiny fit a 2 GiB laptop, the rest an 80 GB GPU; an 8 GB
    # GPU is refused gpt2's batch of 32 by its activations (the model's state alone is about 2 GB)
    import train as T
    from presets import PRESETS
    for name, p in PRESETS.items():
        config, batch = GPTConfig(**p["model"]), p["ladder"].get("batch_size", 16)
        device, have = (torch.device("cpu"), 2 * 2 ** 30) if name in ("micro", "tiny") else (torch.device("cuda"), 80e9)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(T, "memory_of", lambda device: have)
            T.check_fits(config, device, batch)
            m.setattr(T, "memory_of", lambda device: 8e9)
            if name == "gpt2":
                with pytest.raises(TrainError, match=r"^--batch-size 32: .* keeps 7.6 GiB of activations at least"):
                    T.check_fits(config, device, batch)


def test_an_out_below_a_file_is_one_line_naming_the_flag_and_the_file(tokens, tmp_path, cli):
    (tmp_path / "afile").write_text("mine")
    out = tmp_path / "afile" / "out"
    r = cli("--data", tokens, "--preset", "micro", "--vocab-size", 64, "--block-size", 32, "--max-steps", 2,
            "--out", out)
    assert (r.returncode, r.stderr) == (2, f"error: --out {tmp_path / 'afile'}: is a file, not a directory, so {out} "
                                           "cannot be made there\n")
    assert (tmp_path / "afile").read_text() == "mine"


# ----------------------------------------------------------------------------- refused before the first step

@pytest.mark.parametrize("how", ["same", "link", "lora merge"])
def test_an_out_that_is_the_init_is_refused_before_training_and_leaves_it_as_it_was(tokens, tmp_path, how, cli):
    # it trained, then wrote its model over the checkpoint it started from (the one a passport records), exit 0
    base = _base(tmp_path)
    out = base
    if how == "link":
        out = tmp_path / "link"
        out.symlink_to(base)
    mode = ("--mode", "lora", "--merge", "--init", base / "model.safetensors") if how == "lora merge" else \
        ("--mode", "finetune", "--init", base)
    before = snapshot(base, dirs=True)
    r = cli(*mode, "--data", tokens, "--batch-size", 8, "--max-steps", 2, "--out", out)
    assert (r.returncode, r.stderr) == (2, f"error: --out {out / 'model.safetensors'}: is the input it would be made "
                                           "from, which writing it would destroy; write to another directory\n")
    assert snapshot(base, dirs=True) == before  # the same bytes, and no state, log or adapter beside it


@pytest.mark.parametrize("mode, file, how", [
    ("pretrain", "model.safetensors", "same"),
    ("pretrain", "model.safetensors", "link"),
    ("pretrain", "log.jsonl", "same"),
    ("lora", "adapter.safetensors", "same")])
def test_an_output_file_that_is_the_data_is_refused_before_training_and_leaves_it_as_it_was(tokens, tmp_path, mode,
                                                                                           file, how, cli):
    # it trained on the file, then wrote its weights over it (or appended its log to it), exit 0
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(tokens, out / file)
    data = out / file
    if how == "link":
        (tmp_path / "link").symlink_to(out)
        data = tmp_path / "link" / file
    before = snapshot(out, dirs=True)
    init = ("--init", _base(tmp_path)) if mode == "lora" else ("--preset", "micro", "--vocab-size", 64,
                                                               "--block-size", 32)
    r = cli("--mode", mode, *init, "--data", data, "--max-steps", 2, "--out", out)
    assert (r.returncode, r.stderr) == (2, f"error: --out {out / file}: is the input it would be made from, which "
                                           "writing it would destroy; write to another directory\n")
    assert snapshot(out, dirs=True) == before


@pytest.mark.parametrize("how", ["same", "link", "spelled otherwise", "below it"])
def test_an_out_in_the_corpus_directory_is_refused_before_training_and_leaves_it_as_it_was(corpus, tmp_path, how,
                                                                                          cli):
    # it trained, then wrote its model, state, log and snapshots among the corpus's units and shards, exit 0
    c = tmp_path / "corpus"
    shutil.copytree(corpus, c)
    out = {"same": c, "link": tmp_path / "link", "spelled otherwise": c / "units" / "..", "below it": c / "run"}[how]
    if how == "link":
        out.symlink_to(c)
    before = snapshot(c, dirs=True)
    r = cli("--corpus", c, "--units", "primitive", "--preset", "micro", "--block-size", 32, "--max-steps", 2,
            "--out", out)
    assert (r.returncode, r.stderr) == (2, f"error: --out {out / 'train_state.safetensors'}: is inside the --corpus "
                                           f"directory {c}, which holds the corpus and nothing else; write to "
                                           "another directory\n")
    assert snapshot(c, dirs=True) == before  # no model, state or log; no event appended


def test_an_out_holding_the_corpus_trains_and_leaves_the_corpus_data_as_it_was(corpus, tmp_path, cli):
    # no file a run writes lands in the corpus then (as the ladder keeps runs/ladder/corpus beside its runs)
    c = tmp_path / "corpus"
    shutil.copytree(corpus, c)
    before = {k: v for k, v in snapshot(c, dirs=True).items() if k != "passport.jsonl"}
    r = cli("--corpus", c, "--units", "primitive", "--preset", "micro", "--block-size", 32, "--max-steps", 2,
            "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "model.safetensors").is_file()
    assert {k: v for k, v in snapshot(c, dirs=True).items() if k != "passport.jsonl"} == before


@pytest.mark.parametrize("damage", ["torn last line", "broken chain", "other tokenizer"])
def test_a_damaged_corpus_passport_or_tokenizer_is_refused_before_training(corpus, tmp_path, damage, cli):
    # the passport was checked only when the run's event was appended: after training (a torn line), or
    # never (a broken chain, another tokenizer: the event was appended and the run exited 0)
    c = tmp_path / "corpus"
    shutil.copytree(corpus, c)
    passport = c / "passport.jsonl"
    n = len(passport.read_bytes().splitlines())
    if damage == "torn last line":
        with open(passport, "ab") as f:
            f.write(b'{"event":"unit_ver')
        says = (f"{passport}:{n + 1}: incomplete final line (a crash mid-append?); run `python curriculum.py check "
                "CORPUS --repair` to drop it")
    elif damage == "broken chain":
        lines = passport.read_bytes().split(b"\n")
        lines[0] = lines[0].replace(b'"vocab_size":', b'"vocab_size":1', 1)  # the init event, which line 2 follows
        passport.write_bytes(b"\n".join(lines))
        says = (f"{passport}:2: line 2 does not follow line 1 (it records another sha256 than line 1's): a line "
                "edited, removed, reordered or repeated")
    else:
        tok = json.loads((c / "tokenizer.json").read_text())
        (c / "tokenizer.json").write_text(json.dumps(dict(tok, special_tokens={})))
        says = f"{c / 'tokenizer.json'}: the tokenizer does not match the passport's init event"
    before = snapshot(c, dirs=True)
    r = cli("--corpus", c, "--units", "primitive", "--preset", "micro", "--block-size", 32, "--max-steps", 2,
            "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {says}\n")
    # no model, state or log; no event appended
    assert not (tmp_path / "out").exists() and snapshot(c, dirs=True) == before


@pytest.mark.parametrize("mode, file, args", [
    ("pretrain", "model.safetensors", ()),
    ("pretrain", "train_state.safetensors", ("--resume",)),
    ("pretrain", "log.jsonl", ()),
    ("lora", "adapter.safetensors", ()),
    ("lora", "model.safetensors", ("--merge",)),
    ("pretrain", "snapshots/step-000001/model.safetensors", ("--snapshot-steps", "1"))])
def test_an_output_file_that_is_a_directory_is_refused_before_training(tokens, tmp_path, mode, file, args, cli):
    # refused only when it was written, after training, leaving the resume state and the log behind
    out = tmp_path / "out"
    (out / file).mkdir(parents=True)
    before = snapshot(out, dirs=True)
    init = ("--init", _base(tmp_path)) if mode == "lora" else ("--preset", "micro", "--vocab-size", 64,
                                                               "--block-size", 32)
    r = cli("--mode", mode, *init, "--data", tokens, "--max-steps", 2, *args, "--out", out)
    assert (r.returncode, r.stderr) == (2, f"error: --out {out / file}: is a directory, where the output file "
                                           "would be written\n")
    assert snapshot(out, dirs=True) == before
