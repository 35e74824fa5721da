"""
The statistics of accrete's comparisons, torch-free: intervals for one accuracy, for a difference
between two models on the same probes, and the plain sentences they allow.
"""

import math

import numpy as np


def wilson(k, n, z=1.96):
    """Wilson score interval for k successes in n trials; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_diff(correct_a, correct_b, n_boot=2000, seed=0):
    """Paired bootstrap over the same probes: (acc_a - acc_b, 2.5th, 97.5th percentile)."""
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"bootstrap_diff: {a.size} vs {b.size} results; both models must score the same probes")
    if a.size == 0:
        return 0.0, 0.0, 0.0
    d = a - b
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def pct(x):
    return f"{100 * x:.0f}%"


def describe_difference(name_a, a, name_b, b, diff_interval):
    """One plain sentence on what the paired interval allows one to say about acc(a) - acc(b)."""
    diff, lo, hi = diff_interval
    acc_a, acc_b = (s["acc"] if isinstance(s, dict) else s for s in (a, b))
    ci = f"{100 * diff:+.0f} points, 95% CI {100 * lo:+.0f} to {100 * hi:+.0f}"
    if lo > 0:
        return f"{name_a} ({pct(acc_a)}) is higher than {name_b} ({pct(acc_b)}) ({ci})"
    if hi < 0:
        return f"{name_a} ({pct(acc_a)}) is lower than {name_b} ({pct(acc_b)}) ({ci})"
    return f"no difference detectable between {name_a} ({pct(acc_a)}) and {name_b} ({pct(acc_b)}) ({ci})"


def describe_vs_chance(name, s):
    """One plain sentence on a model's accuracy against chance, from its Wilson interval."""
    ci = f"{pct(s['acc'])}, 95% CI {pct(s['lo'])} to {pct(s['hi'])}, chance {pct(s['chance'])}, n={s['n']}"
    if s["lo"] > s["chance"]:
        return f"{name} is above chance ({ci})"
    if s["hi"] < s["chance"]:
        return f"{name} is below chance ({ci})"
    return f"{name} is not distinguishable from chance ({ci})"


def gate_feasibility(n, chance, threshold=0.5, clear_of_chance=True):
    """What evaluate.gate asks of n probes at this chance level (accuracy >= threshold and, with
    clear_of_chance, the 95% Wilson lower bound > chance): min_correct, the fewest of n correct that
    pass (None: none do), can_pass, and min_perfect, the fewest probes a perfect score passes with."""
    passes = lambda k, m: k / m >= threshold and (not clear_of_chance or wilson(k, m)[0] > chance)
    min_correct = next((k for k in range(n + 1) if passes(k, n)), None) if n else None
    min_perfect = None
    if threshold <= 1 and not (clear_of_chance and chance >= 1):  # else no score passes
        min_perfect = 1  # a perfect score's lower bound, m / (m + z^2), rises to 1: this loop ends
        while not passes(min_perfect, min_perfect):
            min_perfect += 1
    return {"min_perfect": min_perfect, "min_correct": min_correct, "can_pass": min_correct is not None}
