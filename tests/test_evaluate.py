"""evaluate.py: probe scoring, intervals, perplexity, the verification gate and the comparison (scored here,
written by report.py)."""

import json
import math
import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tiktoken
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluate as E  # noqa: E402
import report as R  # noqa: E402
from evaluate import EvalError  # noqa: E402
from lora import LoRAConfig, attach, save_adapter  # noqa: E402
from common import sha256_file  # noqa: E402
from model import GPT, GPTConfig, save_checkpoint  # noqa: E402
from in_process import ctrl_c, run_main  # noqa: E402

COLORS = ["red", "blue", "green", "gold", "amber", "violet"]
NAMES = ["zib", "morp", "quell", "tavi", "brun", "skell", "yorra", "fent", "plov", "drisk", "vemm", "glon"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Micro models gain nothing from a second thread, and lose a lot when the cores are busy."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def byte_tokenizer():
    """A byte-level tiktoken encoding (no corpus needed): 256 byte tokens and <|endoftext|>."""
    gpt2_pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    return tiktoken.Encoding("bytes", pat_str=gpt2_pattern,
                             mergeable_ranks={bytes([i]): i for i in range(256)},
                             special_tokens={"<|endoftext|>": 256})


def micro(vocab_size, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig.preset("micro", vocab_size=vocab_size))


def fact_probes(unit="facts"):
    """One colour fact per invented name, four choices each, answers spread over the colours."""
    probes = []
    for i, name in enumerate(NAMES):
        answer = COLORS[i % len(COLORS)]
        others = [c for c in COLORS if c != answer][i % 3:i % 3 + 3]
        choices = sorted([answer] + others, key=lambda c: (i * 7 + COLORS.index(c)) % 5)
        probes.append({"probe": f"The colour of the {name} is", "answer": answer, "choices": choices,
                       "type": "recall", "unit": unit})
    return probes


def memorize(model, tokenizer, probes, steps=150, lr=3e-3, answer_only=False):
    """A plain Adam loop on the sentences "prompt answer" (one per row, right-padded), learning
    every token or only the answer's."""
    rows = [([tokenizer.eot_token] + tokenizer.encode_ordinary(p["probe"]),
             tokenizer.encode_ordinary(f" {p['answer']}.")) for p in probes]
    T = max(len(a) + len(b) for a, b in rows)
    x = torch.zeros(len(rows), T - 1, dtype=torch.long)
    y = torch.full((len(rows), T - 1), -1, dtype=torch.long)
    for i, (prompt, answer) in enumerate(rows):
        ids = torch.tensor(prompt + answer)
        start = len(prompt) - 1 if answer_only else 0
        x[i, :len(ids) - 1], y[i, start:len(ids) - 1] = ids[:-1], ids[1 + start:]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def score_probes_loop(model, tokenizer, probes, norm="sum", device="cpu"):
    """The reference score_probes is checked against: one forward pass per choice, and exact match
    by model.generate."""
    block, results = model.config.block_size, []
    model.eval()
    for i, p in enumerate(probes):
        prompt, conts = E._encode_probe(tokenizer, p, i, tokenizer.eot_token)
        prompt = prompt[-(block + 1 - max(map(len, conts))):]  # one context for every choice
        logprobs = []
        for cont in conts:
            ids = torch.tensor(prompt + cont, device=device)
            logits, _ = model(ids[None, :-1])
            logp = logits[0, -len(cont):].float().log_softmax(-1)
            lp = logp.gather(1, ids[-len(cont):, None]).sum().item()
            logprobs.append(E._norm(lp, len(cont), norm))
        answer = tokenizer.encode_ordinary(" " + p["answer"])
        out = model.generate(torch.tensor([prompt[-block:]], device=device), len(answer), temperature=0)
        results.append(E._result(p, logprobs, out[0, -len(answer):].tolist() == answer))
    return results


# ----------------------------------------------------------------------------- statistics


def test_wilson_interval_matches_known_values():
    assert E.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert E.wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert E.wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert E.wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert E.wilson(0, 0) == (0.0, 1.0)


def test_wilson_interval_always_holds_the_observed_accuracy():
    # rounding once put 6/6's upper end at 1 - 1e-16, below the accuracy, and a plot's error bar below zero
    assert E.wilson(6, 6)[1] == 1.0 and E.wilson(0, 11)[0] == 0.0
    assert all(lo <= k / n <= hi for n in range(1, 120) for k in range(n + 1) for lo, hi in [E.wilson(k, n)])


def test_bootstrap_diff_is_paired_and_says_no_difference_for_identical_models():
    a = [True, False] * 50
    assert E.bootstrap_diff(a, a) == (0.0, 0.0, 0.0)
    diff, lo, hi = E.bootstrap_diff([True] * 60 + [False] * 40, [True] * 30 + [False] * 70)
    assert diff == pytest.approx(0.3) and 0.15 < lo < 0.3 < hi < 0.45
    with pytest.raises(ValueError, match="same probes"):
        E.bootstrap_diff([True], [True, False])


def test_describe_difference_says_higher_lower_or_no_difference():
    assert E.describe_difference("A", 0.62, "B", 0.50, (0.12, 0.05, 0.19)) == \
        "A (62%) is higher than B (50%) (+12 points, 95% CI +5 to +19)"
    assert "is lower than" in E.describe_difference("A", 0.4, "B", 0.5, (-0.1, -0.2, -0.01))
    assert E.describe_difference("A", 0.5, "B", 0.45, (0.05, -0.03, 0.12)).startswith("no difference detectable")


def test_summarize_groups_by_unit_level_and_type_with_chance():
    results = [{"unit": "u", "type": "recall", "correct": True, "exact": True, "n_choices": 4},
               {"unit": "u", "type": "inference", "correct": False, "exact": False, "n_choices": 2},
               {"unit": "v", "type": "recall", "correct": True, "exact": False, "n_choices": 4}]
    s = E.summarize(results, levels={"u": 0, "v": 1})
    assert s["overall"]["n"] == 3 and s["overall"]["correct"] == 2
    assert s["overall"]["chance"] == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert s["by_unit"]["u"]["acc"] == 0.5 and s["by_level"]["1"]["acc"] == 1.0
    assert s["by_type"]["inference"]["chance"] == 0.5
    assert (s["by_type"]["recall"]["lo"], s["by_type"]["recall"]["hi"]) == E.wilson(2, 2)


def test_answer_frequency_answers_with_the_choice_its_unit_s_documents_mention_most():
    probe = lambda q, answer, choices, unit="u": {"probe": q, "answer": answer, "choices": choices,
                                                 "type": "recall", "unit": unit}
    docs = {"u": ["The dax eats grass. The wug eats Grass too.", "The fep eats moss; grassland is no grass."],
            "v": ["The dax eats moss."]}
    probes = [probe("q1", "grass", ["moss", "grass", "bark"]), probe("q2", "moss", ["grass", "moss"]),
              probe("q3", "moss", ["moss", "grass"], "v")]
    # unit u: grass 3 times (a whole word, any case: not "grassland"), moss once; unit v: moss once
    assert [r["pred"] for r in E.answer_frequency(probes, docs)] == ["grass", "grass", "moss"]
    assert [r["correct"] for r in E.answer_frequency(probes, docs)] == [True, False, True]
    assert E.answer_frequency([], docs) == []
    # a choice is counted without its article: "each florp", "a kind of florp" are mentions of "a florp"
    # (florp 3 times, wug and ant twice; with its article "a florp" only once)
    docs = {"u": ["Each florp hums. The dax is a kind of florp. A florp sings. A wug is a wug, an ant an ant."]}
    kinds = [probe("q4", "a florp", ["a wug", "a florp"]), probe("q5", "a florp", ["a florp", "an ant"]),
             probe("q6", "the florp", ["a wug", "the florp"])]
    assert [r["pred"] for r in E.answer_frequency(kinds, docs)] == ["a florp", "a florp", "the florp"]


def test_association_answers_with_the_choice_the_documents_naming_the_probe_s_entity_mention_most():
    docs = {"u": ["The dax is a kind of florp. Every florp hums.", "The dax is a florp; each florp hums and sleeps.",
                  "The wug sings. Birds sing. Who sings? The wug.", "Moss sings, grass sings, sand sings."]}
    probe = lambda q, answer, cluster=None: {"probe": q, "answer": answer, "choices": ["hums", "sings", "sleeps"],
                                             "type": "inference_cooccur", "unit": "u",
                                             **({"cluster": cluster} if cluster else {})}
    # the dax's documents: hums twice, sleeps once, sings never; the unit's as a whole: sings 7 times
    probes = [probe("What does the dax do?", "hums", "dax"), probe("What does the wug do?", "sings", "wug"),
              probe("What does the daxx do?", "hums", "daxx"), probe("What does it do?", "hums")]
    assert [r["pred"] for r in E.association(probes, docs)][:2] == ["hums", "sings"]
    # no document names "daxx" (a whole word: not "dax"): every choice ties at 0, broken by the hash;
    # a probe without a cluster reads its unit's answer frequency
    assert E.association(probes[2:3], docs)[0]["pred"] == E.answer_frequency(
        [dict(probes[2], choices=["hums", "sings", "sleeps"])], {"u": ["hums sings sleeps"]})[0]["pred"]
    assert E.association(probes[3:], docs)[0]["pred"] == "sings" == E.answer_frequency(probes[3:], docs)[0]["pred"]


def test_answer_frequency_breaks_ties_by_the_probe_so_no_answer_is_favoured():
    """Every choice mentioned alike: a tie on every probe. Taking the first choice would score the
    share of answers in first place; the hash scores about chance whatever the answers' places."""
    probes = [{"probe": f"q{i}", "answer": "a", "choices": ["a", "b", "c", "d"], "unit": "u"} for i in range(400)]
    got = E.summarize(E.answer_frequency(probes, {"u": ["a b c d"]}))["overall"]["acc"]
    assert 0.2 < got < 0.3
    preds = [r["pred"] for r in E.answer_frequency(probes, {"u": ["a b c d"]})]
    assert preds == [r["pred"] for r in E.answer_frequency(probes[::-1], {"u": ["a b c d"]})][::-1]


# ----------------------------------------------------------------------------- scoring


def test_batched_scores_equal_unbatched_for_prompts_of_different_lengths():
    tok, model = byte_tokenizer(), micro(257)
    probes = fact_probes()
    for i, p in enumerate(probes):  # prompts from 6 to 60+ tokens (a longer one is refused), and one that just fits
        p["probe"] = " ".join(["so"] * (i * 10 // 11)) + " " + p["probe"] if i else "Colour"
    longest = max(len(tok.encode_ordinary(" " + c)) for c in probes[1]["choices"])
    probes.append(dict(probes[1], probe="x" * (64 - longest - 15) + " and the zib is"))
    fit = [len(tok.encode_ordinary(p["probe"])) + max(len(tok.encode_ordinary(" " + c)) for c in p["choices"])
           for p in probes]
    assert fit[-1] == 64 and 60 < max(fit[:-1]) < 64 and min(fit) < 15
    batched = E.score_probes(model, tok, probes, batch_size=64)
    for unbatched in (E.score_probes(model, tok, probes, batch_size=1, share_prompts=False),
                      E.score_probes(model, tok, probes, batch_size=1), score_probes_loop(model, tok, probes)):
        for b, u in zip(batched, unbatched):
            np.testing.assert_allclose(b["logprobs"], u["logprobs"], atol=1e-4, rtol=1e-5)
            assert (b["pred"], b["correct"]) == (u["pred"], u["correct"])
        # exact match: teacher-forced argmax (batched) == greedy model.generate (loop)
        assert [b["exact"] for b in batched] == [u["exact"] for u in unbatched]


def test_single_token_choices_share_one_row_and_score_as_one_row_per_choice():
    """With share_prompts, a probe whose choices are single tokens is one forward row; its scores
    must equal scoring each (probe, choice) as its own row."""
    pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    ranks = {bytes([i]): i for i in range(256)} | {f" {c}".encode(): 256 + k for k, c in enumerate("abcd")}
    tok = tiktoken.Encoding("bytes+4", pat_str=pattern, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 260})
    assert all(len(tok.encode_ordinary(" " + c)) == 1 for c in "abcd")
    model = micro(261)
    probes = [{"probe": f"Q: which letter {'is ' * i}here? A: it is", "answer": "abcd"[i % 4],
               "choices": list("abcd"), "type": "recall"} for i in range(9)]
    probes.append(dict(probes[0], choices=["a", "bb", "c", "d"]))  # a two-token choice: rows per choice
    shared = E.score_probes(model, tok, probes, batch_size=4)
    for alone in (E.score_probes(model, tok, probes, batch_size=4, share_prompts=False),
                  score_probes_loop(model, tok, probes)):
        for a, b in zip(shared, alone):
            np.testing.assert_allclose(a["logprobs"], b["logprobs"], atol=1e-4, rtol=1e-5)
            assert (a["pred"], a["exact"]) == (b["pred"], b["exact"])


def test_under_bf16_autocast_the_winner_does_not_depend_on_the_order_of_the_choices(monkeypatch):
    """Token b's embedding is a's scaled by 1.001, so its logit is a's times 1.001: apart in float32, one
    bf16 value (8 mantissa bits) as a rule. Scored from bf16 logits, the tie went to the choice listed first."""
    pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    ranks = {bytes([i]): i for i in range(256)} | {f" {c}".encode(): 256 + k for k, c in enumerate("abcd")}
    tok = tiktoken.Encoding("bytes+4", pat_str=pattern, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 260})
    model = micro(261)
    with torch.no_grad():
        model.lm_head.weight[257] = model.lm_head.weight[256] * 1.001  # tied: wte's row too
    monkeypatch.setattr(E, "autocast", lambda device: torch.autocast("cpu", dtype=torch.bfloat16))
    probes = [{"probe": f"Q: which letter {'is ' * i}here? A: it is", "answer": "a", "choices": list("abcd"),
               "type": "recall"} for i in range(12)]
    ab = E.score_probes(model, tok, probes)
    ba = E.score_probes(model, tok, [dict(p, choices=list("bacd")) for p in probes])
    assert [r["pred"] for r in ab] == [r["pred"] for r in ba]
    assert all(r["logprobs"][0] != r["logprobs"][1] for r in ab)  # a and b: never a tie


def test_mean_norm_divides_each_choice_by_its_token_count():
    tok, model = byte_tokenizer(), micro(257)
    probes = fact_probes()[:3]
    s, m = E.score_probes(model, tok, probes, norm="sum"), E.score_probes(model, tok, probes, norm="mean")
    for p, rs, rm in zip(probes, s, m):
        n = [len(tok.encode_ordinary(" " + c)) for c in p["choices"]]
        np.testing.assert_allclose(rm["logprobs"], np.array(rs["logprobs"]) / n, rtol=1e-5)
    says = re.escape("norm must be 'sum' or 'mean', not 'max'")
    with pytest.raises(EvalError, match=says):
        E.score_probes(model, tok, probes, norm="max")
    # refused before any work: a malformed probe (which would fail "probe 0: missing 'probe'") is never read
    with pytest.raises(EvalError, match=says):
        E.score_probes(model, tok, [{}], norm="max")


def test_model_that_memorized_its_facts_scores_100_percent_with_exact_match():
    tok, probes = byte_tokenizer(), fact_probes()
    model = memorize(micro(257), tok, probes)
    s = E.summarize(E.score_probes(model, tok, probes))["overall"]
    assert s["acc"] == 1.0 and s["exact"] == 1.0 and s["lo"] > s["chance"]
    assert model.training is False


def test_no_probes_left_is_said_so_not_scored_as_a_measurement():
    """Every unit rejected leaves no probe to compare: no 0-point difference, no 0% [0%-100%] accuracy."""
    empty = E.summarize([])
    models = {m: {"summary": empty} for m in ("a", "b")}
    assert E._compare_pair(models, {"a": [], "b": []}, [], [], {}, "a", "b", True, 0) == []
    assert R.cell(empty["overall"]) == "-"
    assert E.describe_vs_chance("a", empty["overall"]) == "a: no probes to score (every unit's probes left out)"


def test_untrained_model_scores_near_chance():
    tok, model, rng = byte_tokenizer(), micro(257), random.Random(0)
    probes = []
    for i in range(200):
        choices = rng.sample(COLORS, 4)
        probes.append({"probe": f"Thing {i} has the colour", "answer": rng.choice(choices), "choices": choices,
                       "type": "recall", "unit": "u"})
    s = E.summarize(E.score_probes(model, tok, probes))["overall"]
    assert s["chance"] == 0.25 and s["lo"] <= 0.25 <= s["hi"]


def test_probe_whose_answer_is_not_a_choice_is_an_error():
    with pytest.raises(EvalError, match="not one of its choices"):
        E.score_probes(micro(257), byte_tokenizer(), [dict(fact_probes()[0], answer="plaid")])

# ----------------------------------------------------------------------------- perplexity


def test_perplexity_of_a_uniform_model_is_the_vocab_size_and_bpb_uses_utf8_bytes():
    tok, model = byte_tokenizer(), micro(257)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # zero embeddings: all logits 0, a uniform distribution
    texts = ["héllo wörld", "a b c"]
    r = E.perplexity(model, texts, tokenizer=tok, block_size=4, batch_size=2)
    n = sum(len(t.encode()) + 1 for t in texts) - 1  # each text after an eot, the first eot not predicted
    assert r["tokens"] == n and r["ppl"] == pytest.approx(257, rel=1e-4)
    # bits per byte leaves out the predicted eot, which is no text: one byte token per byte, log2(257) each
    assert r["bpb"] == pytest.approx(math.log2(257)) and r["bytes"] == sum(len(t.encode()) for t in texts)
    assert E.bits_per_byte(8 * math.log(2), 8) == pytest.approx(1.0)


def test_a_corpus_bits_per_byte_leaves_out_its_end_of_text_tokens_too(world, corpus_dir):
    import curriculum as C
    corpus, model = C.Corpus(corpus_dir), E.load_model(world / "base")[0]
    toks = corpus.tokens("prim", "val")
    assert (np.asarray(toks) == corpus.tokenizer.eot_token).any()  # documents are separated by <|endoftext|>
    one = E.perplexity(model, toks, tokenizer=corpus.tokenizer, max_tokens=1 << 16)
    pooled = E.corpus_perplexity(model, corpus, ["prim"])
    assert pooled["bpb"] == pytest.approx(one["bpb"]) and pooled["loss"] == pytest.approx(one["loss"])
    assert pooled["bpb"] < E.bits_per_byte(one["loss_sum"], one["bytes"])  # the eot's loss is no text's


def test_perplexity_windows_do_not_depend_on_batch_size():
    model, tokens = micro(257), np.random.default_rng(0).integers(0, 256, 500)
    a, b = E.perplexity(model, tokens, batch_size=1), E.perplexity(model, tokens, batch_size=16)
    assert a["tokens"] == 499 and a["loss"] == pytest.approx(b["loss"], rel=1e-5)

# ----------------------------------------------------------------------------- the gate (on a real corpus)


def header(uid, kind="knowledge", level=0):
    return {"unit": uid, "kind": kind, "level": level, "title": uid, "concepts": [uid], "requires": [],
            "source": "tests", "license": "CC0"}


def write_unit(path, head, docs, probes=()):
    lines = [head] + [{"text": d} for d in docs] + [{k: p[k] for k in ("probe", "answer", "choices", "type")}
                                                    for p in probes]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A corpus (primitive text, two knowledge units), a random base, an adapter that memorized the
    'facts' unit, an untouched (zero) adapter, and a checkpoint of another base."""
    import curriculum as C
    d = tmp_path_factory.mktemp("world")
    probes = fact_probes("facts")
    files = [write_unit(d / "prim.jsonl", header("prim", "primitive"),
                        [f"The sun rises over hill {i} and the birds sing." for i in range(6)]),
             write_unit(d / "facts.jsonl", header("facts", level=1),  # the facts, not in the probes' words
                        [f"Everyone knows the {n} and its {p['answer']} colour." for n, p in zip(NAMES, probes)],
                        probes),
             write_unit(d / "other.jsonl", header("other", level=2),
                        ["A glim is a kind of stone.", "A drov is a kind of tree."],
                        [{"probe": "The glim is a kind of", "answer": "stone", "choices": ["stone", "tree"],
                          "type": "recall"}])]
    C.init(d / "corpus", files, vocab_size=320)
    C.add(d / "corpus", files, log=lambda *_: None)
    corpus = C.Corpus(d / "corpus")
    meta = {"tokenizer_hash": corpus.tokenizer_hash, "mode": "pretrain", "tokens": 1234, "seconds": 5.0}
    base = micro(corpus.vocab_size, seed=0)
    with torch.no_grad():  # stands in for pretraining: a random GPT's tied embeddings are too small for
        base.transformer.wte.weight.mul_(5)  # a frozen head to make confident predictions through LoRA
    save_checkpoint(base, d / "base", meta)
    save_checkpoint(micro(corpus.vocab_size, seed=1), d / "other_base", meta)
    adapter_meta = {"tokenizer_hash": corpus.tokenizer_hash, "units": ["facts"]}
    attach(base, LoRAConfig(r=8, lora_alpha=16))
    save_adapter(base, d / "zero", adapter_meta)  # B = 0: changes nothing, must fail the gate
    memorize(base, corpus.tokenizer, probes, steps=150, lr=1e-2, answer_only=True)
    save_adapter(base, d / "good", adapter_meta)
    return d


@pytest.fixture
def corpus_dir(world, tmp_path):
    """A fresh copy of the world's corpus, so each test sees its own passport."""
    return shutil.copytree(world / "corpus", tmp_path / "corpus")


@pytest.fixture
def verify_cli(capsys):
    """evaluate.py verify in this process (on the one thread one_thread sets), as subprocess.run gives its result."""
    def run(corpus_dir, world, adapter, model="base", unit="facts", *extra):
        return run_main(E.main, ["verify", corpus_dir, "--unit", unit, "--model", world / model, "--adapter",
                                 world / adapter, *extra], capsys)
    return run


def verified_events(corpus_dir):
    import curriculum as C
    return C.Corpus(corpus_dir).passport.events("unit_verified")


def test_verify_passes_a_memorized_adapter_and_records_it(world, corpus_dir):
    r = E.verify(corpus_dir, "facts", world / "base", world / "good")
    assert r["passed"] and r["reasons"] == []
    assert r["after"]["acc"] == 1.0 and r["after"]["lo"] > r["after"]["chance"] > 0
    assert r["before"]["acc"] < 1.0 and r["primitive_ppl"]["before"]["ppl"] > 1
    (ev,) = verified_events(corpus_dir)
    assert ev["unit"] == "facts" and ev["passed"] is True and ev["after"] == r["after"]
    assert ev["adapter_fingerprint"] == sha256_file(world / "good" / "adapter.safetensors")
    assert ev["base_fingerprint"] == r["base_fingerprint"] and ev["thresholds"]["accuracy"] == 0.5


def test_verify_gates_on_half_the_probe_type_asked_or_on_half_of_all_when_the_unit_has_none(world, corpus_dir):
    import curriculum as C
    probes = C.Corpus(corpus_dir).probes("facts")
    r = E.verify(corpus_dir, "facts", world / "base", world / "good")
    assert r["gated"]["types"] == ["recall"] and r["gated"]["after"]["n"] == len(fact_probes()) // 2
    base = E.load_model(world / "base")[0]
    read = C.gated_probes(probes, "recall")[0]
    expected = E.summarize(E.score_probes(base, C.Corpus(corpus_dir).tokenizer, read))["overall"]
    assert r["gated"]["before"] == expected and r["before"]["n"] == len(probes)  # every probe is still scored
    r = E.verify(corpus_dir, "facts", world / "base", world / "zero", gate_on="inference",
                 threshold=0.9)  # none: half of all
    assert r["gated"]["types"] == "all" and r["gated"]["after"]["n"] == (len(probes) + 1) // 2 and not r["passed"]
    r = E.verify(corpus_dir, "facts", world / "base", world / "good", gate_on="all")
    assert r["gated"]["types"] == "all" and r["gated"]["after"]["acc"] == 1.0 and r["passed"]
    assert [e["gated"]["types"] for e in verified_events(corpus_dir)] == [["recall"], "all", "all"]


def test_verify_gates_on_the_probes_curriculum_gate_report_counts(world, corpus_dir):
    import curriculum as C
    for gate_on in ("recall", "inference", "all"):
        r = E.verify(corpus_dir, "facts", world / "base", world / "zero", gate_on=gate_on)
        g = C.gate_report(C.Corpus(corpus_dir), "facts", gate_on)
        assert (r["gated"]["after"]["n"], r["gated"]["types"]) == (g["n"], g["gate_on"] if g["gate_on"] == "all"
                                                                   else [g["gate_on"]])


def test_a_probe_too_long_for_the_block_is_refused_naming_it_before_any_is_scored(world, corpus_dir, monkeypatch):
    """Block 64: a prompt that fits only without its start (often the entity's name) was once cut
    silently, so that "Alpha ..." and "Omega ..." were scored as one question; now it is refused, as a
    choice too long for the block is, naming the probe (its unit and prompt) and the model."""
    import curriculum as C
    model, tok = E.load_model(world / "base")[0], C.Corpus(corpus_dir).tokenizer
    tail = " and".join(f" hill {i}" for i in range(11)) + " is"
    long_choice = ("zq xv " * 8).strip()
    fits = {"probe": "Alpha" + tail, "answer": "red", "choices": ["red", "blue"], "unit": "u"}
    cut = dict(fits, probe="Omega" + tail, choices=["red", long_choice])
    prompt, choice = len(tok.encode_ordinary(cut["probe"])), len(tok.encode_ordinary(" " + long_choice))
    assert prompt + 2 <= 64 < prompt + choice - 1  # without the long choice it fits; with it, the cut takes text
    monkeypatch.setattr(model, "hidden", lambda *a: 1 / 0)  # refused before any forward pass
    says = (f"unit u, probe 'Omega hill 0 and hill 1 and hill 2 and hill 3 a...': its prompt of {prompt} tokens "
            f"and a choice of {choice} do not fit block_size 64 of model base together ({prompt + choice} tokens)")
    with pytest.raises(EvalError, match=re.escape(says)):
        E.score_probes(model, tok, [fits, cut], model_name="base")
    with pytest.raises(EvalError, match=re.escape("probe 'x': a choice of 65 tokens does not fit block_size 64")):
        E.score_probes(micro(257), byte_tokenizer(), [{"probe": "x", "answer": "a" * 64, "choices": ["a" * 64]}])


def test_a_diverged_model_picks_no_choice_and_fails_the_gate(world, corpus_dir):
    """NaN weights give NaN scores: no prediction, so answers listed first do not pass the gate."""
    import curriculum as C
    model = E.load_model(world / "base")[0]
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")
    probes = [dict(p, choices=[p["answer"]] + [c for c in p["choices"] if c != p["answer"]])
              for p in C.Corpus(corpus_dir).probes("facts")]
    results = E.score_probes(model, C.Corpus(corpus_dir).tokenizer, probes)
    assert all(np.isnan(r["logprobs"]).all() for r in results)
    assert [(r["pred"], r["correct"], r["exact"]) for r in results] == [(None, False, False)] * len(probes)
    overall = E.summarize(results)["overall"]
    assert overall["acc"] == 0.0 and E.gate(overall, {}, 0.5, 0.1, True)


def test_verify_measures_retention_of_earlier_verified_units(world, corpus_dir, monkeypatch):
    import curriculum as C
    C.Corpus(corpus_dir).passport.append("unit_verified", unit="other", passed=True)
    # "other" (level 2) comes after "facts": verified since, it was never in this base
    r = E.verify(corpus_dir, "facts", world / "base", world / "good", retention_tolerance=1.0)
    assert r["retention"] == {}
    order = C.Corpus.order
    monkeypatch.setattr(C.Corpus, "order", lambda self, units=None: sorted(order(self, units), key="other".__ne__))
    r = E.verify(corpus_dir, "facts", world / "base", world / "good", retention_tolerance=1.0)
    # one probe: gated with the sample of all earlier units, too few to be gated on its own
    assert set(r["retention"]) == {"the earlier units (1 probes)"}
    ret = r["retention"]["the earlier units (1 probes)"]
    assert ret["before"]["n"] == 1
    # the fall with its paired bootstrap interval: one probe is one cluster, so the interval is the fall
    fall = ret["before"]["acc"] - ret["after"]["acc"]
    assert (ret["fall"]["diff"], ret["fall"]["lo"], ret["fall"]["hi"]) == (fall, fall, fall)


def test_a_retention_fall_comes_with_an_interval_over_clusters():
    probes = [{"probe": f"q{i}", "cluster": f"c{i // 2}"} for i in range(40)]  # 20 clusters of two
    result = lambda correct: {"unit": "u", "type": "recall", "correct": correct, "exact": False, "n_choices": 4}
    before, after = [result(True)] * 40, [result(i % 4 < 2) for i in range(40)]  # every other cluster forgotten
    r = E._retention_entry(probes, before, after)
    assert (r["before"]["acc"], r["after"]["acc"], r["fall"]["diff"]) == (1.0, 0.5, 0.5)
    assert 0.2 < r["fall"]["lo"] < 0.5 < r["fall"]["hi"] < 0.8


class _Probes:
    def __init__(self, sizes):
        self.sizes = sizes

    def probes(self, u):
        return [{"probe": f"{u}-{i}", "unit": u, "type": "recall"} for i in range(self.sizes[u])]

    def gate_reads(self, units):
        import curriculum as C
        return {u: C.gated_probes(self.probes(u), "recall")[0] for u in units}


def test_retention_sample_reads_the_probes_each_unit_s_gate_read():
    import curriculum as C
    corpus = _Probes({"a": 9, "b": 4})
    sample = E.retention_sample(corpus, ["a", "b"])
    read = C.gated_probes(corpus.probes("a"), "recall")[0] + C.gated_probes(corpus.probes("b"), "recall")[0]
    assert len(sample) == 7 and sorted(p["probe"] for p in sample) == sorted(p["probe"] for p in read)


def test_retention_sample_takes_units_in_turn_up_to_its_size_and_keeps_each_unit_s_order():
    corpus = _Probes({"a": 80, "b": 6, "c": 80})  # the gates read 40, 3 and 40 of them
    everything = E.retention_sample(corpus, ["a", "b", "c"])
    assert len(everything) == 83
    sample = E.retention_sample(corpus, ["a", "b", "c"], 30)
    assert len(sample) == 30 and [p["unit"] for p in sample].count("b") == 3
    more = E.retention_sample(corpus, ["a", "b", "c"], 60)
    for u in "ac":  # a unit's sample is a prefix of its fixed order: a larger sample only adds to it
        small, large = ([p["probe"] for p in s if p["unit"] == u] for s in (sample, more))
        assert large[:len(small)] == small and len(small) == 13 + (u == "a")
    groups = E._retention_groups(more)
    assert set(groups) == {"the earlier units (60 probes)"}  # no unit has 30 probes in it
    assert set(E._retention_groups(everything)) == {"the earlier units (83 probes)", "a", "c"}


def test_a_file_recorded_by_a_relative_path_is_checked_from_any_working_directory(world, corpus_dir, tmp_path,
                                                                                  monkeypatch):
    """Trained in tmp_path as runs/m, evaluated from elsewhere: the record still names the file."""
    import curriculum as C
    file = tmp_path / "runs" / "m" / "model.safetensors"
    file.parent.mkdir(parents=True)
    shutil.copy(world / "base" / "model.safetensors", file)
    corpus = C.Corpus(corpus_dir)
    corpus.passport.append("model_trained", mode="pretrain", checkpoint="runs/m/model.safetensors",
                           checkpoint_sha256=sha256_file(file))
    monkeypatch.chdir(world)  # not where it was trained
    assert E.check_recorded(corpus, file, "model_trained")["mode"] == "pretrain"
    assert E.check_recorded(corpus, tmp_path / "elsewhere" / "model.safetensors", "model_trained") is None
    shutil.copy(world / "other_base" / "model.safetensors", file)
    with pytest.raises(E.EvalError, match="sha256 differs"):
        E.check_recorded(corpus, file, "model_trained")
    # a later training of the same name from another directory (exp2/runs/m): its record names this path
    # too, with its own file's sha256, which is no sign that this one changed
    shutil.copy(world / "base" / "model.safetensors", file)  # this file as recorded again
    corpus.passport.append("model_trained", mode="finetune", checkpoint="runs/m/model.safetensors",
                           checkpoint_sha256=sha256_file(world / "other_base" / "model.safetensors"))
    assert E.check_recorded(corpus, file, "model_trained")["mode"] == "pretrain"  # the record of this file
    file.write_bytes(b"neither")
    with pytest.raises(E.EvalError, match="sha256 differs from the passport's model_trained events for its path"):
        E.check_recorded(corpus, file, "model_trained")


def test_a_model_s_compute_comes_from_its_own_event_not_from_one_naming_it_as_init(world, corpus_dir, tmp_path):
    """A checkpoint whose meta lacks its compute (an imported one) takes it from its own event; the
    fine-tune that started from it names it as `init`, and its event comes later."""
    import curriculum as C
    base = tmp_path / "imported"
    save_checkpoint(E.load_model(world / "base")[0], base, {"mode": "import_hf"})
    corpus = C.Corpus(corpus_dir)
    corpus.passport.append("model_trained", mode="pretrain", checkpoint=str(base / "model.safetensors"),
                           checkpoint_sha256=sha256_file(base / "model.safetensors"), out_dir=str(base),
                           tokens=100, flops=600, tokens_total=100, flops_total=600)
    corpus.passport.append("model_trained", mode="finetune", checkpoint=str(tmp_path / "ft" / "model.safetensors"),
                           checkpoint_sha256="0" * 64, out_dir=str(tmp_path / "ft"), init=str(base),
                           tokens=500, flops=3000, tokens_total=600, flops_total=3600)
    info = E._passport_record(corpus, E.load_model(base)[1])
    assert (info["tokens"], info["flops"]) == (100, 600)


def test_a_checkpoint_that_differs_from_its_passport_record_is_refused(world, corpus_dir, tmp_path):
    import curriculum as C
    import shutil
    file = tmp_path / "copy" / "model.safetensors"
    file.parent.mkdir()
    shutil.copy(world / "base" / "model.safetensors", file)
    corpus = C.Corpus(corpus_dir)
    corpus.passport.append("model_trained", mode="pretrain", checkpoint=str(file),
                           checkpoint_sha256=sha256_file(file))
    assert E.check_recorded(corpus, file, "model_trained")["mode"] == "pretrain"
    assert E.check_recorded(corpus, world / "base" / "model.safetensors", "model_trained") is None  # not recorded
    shutil.copy(world / "other_base" / "model.safetensors", file)  # another model under the recorded name
    with pytest.raises(E.EvalError, match="sha256 differs from the passport's model_trained event"):
        E.check_recorded(corpus, file, "model_trained")
    with pytest.raises(E.EvalError, match="sha256 differs"):
        E.compare(corpus_dir, {"m": str(file.parent)}, tmp_path / "report")


def test_gate_fails_on_chance_threshold_and_retention_drop():
    after = {"acc": 0.6, "lo": 0.2, "hi": 0.8, "chance": 0.25}
    assert len(E.gate(after, {}, threshold=0.7)) == 2
    good = dict(after, lo=0.4)
    assert E.gate(good, {}, threshold=0.5) == []
    drop = {"u": {"before": {"acc": 0.9}, "after": {"acc": 0.7}}}
    assert E.gate(good, drop, tolerance=0.3) == [] and "retention of u" in E.gate(good, drop, tolerance=0.1)[0]
    drop["u"]["fall"] = {"diff": 0.2, "lo": 0.05, "hi": 0.35}
    assert E.gate(good, drop, tolerance=0.1) == ["retention of u fell 20% (90% -> 70%; the fall's 95% CI 5% to 35%), "
                                                 "more than the tolerance 10%"]
    # whole percents would read "50% is below the threshold 50%": a decimal shows the miss
    near = {"acc": 0.496, "lo": 0.2496, "hi": 0.7, "chance": 0.25}
    assert E.gate(near, {}, threshold=0.5) == ["accuracy 50% is not clear of chance 25% (95% CI lower bound 24.96%)",
                                               "accuracy 49.6% is below the threshold 50%"]
    fell = {"u": {"before": {"acc": 0.9}, "after": {"acc": 0.796}}}
    assert E.gate(good, fell, tolerance=0.1) == ["retention of u fell 10.4% (90% -> 80%), more than the tolerance 10%"]


def test_the_gate_and_the_comparison_score_an_adapter_as_the_merged_model_it_becomes(world, corpus_dir, tmp_path,
                                                                                      monkeypatch):
    """Under bf16 autocast an adapter's own path and its merged weight round apart: what the gate passes
    and the report reads must be the model the ladder carries on, a plain merged GPT."""
    from lora import lora_layers, merge_files
    adapters_seen, score = [], E.score_probes
    monkeypatch.setattr(E, "score_probes", lambda model, *a, **k: adapters_seen.append(len(lora_layers(model)))
                        or score(model, *a, **k))
    E.verify(corpus_dir, "facts", world / "base", world / "good")
    assert adapters_seen and set(adapters_seen) == {0}
    model, info = E.load_model(f"{world / 'base'}+{world / 'good'}")
    merged, _ = E.load_model(merge_files(world / "base", world / "good", tmp_path / "merged")[0].parent)
    assert not lora_layers(model) and info["mode"] == "lora" and info["trainable_params"] < sum(
        p.numel() for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), merged.state_dict().values()))


