"""
accrete's presets: one table, and a name means one thing everywhere. A preset is a whole
configuration: the model's shape (`model.py --preset`, `train.py --preset`) and the ladder's world
and budgets (`ladder.py --preset`), the fields of Settings, whose defaults are the tiny preset's.
Budgets are epochs over the data a stage reads, so a unit's adapter trains in proportion to its size;
the scratch models get the compute the grown model cost.

    python presets.py            # the table
"""

import dataclasses
from dataclasses import dataclass

from common import option

# copies of each unit's practice (practice.py), each on names of its own. A base answers a unit's frames
# about entities it never saw answered only when it has practised them on many entities: on the three
# example units, 4 copies gave recall of 46-50%, 12 copies 65-69% (README, "Writing a unit")
PRACTICE_COPIES = 12

PRESETS = {
    # the tests: a forward pass in milliseconds, a whole ladder in about two minutes; a gate that rejects only a unit
    # its adapter made worse (plumbing, not science)
    "micro": dict(
        model=dict(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_embd=64),
        ladder=dict(vocab_size=512, batch_size=8, base_epochs=2.0, base_lr=3e-3, lora_epochs=4.0, lora_r=4,
                    lora_alpha=8.0, lora_lr=3e-3, lora_min_steps=1, ft_epochs=2.0, threshold=0.0, min_gain=0.0,
                    tolerance=1.0, clear_of_chance=False, curve="0.5,1")),
    # the default: the whole experiment on a 2-core CPU in minutes
    "tiny": dict(
        model=dict(vocab_size=2048, block_size=128, n_layer=4, n_head=4, n_embd=128),
        ladder=dict()),
    # what anyone with one GPU runs first: all six stages, bf16 and torch.compile, in minutes
    "smoke": dict(
        model=dict(vocab_size=4096, block_size=256, n_layer=6, n_head=6, n_embd=384),
        ladder=dict(vocab_size=4096, batch_size=64, base_epochs=4.0, base_lr=1e-3, lora_epochs=6.0, lora_lr=3e-3,
                    ft_epochs=4.0, ft_lr=5e-4, scratch_lr=1e-3, compile=True)),
    # one GPU: GPT-2 124M's shape with the corpus's own vocabulary, on a 100M-token world
    "small": dict(
        model=dict(vocab_size=8192, block_size=1024, n_layer=12, n_head=12, n_embd=768),
        ladder=dict(vocab_size=8192, world_tokens=100_000_000, batch_size=32, base_epochs=1.0, base_lr=6e-4,
                    lora_epochs=1.0, lora_min_steps=1, lora_lr=2e-3, lora_r=32, lora_alpha=64.0, ft_epochs=1.0,
                    ft_lr=2e-4, scratch_lr=6e-4, retention_probes=512, compile=True)),
    # exactly GPT-2 124M, so real GPT-2 weights can be the base (needs tiktoken's gpt2 encoding files)
    "gpt2": dict(
        model=dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768),
        ladder=dict(tokenizer="gpt2", vocab_size=50257, world_tokens=100_000_000, batch_size=32, base_epochs=1.0,
                    base_lr=6e-4, lora_epochs=1.0, lora_min_steps=1, lora_lr=2e-3, lora_r=32, lora_alpha=64.0,
                    ft_epochs=1.0, ft_lr=2e-4, scratch_lr=6e-4, retention_probes=512, compile=True)),
}


