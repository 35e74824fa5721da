"""
accrete's presets: one table, and a name means one thing everywhere. A preset is a whole
configuration: the model's shape (`model.py --preset`, `train.py --preset`) and the ladder's world
and budgets (`ladder.py --preset`). Budgets are epochs over the data a stage reads, so a unit's
adapter trains in proportion to its size; the scratch models get the compute the grown model cost.

    python presets.py            # the table
"""

PRESETS = {
    # the tests: a forward pass in milliseconds, a whole ladder in about a minute; a gate that rejects only a unit
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


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description="Print accrete's presets: each one's model shape and ladder budgets.").parse_args()
    for name, p in PRESETS.items():
        print(f"{name}: model {p['model']}")
        print(f"{' ' * len(name)}  ladder {p['ladder'] or '(the defaults of ladder.Settings)'}")