def test_verify_cli_fails_an_adapter_that_learned_nothing_exit_1(world, corpus_dir, verify_cli):
    p = verify_cli(corpus_dir, world, "zero", "base", "facts", "--threshold", "0.9")
    assert p.returncode == 1, p.stderr
    assert "FAIL" in p.stdout
    (ev,) = verified_events(corpus_dir)
    assert ev["passed"] is False and ev["reasons"] and ev["before"] == ev["after"]


def test_the_gate_fails_an_adapter_on_a_model_that_knew_the_unit_already(world, corpus_dir, tmp_path, verify_cli):
    """Scored after the adapter alone, a unit its base already knew passes with an adapter that taught
    nothing; the gain over the model without it does not."""
    from lora import load_adapter, merge
    import curriculum as C
    model = E.load_model(world / "base")[0]
    load_adapter(model, world / "good")
    knows = merge(model)
    meta = {"tokenizer_hash": C.Corpus(corpus_dir).tokenizer_hash}
    save_checkpoint(knows, tmp_path / "knows", meta)
    attach(knows, LoRAConfig(r=8, lora_alpha=16))
    save_adapter(knows, tmp_path / "nothing", dict(meta, units=["facts"]))  # B = 0: teaches nothing
    r = E.verify(corpus_dir, "facts", tmp_path / "knows", tmp_path / "nothing")
    g = r["gated"]
    assert g["before"]["acc"] == g["after"]["acc"] == 1.0 and g["after"]["lo"] > g["after"]["chance"]
    assert g["gain"] == {"diff": 0.0, "lo": 0.0, "hi": 0.0} and r["thresholds"]["min_gain"] == 0.1
    assert not r["passed"] and r["reasons"] == ["accuracy changed by +0 points over the model without the adapter "
                                                "(95% CI +0 to +0 points), less than the least gain, 10 points"]
    assert E.verify(corpus_dir, "facts", tmp_path / "knows", tmp_path / "nothing", min_gain=0.0)["passed"]
    # an adapter that taught the unit: its gain, with the interval of a paired bootstrap over what the probes rest on
    p = verify_cli(corpus_dir, world, "good")
    (ev,) = [e for e in verified_events(corpus_dir) if e["adapter_fingerprint"] == sha256_file(world / "good" /
                                                                                            "adapter.safetensors")]
    gain = ev["gated"]["gain"]
    assert ev["passed"] and gain["diff"] == ev["gated"]["after"]["acc"] - ev["gated"]["before"]["acc"] > 0.1
    assert gain["lo"] <= gain["diff"] <= gain["hi"] and gain["lo"] < gain["hi"]
    assert p.returncode == 0 and f"gain {100 * gain['diff']:+.0f} points (95% CI {100 * gain['lo']:+.0f} to " \
        f"{100 * gain['hi']:+.0f})" in p.stdout