def preset(name):
    """The preset called name; a ValueError naming the choices for any other name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass
class Settings:
    """What a preset sets; every field is also an option of ladder.py."""
    # the model: the preset's shape, any of it overridden
    n_layer: int = option(None, "transformer blocks, instead of the preset's")
    n_head: int = option(None, "attention heads, instead of the preset's")
    n_embd: int = option(None, "embedding width, instead of the preset's")
    block_size: int = option(None, "context length in tokens, instead of the preset's")
    vocab_size: int = option(2048, "the corpus tokenizer's vocabulary size (its BPE is trained to it)")
    tokenizer: str = option("bpe", "bpe: trained on the primitive text; gpt2: tiktoken's (needs its files)",
                            ("bpe", "gpt2"))
    # the world
    world_size: str = option("tiny", "size of the built-in world, where no --world-tokens is set",
                             ("tiny", "small"))
    world_tokens: int = option(None, "instead of a size, a built-in world of about this many tokens")
    world_seed: int = option(0, "the built-in world's seed (its names, facts and documents); with --units, "
                            "the seed of the practice and primitive text added")
    cooccur_docs: str = option("plain", "in the built-in world, what every document naming an inference_cooccur "
                               "creature states beside its membership: plain, its kind's properties; decoys, a "
                               "property of every kind its probe offers, so association answers at chance; split, "
                               "nothing: the plain sentences, its membership a document of its own (data/world/README.md)",
                               ("plain", "decoys", "split"))
    practice_copies: int = option(PRACTICE_COPIES, "with --units: copies of each unit's practice, each on "
                                  "invented names of its own (practice.py)")
    # training, every stage
    batch_size: int = option(16, "sequences per micro-batch")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    seed: int = option(0, "the seed of every training (the world keeps its own)")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps (where it runs: may change when a run continues)")
    compile: bool = option(False, "torch.compile every model that trains")
    # 2 base
    base_epochs: float = option(13.0, "epochs over the primitive units")
    base_lr: float = option(3e-3, "peak learning rate of the base")
    # 3 grow
    lora_epochs: float = option(20.0, "epochs over its own unit for each adapter")
    lora_lr: float = option(2e-2, "adapter learning rate (above full fine-tuning's)")
    lora_min_steps: int = option(100, "fewest steps' worth of its own unit's rows an adapter reads: a small "
                                 "unit's epochs alone are too few steps to learn it")
    lora_warmup: int = option(20, "learning-rate warmup steps of an adapter (at most half its steps): its high "
                              "learning rate reached sooner throws the loss up in the first steps")
    lora_r: int = option(16, "adapter rank")
    lora_alpha: float = option(32.0, "adapter scale numerator (scaling alpha / r)")
    lora_primitive_share: float = option(0.2, "share of an adapter's rows from primitive text")
    lora_replay: float = option(0.4, "share of an adapter's knowledge rows rehearsing the units verified before")
    threshold: float = option(0.35, "the gate: least accuracy on the gated probes after the adapter")
    tolerance: float = option(0.2, "the gate: most the sampled earlier units' accuracy may fall")
    clear_of_chance: bool = option(True, "the gate: the 95% interval's lower bound above chance")
    min_gain: float = option(0.1, "the gate: least rise of the gated accuracy over the model without the adapter "
                             "(a unit the model already knew is not taught by it)")
    gate_on: str = option("recall", "the probe type whose half the gate reads (all: every type)")
    retention_probes: int = option(1024, "most probes the retention check samples from the earlier units' gate halves")
    keep_steps: int = option(8, "merged models kept on disk as milestones (and the latest)")
    # 4 finetune
    ft_epochs: float = option(36.0, "epochs over the verified units")
    ft_lr: float = option(1.2e-2, "fine-tuning peak learning rate")
    ft_primitive_share: float = option(0.1, "share of the fine-tune's rows from primitive text")
    ft_order: str = option("shuffled", "the fine-tune's order of the units: mixed (shuffled) or level by level "
                           "(curriculum, no replay)", ("shuffled", "curriculum"))
    # 5 scratch
    scratch_lr: float = option(3e-3, "scratch models' peak learning rate")
    primitive_share: float = option(0.1, "share of the scratch models' rows from primitive text")
    replay: float = option(0.2, "share of the curriculum run's knowledge rows rehearsing earlier levels, in "
                                "each level after the first")
    schedule: str = option("wsd", "learning-rate schedule of the fine-tune and the scratch models: wsd and "
                           "constant keep what early stages learned; cosine decays it away", ("wsd", "constant", "cosine"))
    compute: float = option(1.0, "scratch compute, in multiples of what the grown model cost")
    curve: str = option("0.25,0.5,0.75,1", "fractions of the scratch compute at which to score the learning curve")
    # 6 compare
    control: str = option("inference_cooccur=0.6,inference_id=0.5,chain=0.5", "the positive control: the "
                          "least accuracy on each probe type (TYPE=ACC,...) that some model must reach to show the "
                          "type can be learned; the results say which models reach it")
    samples: int = option(1, "generations per model for a few fixed prompts, in the report")


# what a run's settings may change as it continues, and seeds pooled may differ in: where it runs and what
# compare reads off the models (generations, the positive control's bars), not what it trains
UNTRAINED = ("device", "samples", "control")


def settings_for(name, **overrides):
    """The Settings of a preset, with any field overridden (None values are ignored)."""
    p = preset(name)
    s = dataclasses.replace(Settings(), **p["ladder"])
    return dataclasses.replace(s, **{k: v for k, v in overrides.items() if v is not None})


# what the code did before a setting existed, where its default (or its preset's value) is now another:
# a run started then is read as it ran. What no value of the setting does is said in words, which
# match no value, so a run from then is refused beside one of now
BEFORE_ADDED = {"ft_order": "curriculum", "min_gain": 0.0, "practice_copies": 1, "lora_min_steps": 1,
                "lora_warmup": "(before the setting: a twentieth of an adapter's steps)"}


def settings_now(recorded, name=None):
    """A ladder's recorded settings as they read now: a setting added since as what the code did then
    (BEFORE_ADDED, else its value in preset `name`; only BEFORE_ADDED's for a name that is no preset
    now), one renamed by its name now (the decoys' flag, cooccur_decoys, as the --cooccur-docs choice it
    became). ladder.py continues a run directory by it; report.py seeds pools seeds by it."""
    now = dataclasses.asdict(settings_for(name)) if isinstance(name, str) and name in PRESETS else {}
    return {**now, **BEFORE_ADDED, **renamed(recorded)}


def renamed(recorded):
    """Recorded settings under the names they have now: the decoys' flag (cooccur_decoys) as the
    --cooccur-docs choice it became."""
    recorded = dict(recorded)
    if "cooccur_decoys" in recorded:
        recorded["cooccur_docs"] = "decoys" if recorded.pop("cooccur_decoys") else "plain"
    return recorded


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description="Print accrete's presets: each one's model shape and ladder budgets.").parse_args()
    for name, p in PRESETS.items():
        print(f"{name}: model {p['model']}")
        print(f"{' ' * len(name)}  ladder {p['ladder'] or '(the defaults of Settings)'}")