def test_the_gate_counts_what_its_probes_rest_on_not_the_probes(world, corpus_dir, monkeypatch):
    """Twelve facts about three creatures: the gate's half, whole creatures, is six probes all right,
    clear of chance as six independent probes (Wilson) but one or two creatures' worth."""
    with_probe_fields(monkeypatch, {p["probe"]: {"cluster": f"creature {i % 3}"} for i, p in enumerate(fact_probes())})
    r = E.verify(corpus_dir, "facts", world / "base", world / "good")
    after = r["gated"]["after"]
    assert after["acc"] == 1.0 and after["n"] >= 4 and after["clusters"] < 3 and E.wilson(after["n"], after["n"])[0] > 0.5
    assert not r["passed"] and r["reasons"] == [f"accuracy 100% rests on {after['clusters']} entities or facts, too "
                                                "few to tell from chance 25% (at least 6)"]
    assert E.verify(corpus_dir, "facts", world / "base", world / "good", clear_of_chance=False)["passed"]


@pytest.mark.parametrize("device, says", [("cuda:9", "--device cuda:9: "), ("tpu", "--device 'tpu': use auto, cpu")])
def test_every_cli_refuses_a_device_it_cannot_use_in_one_line_exit_2(world, corpus_dir, tmp_path, capsys, device,
                                                                       says):
    if device.startswith("cuda") and torch.cuda.device_count() > 9:
        pytest.skip("this machine has a cuda:9")
    for args in (["verify", corpus_dir, "--unit", "facts", "--model", world / "base", "--adapter", world / "good"],
                 ["score", corpus_dir, "--model", world / "base"],
                 ["compare", corpus_dir, f"base={world / 'base'}", "--out", tmp_path / "report"],
                 ["sample", "--corpus", corpus_dir, "--model", world / "base"]):
        p = run_main(E.main, [*args, "--device", device], capsys)
        assert p.returncode == 2 and p.stderr.startswith(f"error: {says}"), (args[0], p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1
    assert verified_events(corpus_dir) == [] and not (tmp_path / "report").exists()


def test_verify_cli_refuses_a_gate_type_no_unit_has_exit_2_and_appends_nothing(world, corpus_dir, verify_cli):
    p = verify_cli(corpus_dir, world, "good", "base", "facts", "--gate-on", "recal")  # read as none here: all types
    assert p.returncode == 2 and p.stderr == "error: --gate-on recal: no unit has probes of that type (all: every " \
        "type)\n" and verified_events(corpus_dir) == []


def test_a_crash_in_verify_exits_2_not_the_1_of_a_failed_gate(world, corpus_dir, capsys, monkeypatch):
    monkeypatch.setattr(E, "score_probes", lambda *a, **k: 1 / 0)
    p = run_main(E.main, ["verify", corpus_dir, "--unit", "facts", "--model", world / "base", "--adapter",
                          world / "good"], capsys)
    assert p.returncode == 2 and "ZeroDivisionError" in p.stderr


def test_verify_cli_refuses_an_adapter_of_another_base_exit_2_and_appends_nothing(world, corpus_dir, verify_cli):
    p = verify_cli(corpus_dir, world, "good", model="other_base")
    assert p.returncode == 2 and p.stderr.startswith("error: ") and len(p.stderr.strip().splitlines()) == 1
    assert "trained on base" in p.stderr and verified_events(corpus_dir) == []


@pytest.mark.parametrize("case", ["unknown unit", "missing checkpoint", "other tokenizer", "broken passport",
                                  "threshold in percent", "negative tolerance", "gain in points"])
def test_verify_bad_input_is_an_error_and_appends_nothing(world, corpus_dir, tmp_path, case):
    args = dict(unit="facts", model_path=world / "base", adapter_path=world / "good")
    if case == "unknown unit":
        args["unit"] = "nope"
    elif case == "missing checkpoint":
        args["model_path"] = tmp_path / "nowhere"
    elif case == "other tokenizer":
        model, meta = __import__("model").load_checkpoint(world / "base")
        save_checkpoint(model, tmp_path / "alien", dict(meta, tokenizer_hash="f" * 64))
        args["model_path"] = tmp_path / "alien"
    elif case == "threshold in percent":
        args["threshold"] = 35  # would fail every unit: "below the threshold 3500%"
    elif case == "negative tolerance":
        args["retention_tolerance"] = -0.1
    elif case == "gain in points":
        args["min_gain"] = 10
    else:
        lines = (corpus_dir / "passport.jsonl").read_text().splitlines(keepends=True)
        lines[1] = lines[1].replace('"level":', '"level": ')  # an edit the hash chain catches
        (corpus_dir / "passport.jsonl").write_text("".join(lines))
    before = (corpus_dir / "passport.jsonl").read_bytes()
    says = {"unknown unit": "unknown unit 'nope'", "missing checkpoint": "nowhere/model.safetensors: no such checkpoint",
            "other tokenizer": "alien: checkpoint was trained with tokenizer ffffffffffff",
            "broken passport": "passport.jsonl:3: line 3 does not follow line 2",
            "threshold in percent": "--threshold 35: a share",
            "negative tolerance": "--retention-tolerance -0.1: a share", "gain in points": "--min-gain 10: a share"}[case]
    with pytest.raises(ValueError, match=re.escape(says)):
        E.verify(corpus_dir, **args)
    assert (corpus_dir / "passport.jsonl").read_bytes() == before

# ----------------------------------------------------------------------------- the comparison


def test_compare_writes_reports_holding_the_numbers_the_api_returned(world, corpus_dir, tmp_path):
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    r = E.compare(corpus_dir, specs, tmp_path / "out", retention_steps=["base", "lora"],
                  controls=[("lora", "base")], samples=1)
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == json.loads(json.dumps(r))
    md = (tmp_path / "out" / "report.md").read_text()
    lora = r["models"]["lora"]
    assert lora["summary"]["by_unit"]["facts"]["acc"] == 1.0 and lora["mode"] == "lora"
    assert r["models"]["base"]["tokens"] == 1234 and "1,234" in md
    # against chance, as between models, probes move with what they rest on (here each probe alone)
    assert r["chance"][1].startswith("lora is above chance (92%, chance 27%: +65 points, 95% interval over what "
                                      "the probes rest on")
    assert R.cell(lora["summary"]["overall"]) in md and R.cell(r["models"]["base"]["summary"]["overall"]) in md
    assert r["retention"]["acc"][1][r["units"].index("facts")] == 1.0
    # the answer-frequency baseline: on the compared probes, a row of the by-type table
    prior = r["answer_frequency"]["by_type"]["recall"]
    assert prior["n"] == lora["summary"]["by_type"]["recall"]["n"] == 13
    # Each probe is answered with the choice the unit's *train* documents mention most. The facts unit's
    # train split holds 11 of its 12 sentences (glon's, a violet one, is in val): every colour twice, but
    # violet once (skell's). So violet, mentioned least, is never picked: skell's and glon's probes
    # (places 6 and 12, answer violet) are wrong. The other's train split holds "A glim is a kind of
    # stone.": stone once, tree never, so the glim's probe (place 13) is right. The other ten facts
    # probes tie at two mentions a choice and the hash of prompt and choice picks; five of those picks
    # are the answer. Without the documents every probe would be a tie: glon's and the glim's bits flip.
    train = {u: corpus_documents(corpus_dir, u) for u in ("facts", "other")}
    assert len(train["facts"]) == 11 and not any("glon" in d for d in train["facts"])
    assert [sum(d.count(f" {c} ") for d in train["facts"]) for c in COLORS] == [2, 2, 2, 2, 2, 1]
    assert train["other"] == ["A glim is a kind of stone."]
    assert r["answer_frequency"]["correct"] == "1110000011001"
    assert (prior["correct"], prior["acc"]) == (6, 6 / 13)
    assert "| answer frequency | " + R.cell(prior) in md
    # the association baseline: these probes name no cluster, so each reads as its unit's answer frequency
    assert r["association"]["correct"] == r["answer_frequency"]["correct"]
    assert "| association | " + R.cell(r["association"]["by_type"]["recall"]) in md
    overall = next(c for c in r["comparisons"] if c["scope"] == "overall")
    assert overall["sentence"] in md and overall["diff"] > 0
    assert all(len(texts) == 1 for texts in lora["samples"].values())
    assert (tmp_path / "out" / "report.png").exists() == (r["plot"] == "report.png")


def corpus_documents(corpus_dir, unit):
    import curriculum as C
    return C.Corpus(corpus_dir).documents(unit, "train")


def test_report_cli_renders_the_same_report_md_from_report_json(world, corpus_dir, tmp_path, capsys):
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    E.compare(corpus_dir, specs, tmp_path / "out", retention_steps=["base", "lora"], controls=[("lora", "base")])
    p = run_main(R.main, ["render", tmp_path / "out" / "report.json", "--out", tmp_path / "again"], capsys)
    assert p.returncode == 0, p.stderr
    for name in ("report.md", "report.json"):
        assert (tmp_path / "again" / name).read_text() == (tmp_path / "out" / name).read_text()


def test_load_model_refuses_an_adapter_on_another_base(world):
    with pytest.raises(ValueError, match="trained on base"):
        E.load_model(f"{world / 'other_base'}+{world / 'good'}")


def test_sample_is_reproducible_from_its_seed():
    tok, model = byte_tokenizer(), micro(257).eval()
    a = E.sample(model, tok, "The colour", n=2, max_new_tokens=8, seed=3)
    assert a == E.sample(model, tok, "The colour", n=2, max_new_tokens=8, seed=3) and len(a) == 2
    # The seed must matter. An untrained micro model's next-token distribution is near uniform over its
    # 257 tokens, and temperature 1 with no top-k cut samples from every one of them: two draws of 16
    # tokens agree with odds of about 257**-16. The seeds are fixed, so this is a fact, not a flaky test.
    draws = {seed: E.sample(model, tok, "The colour", n=2, max_new_tokens=16, temperature=1.0, top_k=0, seed=seed)
             for seed in (3, 4)}
    assert draws[3] != draws[4] and all(t for texts in draws.values() for t in texts)
    assert set(draws[3]).isdisjoint(draws[4]) and draws[3][0] != draws[3][1]  # and each row is a draw of its own
    # temperature 0 is greedy: the text model.generate's argmax continuation decodes to, whatever the seed
    ids = [tok.eot_token] + tok.encode_ordinary("The colour")
    with torch.no_grad():
        new = model.generate(torch.tensor([ids]), 8, temperature=0)[0, len(ids):].tolist()
    assert tok.eot_token not in new and len(new) == 8
    greedy = tok.decode(new)
    assert greedy and greedy not in draws[3] + draws[4]
    assert E.sample(model, tok, "The colour", n=1, max_new_tokens=8, temperature=0) == [greedy]
    assert E.sample(model, tok, "The colour", n=2, max_new_tokens=8, temperature=0, seed=9) == [greedy, greedy]


def test_compare_lists_the_units_the_gate_rejected(world, corpus_dir, tmp_path, verify_cli):
    assert verify_cli(corpus_dir, world, "zero", "base", "facts", "--threshold", "0.9").returncode == 1
    r = E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "out")
    assert r["rejected"] == ["facts"]
    (verdict,) = verified_events(corpus_dir)
    assert r["rejected_reasons"] == {"facts": verdict["reasons"]} and any(
        "below the threshold 90%" in why for why in verdict["reasons"])
    assert "## Rejected units" in (tmp_path / "out" / "report.md").read_text()


def test_compare_refuses_a_directory_where_a_report_file_goes_before_scoring_any_model(world, corpus_dir, tmp_path,
                                                                                       monkeypatch):
    (tmp_path / "out" / "report.png").mkdir(parents=True)
    monkeypatch.setattr(E, "load_model", lambda *a, **k: pytest.fail("a model loaded before the refusal"))
    with pytest.raises(ValueError, match=r"out/report\.png: is a directory, where the output file would be written"):
        E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "out")


def test_a_probe_resting_on_a_rejected_unit_s_fact_is_set_apart_with_its_probes(world, corpus_dir, tmp_path,
                                                                                  monkeypatch):
    """No model after the gate was taught a rejected unit's facts: what follows from them is set apart too."""
    facts = fact_probes()
    assert not E.verify(corpus_dir, "facts", world / "base", world / "zero", threshold=0.9)["passed"]
    r = E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "plain")
    assert r["models"]["base"]["summary"]["overall"]["n"] == 1  # the glim's probe, of a unit not rejected
    with_probe_fields(monkeypatch, {"The glim is a kind of": {"premises": [facts[0]["probe"]]}})
    r = E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "out")
    base = r["models"]["base"]
    assert base["summary"]["overall"]["n"] == 0 and r["comparisons"] == []
    assert base["rejected_summary"]["overall"]["n"] == len(facts) + 1
    assert "Their probes, and those of other units that rest on their facts, apart:" in \
        (tmp_path / "out" / "report.md").read_text()
    # a premise that a unit not rejected asks too (as every rules unit repeats the rulebook) was taught there
    import curriculum as C
    probes = C.Corpus.probes
    monkeypatch.setattr(C.Corpus, "probes", lambda self, u: probes(self, u) + (
        [dict(probes(self, "facts")[0], unit="other")] if u == "other" else []))
    r = E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "taught")
    assert r["models"]["base"]["summary"]["overall"]["n"] == 2  # the glim's probe and other's copy of its premise


def test_compare_leaves_out_the_half_the_gate_read_and_reports_it_apart(world, corpus_dir, tmp_path):
    import curriculum as C
    assert E.verify(corpus_dir, "facts", world / "base", world / "good")["passed"]
    r = E.compare(corpus_dir, {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"},
                  tmp_path / "out", controls=[("lora", "base")])
    corpus = C.Corpus(corpus_dir)
    read = C.gated_probes(corpus.probes("facts"), "recall")[0]
    kept = [p for p in corpus.probes("facts") if p not in read] + corpus.probes("other")
    lora = r["models"]["lora"]
    assert lora["summary"]["overall"]["n"] == len(kept) == 7 and lora["gate_summary"]["overall"]["n"] == 6
    assert lora["gate_summary"]["overall"]["acc"] == 1.0 and r["rejected"] == []
    assert r["probes_sha256"]["compared"] == E.probes_sha256(kept)
    assert r["compared"]["units"] == [p["unit"] for p in kept] == ["facts"] * 6 + ["other"]  # by unit, across seeds
    assert r["probes_sha256"]["gate_read"] == E.probes_sha256(read)
    overall = next(c for c in r["comparisons"] if c["scope"] == "overall")
    assert overall["n"] == overall["clusters"] == 7 and overall["sentence"].startswith("overall: lora (")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| lora | 6 | 100% [61%-100%] |" in md[md.index("## The gate's half"):]


def with_probe_fields(monkeypatch, fields):
    """Give the corpus's probes extra fields (prompt -> dict), as units that carry them would."""
    import curriculum as C
    plain = C.Corpus.probes
    monkeypatch.setattr(C.Corpus, "probes", lambda self, u: [dict(p, **fields.get(p["probe"], {}))
                                                             for p in plain(self, u)])


def test_compare_resamples_the_probes_of_one_cluster_together(world, corpus_dir, tmp_path, monkeypatch):
    import curriculum as C
    with_probe_fields(monkeypatch, {p["probe"]: {"cluster": "colours"} for p in fact_probes()})
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    r = E.compare(corpus_dir, specs, tmp_path / "out", controls=[("lora", "base")])
    corpus = C.Corpus(corpus_dir)
    probes = [p for u in r["units"] for p in corpus.probes(u)]
    correct = {n: [x["correct"] for x in E.score_probes(E.load_model(s)[0], corpus.tokenizer, probes)]
               for n, s in specs.items()}
    overall = next(c for c in r["comparisons"] if c["scope"] == "overall")
    assert (overall["n"], overall["clusters"]) == (13, 2)  # twelve colour probes in one cluster, the glim alone
    assert E.bootstrap_keys(probes) == [("colours",)] * 12 + [(probes[12]["probe"],)]
    expected = E.bootstrap_diff(correct["lora"], correct["base"], ["colours"] * 12 + [12])
    assert (overall["diff"], overall["lo"], overall["hi"]) == expected
    assert expected != E.bootstrap_diff(correct["lora"], correct["base"])


def test_bootstrap_keys_join_the_probes_that_share_a_premise():
    rule = "Q: What does a creature that eats grass smell of? A: It smells of"
    recall = [{"probe": rule, "cluster": "smell:grass"}, {"probe": "Q: What does the dax eat? A:", "cluster": "dax"}]
    chain = [{"probe": f"Q: What does the {c} smell of? A:", "cluster": c,
              "premises": [f"Q: What does the {c} eat? A:", rule]} for c in ("dax", "wug")]
    assert E.bootstrap_keys(chain, recall) == [("dax", "smell:grass"), ("wug", "Q: What does the wug eat? A:",
                                                                        "smell:grass")]
    assert E.bootstrap_keys([{"probe": "q"}, {"probe": "r", "premises": ["q", "s"]}]) == [("q",), ("r", "q", "s")]


def test_compare_leaves_the_probes_of_rejected_units_out_and_reports_them_apart(world, corpus_dir, tmp_path):
    import curriculum as C
    C.Corpus(corpus_dir).passport.append("unit_verified", unit="facts", passed=False)
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    r = E.compare(corpus_dir, specs, tmp_path / "out", retention_steps=["base", "lora"], controls=[("lora", "base")])
    lora = r["models"]["lora"]
    assert r["rejected"] == ["facts"] and r["units"] == ["facts", "other"]
    assert lora["summary"]["overall"]["n"] == 1 and list(lora["summary"]["by_unit"]) == ["other"]
    assert lora["rejected_summary"]["overall"]["n"] == 12 and lora["rejected_summary"]["overall"]["acc"] == 1.0
    assert all(c["n"] == 1 for c in r["comparisons"]) and r["retention"]["units"] == ["other"]
    # one probe, one cluster: a bootstrap interval of no width, which tells nothing
    assert all("too few independent clusters (1) to tell" in c["sentence"] for c in r["comparisons"])
    assert all("n=1)" in s for s in r["chance"])
    md = (tmp_path / "out" / "report.md").read_text()
    rejected_part = md[md.index("## Rejected units"):]
    assert "| lora | 12 | 100% [76%-100%] |" in rejected_part and "lora (100%)" not in md


def test_compare_leaves_a_unit_whose_every_probe_its_gate_read_out_of_the_retention_matrix(world, corpus_dir, tmp_path):
    import curriculum as C
    # "other" has one probe: its gate half is that probe, so no compared probe is left of it
    C.Corpus(corpus_dir).passport.append("unit_verified", unit="other", passed=True,
                                         gated={"types": ["recall"], "after": {"n": 1}})
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    r = E.compare(corpus_dir, specs, tmp_path / "out", retention_steps=["base", "lora"])
    assert list(r["models"]["lora"]["summary"]["by_unit"]) == ["facts"]
    assert r["retention"]["units"] == ["facts"] and len(r["retention"]["acc"]) == 2


def composed(prompt, kind, premises, unit="u"):
    return {"probe": prompt, "type": kind, "premises": premises, "unit": unit}


def test_composition_is_the_accuracy_among_probes_whose_premises_the_model_knows():
    probes = [{"probe": f"fact {i}", "type": "recall", "unit": "u"} for i in range(4)] + [
        composed("a", "inference_id", ["fact 0", "fact 1"]),  # premises right, answer right
        composed("b", "inference_id", ["fact 0", "fact 2"]),  # a premise wrong, answer right
        composed("c", "inference_id", ["fact 1"]),  # premise right, answer wrong
        composed("d", "chain", ["fact 3"]),  # premise right, answer right
        composed("e", "chain", ["fact 9"]),  # premise missing from the probes
        composed("f", "chain", ["fact 0"], unit="gone"),  # a rejected unit's: left out
        {"probe": "g", "type": "inference_ood", "unit": "u"}]  # no premises: left out
    correct = [True, True, False, True, True, True, False, True, True, True, False]
    results = [{"type": p["type"], "correct": c, "exact": c, "n_choices": 4} for p, c in zip(probes, correct)]
    c = E.composition(probes, results, [p for p in probes if p["unit"] != "gone"])
    assert list(c) == ["chain", "inference_id"]
    assert (c["inference_id"]["all"]["n"], c["inference_id"]["all"]["correct"]) == (3, 2)
    assert (c["inference_id"]["given_premises"]["n"], c["inference_id"]["given_premises"]["correct"]) == (2, 1)
    assert (c["inference_id"]["given_premises"]["lo"], c["inference_id"]["given_premises"]["hi"]) == E.wilson(1, 2)
    assert (c["chain"]["all"]["n"], c["chain"]["given_premises"]["n"], c["chain"]["premises_missing"]) == (2, 1, 1)
    assert c["chain"]["given_premises"]["acc"] == 1.0 and c["inference_id"]["premises_missing"] == 0
    # a probe left out of the comparisons (here, one a gate read) is no outcome
    read = E.composition(probes, results, [p for i, p in enumerate(probes) if p["unit"] != "gone" and i != 4])
    assert (read["inference_id"]["all"]["n"], read["inference_id"]["given_premises"]["n"]) == (2, 1)


def test_compare_reports_composition_given_the_premises_per_model(world, corpus_dir, tmp_path, monkeypatch):
    facts = fact_probes()
    with_probe_fields(monkeypatch, {"The glim is a kind of": {"type": "inference_id",
                                                              "premises": [facts[0]["probe"], facts[1]["probe"]]}})
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    r = E.compare(corpus_dir, specs, tmp_path / "out")
    lora, base = r["models"]["lora"]["composition"], r["models"]["base"]["composition"]
    assert list(lora) == ["inference_id"] and lora["inference_id"]["all"] == r["models"]["lora"]["summary"][
        "by_type"]["inference_id"]
    assert lora["inference_id"]["given_premises"]["n"] == 1  # lora knows every colour
    import curriculum as C
    corpus = C.Corpus(corpus_dir)
    probes = [p for u in r["units"] for p in corpus.probes(u)]
    assert base == E.composition(probes, E.score_probes(E.load_model(specs["base"])[0], corpus.tokenizer, probes))
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Composition given the premises" in md
    assert f"| lora | inference_id | {R.cell(lora['inference_id']['all'])} (1) |" in md


def test_compare_counts_tokens_and_flops_from_random_init(world, corpus_dir, tmp_path):
    """From meta's tokens_total / flops_total, else its tokens / flops (older checkpoints), else from
    the passport event that names the checkpoint."""
    import curriculum as C
    from model import load_checkpoint
    model, meta = load_checkpoint(world / "base")
    save_checkpoint(model, tmp_path / "new", dict(meta, tokens=100, flops=5e9, tokens_total=1100, flops_total=6e10))
    unlogged = {k: v for k, v in meta.items() if k != "tokens"}
    save_checkpoint(model, tmp_path / "logged", unlogged)
    C.Corpus(corpus_dir).passport.append("model_trained", checkpoint=str(tmp_path / "logged" / "model.safetensors"),
                                         tokens=300, tokens_total=5000, flops_total=7e12)
    specs = {"new": str(tmp_path / "new"), "old": str(world / "base"), "logged": str(tmp_path / "logged")}
    r = E.compare(corpus_dir, specs, tmp_path / "out")
    assert [(m["tokens"], m["flops"]) for m in r["models"].values()] == [(1100, 6e10), (1234, None), (5000, 7e12)]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| new | pretrain | - | 1,100 | 6e+10 |" in md and "| logged | pretrain | - | 5,000 | 7e+12 |" in md


def test_seeds_cli_aggregates_compare_reports(world, corpus_dir, tmp_path, capsys):
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    r = E.compare(corpus_dir, specs, tmp_path / "seed-0", controls=[("lora", "base")])
    # seed 1: the same models and probes, but its lora is the untouched (B = 0) adapter, so it scores as the
    # base does; a report compare wrote itself, so every part of it agrees with its lora's accuracy
    r1 = E.compare(corpus_dir, dict(specs, lora=f"{world / 'base'}+{world / 'zero'}"), tmp_path / "seed-1",
                   controls=[("lora", "base")])
    p = run_main(E.main, ["seeds", tmp_path / "seed-0" / "report.json", tmp_path / "seed-1" / "report.json",
                          "--out", tmp_path / "agg"], capsys)
    assert p.returncode == 0, p.stderr
    agg = json.loads((tmp_path / "agg" / "report.json").read_text())
    # level 1 (the 12 facts): the good adapter knows all 12; the zero one scores the base's 4 of 12
    accs = [rep["models"]["lora"]["summary"]["by_level"]["1"]["acc"] for rep in (r, r1)]
    assert accs == [1.0, r1["models"]["base"]["summary"]["by_level"]["1"]["acc"]] == [1.0, 4 / 12]
    level1 = agg["models"]["lora"]["level 1"]
    assert level1["values"] == accs and level1["n"] == 2
    assert level1["mean"] == pytest.approx(2 / 3) and level1["sd"] == pytest.approx((1 - 4 / 12) / math.sqrt(2))
    assert agg["models"]["base"]["level 1"]["sd"] == 0.0  # the base is the same model in both
    assert [c["scope"] for c in agg["comparisons"]] == ["overall", "level 1", "level 2", "type recall"]
    assert p.stdout.splitlines()[0] == agg["comparisons"][0]["sentence"]


@pytest.fixture(scope="module")
def curve_run(world):
    """A run's checkpoints: the base fine-tuned on the facts for 0, 20 and 150 steps, each with its
    step and tokens / flops from random init in its meta (the last without flops)."""
    import curriculum as C
    from model import load_checkpoint
    corpus = C.Corpus(world / "corpus")
    model, meta = load_checkpoint(world / "base")
    done = 0
    for step in (0, 20, 150):
        memorize(model, corpus.tokenizer, fact_probes(), steps=step - done, lr=3e-3)
        done = step
        extra = {"tokens_total": 1234 + 100 * step} | ({"flops_total": 1e9 * (1 + step)} if step < 150 else {})
        save_checkpoint(model, world / f"ft-{step}", dict(meta, step=step, **extra))
    return [("ft", step, None, None, str(world / f"ft-{step}")) for step in (0, 20, 150)]


def test_learning_curves_score_each_point_by_type_with_numbers_from_its_checkpoint(world, curve_run):
    import curriculum as C
    from model import load_checkpoint
    curves = E.learning_curves(world / "corpus", curve_run[::-1])  # any order: a run's points come back by step
    points = curves["runs"]["ft"]
    assert [(p["step"], p["tokens"], p["flops"]) for p in points] == [(0, 1234, 1e9), (20, 3234, 21e9),
                                                                       (150, 16234, None)]
    corpus = C.Corpus(world / "corpus")
    probes = [p for u in corpus.order() if corpus.probes(u) for p in corpus.probes(u)]
    assert curves["n"] == 13 and curves["probes_sha256"] == E.probes_sha256(probes)
    results = E.score_probes(load_checkpoint(world / "ft-20")[0], corpus.tokenizer, probes)
    assert points[1]["by_type"] == E.summarize(results)["by_type"] and points[1]["correct"] == [
        r["correct"] for r in results]
    assert points[2]["correct"][:12] == [True] * 12 and points[0]["by_type"]["recall"]["correct"] < 12  # the facts


def test_a_curve_point_is_labelled_with_what_its_checkpoint_holds():
    assert E._point_label({"step": 400, "tokens": 1000, "flops": 7.7e12}) == "step 400, 7.7e+12 FLOPs"
    assert E._point_label({"step": 400, "tokens": 1000, "flops": None}) == "step 400, 1,000 tokens"
    # a checkpoint whose header holds no step: no "step None" in a sentence
    assert E._point_label({"step": None, "tokens": None, "flops": 7.7e12}) == "7.7e+12 FLOPs"
    assert E._point_label({"step": None, "tokens": 1000, "flops": None}) == "1,000 tokens"


def test_compare_puts_learning_curves_with_their_sentences_in_the_report(world, corpus_dir, curve_run, tmp_path):
    curves = E.learning_curves(corpus_dir, [dict(zip(E.CURVE_POINT, p)) for p in curve_run])
    specs = {"base": str(world / "base"), "lora": f"{world / 'base'}+{world / 'good'}"}
    r = E.compare(corpus_dir, specs, tmp_path / "out", curves=curves, curve_references=["base"])
    c = r["curves"]
    assert [p["step"] for p in c["runs"]["ft"]] == [0, 20, 150] and set(c["runs"]["ft"][0]["correct"]) <= {"0", "1"}
    base = r["models"]["base"]["summary"]
    assert c["references"] == {"base": {"overall": base["overall"]["acc"], "recall": base["by_type"]["recall"]["acc"]}}
    first, last = curves["runs"]["ft"][1], curves["runs"]["ft"][2]
    rise = E.describe_rise("ft from step 20, 2.1e+10 FLOPs to step 150, 16,234 tokens",
                           E.bootstrap_diff(last["correct"], first["correct"], list(range(13))), 13)
    assert c["sentences"][1] == f"type recall: {rise}"
    assert c["rises"] == [{"run": "ft", "type": "recall", "rise": "rising"}] and "was still rising" in rise
    assert c["sentences"][0] == "type recall: ft at its last point (step 150, 16,234 tokens) (92%) is higher " \
        "than base (31%) (+62 points, 95% CI +38 to +85)"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Learning curves" in md and f"- {c['sentences'][1]}." in md
    assert "| ft | 20 | 3,234 | 2.1e+10 |" in md
    assert (tmp_path / "out" / "curves.png").exists() == (c["plot"] == "curves.png")


def test_compare_refuses_learning_curves_scored_on_other_probes(world, corpus_dir, curve_run, tmp_path):
    curves = E.learning_curves(corpus_dir, curve_run[:1])
    with pytest.raises(EvalError, match="other probes"):
        E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "out",
                  curves=dict(curves, probes_sha256="0" * 64))


# ----------------------------------------------------------------------------- bad input on the command lines


def one_line_error(p, says):
    """A refusal as the command lines give it: exit 2, one line on stderr that starts with `says`, nothing on stdout."""
    assert p.returncode == 2 and p.stderr.startswith(f"error: {says}"), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == "", (p.stderr, p.stdout)


@pytest.mark.parametrize("size", ["-1", "0"])
def test_verify_cli_refuses_a_batch_size_below_1_and_leaves_the_passport_as_it_was(world, corpus_dir, verify_cli,
                                                                                    size):
    """A batch size of -1 once scored no probe at all and recorded a FAIL: a passed unit counted as rejected."""
    before = (corpus_dir / "passport.jsonl").read_bytes()
    one_line_error(verify_cli(corpus_dir, world, "good", "base", "facts", "--batch-size", size),
                   f"--batch-size {size}: must be a whole number of at least 1")
    assert (corpus_dir / "passport.jsonl").read_bytes() == before


@pytest.mark.parametrize("size", [-1, 0])
def test_every_scoring_function_refuses_a_batch_size_below_1_before_it_writes(world, corpus_dir, tmp_path,
                                                                               capsys, size):
    says = re.escape(f"--batch-size {size}: must be a whole number of at least 1")
    before = (corpus_dir / "passport.jsonl").read_bytes()
    with pytest.raises(EvalError, match=says):
        E.verify(corpus_dir, "facts", world / "base", world / "good", batch_size=size)
    with pytest.raises(EvalError, match=says):
        E.score_probes(micro(257), byte_tokenizer(), fact_probes(), batch_size=size)
    with pytest.raises(EvalError, match=says):
        E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "out", batch_size=size)
    with pytest.raises(EvalError, match=says):
        E.learning_curves(corpus_dir, [("ft", 0, None, None, str(world / "base"))], batch_size=size)
    assert (corpus_dir / "passport.jsonl").read_bytes() == before and not (tmp_path / "out").exists()
    one_line_error(run_main(E.main, ["score", corpus_dir, "--model", world / "base", "--batch-size", size], capsys),
                   f"--batch-size {size}: ")
    one_line_error(run_main(E.main, ["compare", corpus_dir, f"base={world / 'base'}", "--out", tmp_path / "out",
                                     "--batch-size", size], capsys), f"--batch-size {size}: ")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value, says", [
    ("--n", "0", "--n 0: must be a whole number of at least 1"),
    ("--n", "-1", "--n -1: must be a whole number of at least 1"),
    ("--max-new-tokens", "-1", "--max-new-tokens -1: must be a whole number of at least 1"),
    ("--temperature", "nan", "--temperature nan: must be a finite number, 0 (greedy) or more"),
    ("--temperature", "-1", "--temperature -1.0: must be a finite number, 0 (greedy) or more"),
    ("--top-k", "-1", "--top-k -1: must be a whole number, 0 (no cut) or more"),
    ("--seed", "99999999999999999999", "--seed 99999999999999999999: must be a whole number from 0 to 2**32 - 1"),
    ("--seed", "-5", "--seed -5: must be a whole number from 0 to 2**32 - 1")])
def test_sample_cli_refuses_a_setting_out_of_range_naming_the_flag(world, corpus_dir, capsys, flag, value, says):
    p = run_main(E.main, ["sample", "--corpus", corpus_dir, "--model", world / "base", flag, value], capsys)
    one_line_error(p, says)
    assert p.stderr == f"error: {says}\n"


def test_sample_refuses_a_setting_out_of_range_naming_it():
    tok, model = byte_tokenizer(), micro(257)
    for kw, says in ((dict(n=0), "--n 0: "), (dict(max_new_tokens=-1), "--max-new-tokens -1: "),
                     (dict(temperature=float("nan")), "--temperature nan: "), (dict(top_k=-1), "--top-k -1: "),
                     (dict(seed=2 ** 32), f"--seed {2 ** 32}: ")):
        with pytest.raises(EvalError, match=re.escape(says)):
            E.sample(model, tok, "The colour", **kw)


@pytest.mark.parametrize("flag, value, says", [
    ("--samples", "-1", "--samples -1: must be a whole number, 0 (none) or more"),
    ("--seed", "-5", "--seed -5: must be a whole number from 0 to 2**32 - 1"),
    ("--seed", str(2 ** 32), f"--seed {2 ** 32}: must be a whole number from 0 to 2**32 - 1")])
def test_compare_refuses_a_setting_out_of_range_naming_the_flag_and_writes_nothing(world, corpus_dir, tmp_path,
                                                                                    capsys, flag, value, says):
    p = run_main(E.main, ["compare", corpus_dir, f"base={world / 'base'}", "--out", tmp_path / "out", flag, value],
                 capsys)
    one_line_error(p, says)
    assert not (tmp_path / "out").exists()
    with pytest.raises(EvalError, match=re.escape(says)):
        E.compare(corpus_dir, {"base": str(world / "base")}, tmp_path / "out", **{flag[2:]: int(value)})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("names, says", [
    (["m", "m"], "model 'm=BASE': the name 'm' is given twice"),
    (["x|y"], "model 'x|y=BASE': a name must be"),
    (["a/b"], "model 'a/b=BASE': a name must be"),
    (["a:b"], "model 'a:b=BASE': a name must be"),
    (["two\nlines"], "model 'two\\nlines=BASE': a name must be")])
def test_compare_cli_refuses_a_model_name_twice_or_one_that_breaks_the_report(world, corpus_dir, tmp_path, capsys,
                                                                              names, says):
    base = str(world / "base")
    p = run_main(E.main, ["compare", corpus_dir, *(f"{n}={base}" for n in names), "--out", tmp_path / "out"], capsys)
    one_line_error(p, says.replace("BASE", base))
    assert not (tmp_path / "out").exists()


def test_compare_refuses_a_name_that_breaks_the_report_and_takes_the_ladder_s_names(world, corpus_dir, tmp_path):
    for name in ("x|y", "a/b", "a:b", "two\nlines", ""):
        with pytest.raises(EvalError, match="a name must be"):
            E.compare(corpus_dir, {name: str(world / "base")}, tmp_path / "out")
        with pytest.raises(EvalError, match="a name must be"):
            E.learning_curves(corpus_dir, [(name, 0, None, None, str(world / "base"))])
    assert not (tmp_path / "out").exists()
    ladder = ["base", "step1-atoms-00", "merged", "finetune", "scratch-curriculum", "scratch-shuffled"]
    assert list(E.parse_models([f"{n}={world / 'base'}" for n in ladder])) == ladder


@pytest.mark.parametrize("out, says", [("a file", "is a file, where the output directory would be made"),
                                       ("below a file", "is a file, not a directory")])
def test_compare_refuses_an_out_it_cannot_make_before_it_scores(world, corpus_dir, tmp_path, capsys, monkeypatch,
                                                                 out, says):
    (tmp_path / "ladder.json").write_text("{}\n")
    out = tmp_path / "ladder.json" / ("x" if out == "below a file" else "")
    monkeypatch.setattr(E, "score_probes", lambda *a, **k: 1 / 0)  # scoring first would crash, not refuse
    p = run_main(E.main, ["compare", corpus_dir, f"base={world / 'base'}", "--out", out], capsys)
    one_line_error(p, f"{tmp_path / 'ladder.json'}: {says}")
    assert (tmp_path / "ladder.json").read_text() == "{}\n"


def add_unit(corpus_dir, tmp_path, uid, probes):
    """A knowledge unit of one document and these probes, added to the corpus (level 3: after the world's)."""
    import curriculum as C
    f = write_unit(tmp_path / f"{uid}.jsonl", header(uid, level=3), [f"A {uid} stands by the road."], probes)
    C.add(corpus_dir, [f], log=lambda *_: None)


@pytest.mark.parametrize("too_long", ["choice", "prompt"])
def test_score_and_compare_refuse_a_probe_too_long_for_the_block_naming_its_unit_prompt_and_model(
        world, corpus_dir, tmp_path, capsys, too_long):
    """Once "probe 48: a choice of 137 tokens does not fit block_size 64", an index across every selected
    unit's probes naming no unit, prompt or model; and a prompt too long lost its start without a word."""
    import curriculum as C
    hills = " and".join(f" hill {i}" for i in range(40))
    prompt, choices = ("The shade of the long zib is", ["red", "zq" + hills]) if too_long == "choice" else \
        ("The shade of the long zib at" + hills + " is", ["red", "blue"])
    add_unit(corpus_dir, tmp_path, "long", [{"probe": prompt, "answer": "red", "choices": choices, "type": "recall"}])
    tok, base = C.Corpus(corpus_dir).tokenizer, world / "base"
    n_prompt, n_choice = len(tok.encode_ordinary(prompt)), max(len(tok.encode_ordinary(" " + c)) for c in choices)
    says = f"unit long, probe 'The shade of the long zib is': a choice of {n_choice} tokens does not fit " \
        f"block_size 64 of model {base}" if too_long == "choice" else \
        f"unit long, probe '{prompt[:47]}...': its prompt of {n_prompt} tokens and a choice of {n_choice} do not " \
        f"fit block_size 64 of model {base} together ({n_prompt + n_choice} tokens)"
    assert (n_choice > 64) == (too_long == "choice") and n_prompt + n_choice > 64
    before = (corpus_dir / "passport.jsonl").read_bytes()
    for args in (["score", corpus_dir, "--model", base], ["score", corpus_dir, "--model", base, "--units", "long"],
                 ["compare", corpus_dir, f"base={base}", "--out", tmp_path / "out"]):
        p = run_main(E.main, args, capsys)
        one_line_error(p, says)
        assert p.stderr == f"error: {says}\n", p.stderr
    assert (corpus_dir / "passport.jsonl").read_bytes() == before and not (tmp_path / "out").exists()


SELECTORS = "all, verified, rejected, untested, primitive, knowledge, level:N, level:A-B"


@pytest.mark.parametrize("units, says", [
    (["facts", "facts"], "--units facts facts: 'facts' is named twice (its probes would count twice)"),
    (["other,facts", "other"], "--units other,facts other: 'other' is named twice (its probes would count twice)"),
    (["prim"], "--units prim: no probe to score in prim (primitive units have none)"),
    (["primitive"], "--units primitive: no probe to score in prim (primitive units have none)"),
    (["verified"], "--units verified: selects no unit"),
    (["nosuch"], f"--units nosuch: unknown unit or selector 'nosuch' (selectors: {SELECTORS})"),
    ([], "--units: names no unit; name units or selectors, or leave --units out to score every unit"),
    ([" , "], "--units  , : names no unit; name units or selectors, or leave --units out to score every unit")])
def test_score_cli_refuses_a_unit_named_twice_or_a_selection_without_probes(world, corpus_dir, capsys, units,
                                                                             says):
    """A unit named twice was scored twice (n=162 for 81 probes); a unit without probes printed "no probes
    to score" and exited 0; a selector was an "unknown unit"."""
    before = (corpus_dir / "passport.jsonl").read_bytes()
    p = run_main(E.main, ["score", corpus_dir, "--model", world / "base", "--units", *units], capsys)
    one_line_error(p, says)
    assert p.stderr == f"error: {says}\n" and (corpus_dir / "passport.jsonl").read_bytes() == before


@pytest.mark.parametrize("units", [["knowledge"], ["facts", "level:2"], ["facts,other"], ["all"]])
def test_score_cli_takes_the_units_and_selectors_train_takes(world, corpus_dir, capsys, units):
    p = run_main(E.main, ["score", corpus_dir, "--model", world / "base", "--units", *units], capsys)
    n = len(fact_probes()) + 1  # facts' and other's
    assert p.returncode == 0 and f"\n{n} probes in " in p.stdout and f"n={n})" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("controls, says", [
    (["base:ft", "base:ft"], "--controls base:ft: the pair base:ft is given already"),
    (["base:ft", "ft:base"], "--controls ft:base: the pair base:ft is given already"),
    (["base:base"], "--controls base:base: pairs 'base' with itself; a control compares two models")])
def test_compare_refuses_a_control_pair_twice_or_a_model_paired_with_itself(world, corpus_dir, tmp_path, capsys,
                                                                            controls, says):
    """A pair given twice was compared twice (each row of report.md twice); base:base reported "+0 points"."""
    specs = {"base": str(world / "base"), "ft": str(world / "base")}
    before = (corpus_dir / "passport.jsonl").read_bytes()
    p = run_main(E.main, ["compare", corpus_dir, *(f"{n}={s}" for n, s in specs.items()), "--out", tmp_path / "out",
                          "--controls", *controls], capsys)
    one_line_error(p, says)
    assert p.stderr == f"error: {says}\n"
    with pytest.raises(EvalError, match=re.escape(says)):
        E.compare(corpus_dir, specs, tmp_path / "out", controls=[tuple(c.split(":")) for c in controls])
    assert (corpus_dir / "passport.jsonl").read_bytes() == before and not (tmp_path / "out").exists()


def test_compare_refuses_a_retention_step_named_twice(world, corpus_dir, tmp_path, capsys):
    """Its row twice in the retention matrix, as though the accumulation held it twice."""
    p = run_main(E.main, ["compare", corpus_dir, f"base={world / 'base'}", f"ft={world / 'base'}", "--out",
                          tmp_path / "out", "--retention", "base", "ft", "base"], capsys)
    says = "--retention: 'base' is named twice; give each step of the accumulation once"
    one_line_error(p, says)
    assert p.stderr == f"error: {says}\n" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, says", [
    (["--retention", "base", "z"], "--retention: 'z' is not one of the models given (base, ft)"),
    (["--controls", "base:c"], "--controls: 'c' is not one of the models given (base, ft)")])
def test_compare_names_the_option_that_names_an_unknown_model(world, corpus_dir, tmp_path, capsys, args, says):
    p = run_main(E.main, ["compare", corpus_dir, f"base={world / 'base'}", f"ft={world / 'base'}", "--out",
                          tmp_path / "out", *args], capsys)
    one_line_error(p, says)
    assert p.stderr == f"error: {says}\n" and not (tmp_path / "out").exists()


def test_ctrl_c_ends_every_subcommand_in_one_line_exit_130(world, corpus_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(E, "score_probes", ctrl_c)
    monkeypatch.setattr(E, "sample", ctrl_c)
    before = (corpus_dir / "passport.jsonl").read_bytes()
    for args in (["verify", corpus_dir, "--unit", "facts", "--model", world / "base", "--adapter", world / "good"],
                 ["score", corpus_dir, "--model", world / "base"],
                 ["compare", corpus_dir, f"base={world / 'base'}", "--out", tmp_path / "report"],
                 ["sample", "--corpus", corpus_dir, "--model", world / "base"]):
        p = run_main(E.main, args, capsys)
        assert p.returncode == 130 and p.stderr.startswith("interrupted: "), (args[0], p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert (corpus_dir / "passport.jsonl").read_bytes() == before and not (tmp_path / "report").exists()


@pytest.mark.parametrize("where, extra, says", [
    ("corpus/report", [], "is inside the corpus directory"),  # the corpus holds the corpus and nothing else
    ("corpus", [], "is inside the corpus directory"),
    ("out", ["--controls"], "--controls: name the pairs to compare by level and type, as A:B")])
def test_compare_refuses_a_report_in_the_corpus_and_controls_without_a_pair(world, corpus_dir, tmp_path, capsys,
                                                                          where, extra, says):
    out = (corpus_dir / where[len("corpus/"):]) if where.startswith("corpus") else tmp_path / where
    before = sorted(p.name for p in corpus_dir.rglob("*"))
    p = run_main(E.main, ["compare", corpus_dir, f"base={world / 'base'}", "--out", out, *extra], capsys)
    one_line_error(p, f"--out {out}: {says} {corpus_dir}, which" if says.startswith("is inside") else says)
    assert sorted(p.name for p in corpus_dir.rglob("*")) == before and not (tmp_path / "out").exists()


def test_association_reads_a_script_without_spaces_character_by_character():
    """No space marks a word in Han text: a name and a choice are counted wherever they stand."""
    docs = {"u": ["山那边的狐狸住在湖里。狐狸爱湖里的鱼。", "兔子住在山上。"]}
    probe = {"probe": "狐狸住在哪里？", "answer": "湖里", "choices": ["山上", "湖里"], "type": "inference_cooccur",
             "unit": "u", "cluster": "狐狸"}
    assert E.association([probe], docs)[0]["pred"] == "湖里"
    assert E.association([dict(probe, cluster="兔子")], docs)[0]["pred"] == "山上"
