"""
The statistics of accrete's comparisons, torch-free: intervals for one accuracy, for a difference
between two models on the same probes, and the plain sentences they allow.
"""

import functools
import math

import numpy as np

# float noise in an accuracy or a difference of them (a mean over seeds, a bar met by rounding): values
# closer than this are the same value to every comparison here
NOISE = 1e-9


def wilson(k, n, z=1.96):
    """Wilson score interval for k successes in n trials; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the interval holds p; rounding can put an end a hair past it (1 - 1e-16 for k = n)
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def bootstrap_diff(correct_a, correct_b, clusters=None, n_boot=2000, seed=0):
    """Paired bootstrap of acc_a - acc_b over the same probes: (difference, 2.5th, 97.5th percentile).
    clusters, one entry per probe, names what each probe rests on: a label (the fact or entity), or a
    tuple of labels (an entity and a rule it applies, say). Every label gets an independent weight,
    its count among as many labels drawn with replacement, and a probe the product of its labels'
    weights: with one label a probe this resamples whole clusters, so probes that rest on one fact
    count as the one observation they are; with several it is the multiway ("pigeonhole") bootstrap
    for crossed factors (Owen and Eckles 2012). It is conservative: a label nested in another (a
    creature asked about one rule) adds the probes' own noise again. RESULTS.md measures by how much.
    None: each probe on its own."""
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"bootstrap_diff: {a.size} vs {b.size} results; both models must score the same probes")
    if clusters is not None and len(clusters) != a.size:
        raise ValueError(f"bootstrap_diff: {len(clusters)} cluster labels for {a.size} probes")
    if a.size == 0:
        return 0.0, 0.0, 0.0
    d = a - b
    rng = np.random.default_rng(seed)
    if clusters is None:
        idx = rng.integers(0, d.size, size=(n_boot, d.size))
        means = d[idx].mean(axis=1)
    else:
        weights = _label_weights(clusters, n_boot, rng)
        total = weights.sum(axis=1)
        means = (weights @ d)[total > 0] / total[total > 0]  # the mean over every probe drawn
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _label_weights(clusters, n_boot, rng):
    """(n_boot, probes) bootstrap weights: each label's count among len(labels) labels drawn with
    replacement, a probe's weight the product of its labels' counts (labels numbered as they appear)."""
    ids = {}
    rows = [[ids.setdefault(k, len(ids)) for k in dict.fromkeys(c if isinstance(c, tuple) else (c,))]
            for c in clusters]
    k = len(ids)
    table = np.full((len(rows), max(map(len, rows))), k)  # k: a label of weight 1 pads the short rows
    for i, r in enumerate(rows):
        table[i, :len(r)] = r
    draws = rng.integers(0, k, size=(n_boot, k)) + (k + 1) * np.arange(n_boot)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_boot * (k + 1)).reshape(n_boot, k + 1).astype(float)
    counts[:, k] = 1.0
    weights = counts[:, table[:, 0]]
    for j in range(1, table.shape[1]):
        weights *= counts[:, table[:, j]]
    return weights


@functools.lru_cache(maxsize=None)
def t_quantile(df):
    """The 0.975 quantile of Student's t with df degrees of freedom: the |t| whose two-sided p-value
    (t_pvalue) is 0.05, found by bisection, so that an interval leaves out 0 exactly where its t-test's p
    is below 0.05."""
    if df < 1:
        raise ValueError(f"t_quantile: df must be at least 1, not {df}")
    lo, hi = 0.0, 16.0  # the quantile is at most 12.71 (df 1)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_pvalue(mid, df) > 0.05 else (lo, mid)
    return hi


def t_interval(values):
    """Mean of values (one per seed) with its sd and 95% t-interval: {n, mean, sd, lo, hi}. Missing
    values (None, nan) are left out; with fewer than two left, sd and the interval are None."""
    v = [float(x) for x in values if x is not None and not math.isnan(x)]
    n = len(v)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "lo": None, "hi": None}
    mean = sum(v) / n
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "lo": None, "hi": None}
    # values alike but for float noise (three seeds of 0.1 have an sd of 1.7e-17) have no spread: that
    # noise would give a t-test a p near 0
    alike = max(v) - min(v) < 1e-12
    sd = 0.0 if alike else math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half}


def has_spread(t):
    """Whether a t_interval has an interval to read: two values or more that differ (sd 0 where all alike)."""
    return bool(t["sd"])


def t_test(values):
    """The two-sided p-value of a zero mean from values (one per seed): the paired t-test that t_interval's
    95% interval inverts. None where that interval has no width (fewer than two values, or all alike)."""
    t = t_interval(values)
    if not has_spread(t):
        return None
    return t_pvalue(t["mean"] / (t["sd"] / math.sqrt(t["n"])), t["n"] - 1)


def t_pvalue(t, df):
    """P(|T| >= |t|) for Student's T with df degrees of freedom: the regularized incomplete beta function
    I_x(df/2, 1/2) at x = df / (df + t^2)."""
    a, b, x = df / 2, 0.5, df / (df + t * t)
    flip = x > (a + 1) / (a + b + 2)  # the continued fraction converges fast below this point: I_x(a, b) = 1 - I_1-x(b, a)
    if flip:
        a, b, x = b, a, 1.0 - x
    if x <= 0.0:
        return 1.0 if flip else 0.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    value = front * _beta_fraction(a, b, x) / a
    return 1.0 - value if flip else value


def _beta_fraction(a, b, x, tiny=1e-300):
    """The continued fraction of the incomplete beta function, by the modified Lentz method."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for aa in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # the even step, then the odd one
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d, c = 1.0 + aa * d, 1.0 + aa / c
            d, c = 1.0 / (d if abs(d) > tiny else tiny), (c if abs(c) > tiny else tiny)
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def holm(pvalues):
    """Holm's step-down adjusted p-values, in the given order (None kept as None): a hypothesis whose
    adjusted p is below alpha is rejected with the family-wise error rate over all of them at most alpha."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted, running = [None] * len(pvalues), 0.0
    for k, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * p))  # monotone: never below a smaller p's
        adjusted[i] = running
    return adjusted


def decimals(x, against=0.0):
    """How many decimals x, in percent, needs so as not to read as `against` where it is not: 0 unless
    rounding would hide the comparison a sentence makes (a bound that reads as the chance it clears,
    a "higher" whose lower bound reads "+0"). Rounds numerically, so -0.04 points never reads "-0.0"."""
    d = 0
    if abs(x - against) < NOISE:  # equal but for float noise (a mean over seeds): nothing to tell apart
        return d
    while round(100 * x, d) == round(100 * against, d) and d < 6:
        d += 1
    return d


def pct(x, against=None):
    """x in whole percent; given `against` (the chance, bar or threshold it is compared with), with
    as many decimals as it takes not to read as that value where it differs (see decimals)."""
    return f"{100 * x:.{0 if against is None else decimals(x, against)}f}%"


def signed_points(x):
    """A difference in signed percentage points: whole points, or as many decimals as it takes not to
    show a nonzero value as 0 (a "higher" whose lower bound reads "+0" looks like a contradiction); a
    zero but for float noise (a mean of rises and falls over seeds) reads "+0", never "-0"."""
    return f"{100 * (0.0 if abs(x) < NOISE else x):+.{decimals(x)}f}"


# A bootstrap over fewer independent observations (clusters) than this cannot tell a difference at 5%:
# even all of them alike are as likely as 2 * 0.5**5 = 6% under no difference (a sign test), yet the
# percentile interval of 5 alike has zero width. The sentences say so instead of reading it.
MIN_CLUSTERS = 6


def _too_few(clusters):
    return clusters is not None and clusters < MIN_CLUSTERS


def points_range(lo, hi):
    """An interval of a difference of accuracies in signed points, "-5 to +8". A t-interval over few
    seeds can reach past ±100 points, where no difference of accuracies lies: its bounds read ±100."""
    return f"{signed_points(max(-1.0, lo))} to {signed_points(min(1.0, hi))}"


def describe_difference(name_a, a, name_b, b, diff_interval, clusters=None):
    """One plain sentence on what the paired interval allows one to say about acc(a) - acc(b); clusters:
    how many independent things (entities, premises) the bootstrap resampled, None for no such count."""
    diff, lo, hi = diff_interval
    acc_a, acc_b = (s["acc"] if isinstance(s, dict) else s for s in (a, b))
    a, b = f"{name_a} ({pct(acc_a, acc_b)})", f"{name_b} ({pct(acc_b, acc_a)})"  # never "33% is higher than 33%"
    ci = f"{signed_points(diff)} points, 95% CI {points_range(lo, hi)}"
    if _too_few(clusters):
        return f"too few independent clusters ({clusters}) to tell {a} from {b} ({ci})"
    if lo > 0:
        return f"{a} is higher than {b} ({ci})"
    if hi < 0:
        return f"{a} is lower than {b} ({ci})"
    return f"no difference detectable between {a} and {b} ({ci})"


def rise(diff_interval, clusters=None):
    """Whether a run still gained between two points (last minus previous): "rising", "fell" (the whole
    interval below 0), "none" (no rise detectable) or "too few" clusters to tell (as describe_difference's)."""
    _, lo, hi = diff_interval
    return "too few" if _too_few(clusters) else "rising" if lo > 0 else "fell" if hi < 0 else "none"


def describe_rise(name, diff_interval, clusters=None):
    """One plain sentence on rise()'s verdict."""
    diff, lo, hi = diff_interval
    ci = f"{signed_points(diff)} points, 95% CI {points_range(lo, hi)}"
    return {"too few": f"too few independent clusters ({clusters}) to tell whether {name} was still rising ({ci})",
            "rising": f"{name} was still rising ({ci})", "fell": f"{name} fell ({ci})",
            "none": f"no rise detectable for {name} ({ci})"}[rise(diff_interval, clusters)]


def describe_vs_chance(name, s, diff=None, clusters=None):
    """One plain sentence on a model's accuracy against chance. diff: (accuracy - chance, lo, hi) from
    bootstrap_diff over what the probes rest on (clusters of them), the interval the sentence then
    reads; without it, the Wilson interval, which takes the probes as independent. A bound that would
    round to the chance gets the decimals that tell them apart, and so does the chance."""
    if not s["n"]:
        return f"{name}: no probes to score (every unit's probes left out)"
    chance = s["chance"]
    if diff is not None:
        d, lo, hi = diff
        ci = (f"{pct(s['acc'])}, chance {pct(chance)}: {signed_points(d)} points, 95% interval over what the probes "
              f"rest on {signed_points(lo)} to {signed_points(hi)} points, n={s['n']}")
        if _too_few(clusters):
            return f"{name}: too few independent clusters ({clusters}) to tell from chance ({ci})"
        return f"{name} is {_against(lo, hi, 0.0)} chance ({ci})"
    lo, hi = s["lo"], s["hi"]
    d = max(decimals(lo, chance), decimals(hi, chance))
    ci = (f"{pct(s['acc'])}, 95% Wilson interval, the probes taken as independent, {pct(lo, chance)} to "
          f"{pct(hi, chance)}, chance {100 * chance:.{d}f}%, n={s['n']}")
    return f"{name} is {_against(lo, hi, chance)} chance ({ci})"


def _against(lo, hi, level):
    return "above" if lo > level else "below" if hi < level else "not distinguishable from"


def gate_feasibility(n, chance, threshold=0.5, clear_of_chance=True, clusters=None):
    """What evaluate.gate asks of n probes at this chance level (accuracy >= threshold and, with
    clear_of_chance, the lower bound of the 95% bootstrap interval over what they rest on above chance,
    from at least MIN_CLUSTERS clusters): min_correct, the fewest of n correct that pass (None: none
    do), can_pass, and min_perfect, the fewest probes (each on its own entity) a perfect score passes
    with. Counted as if each probe rested on its own entity (clusters: how many they rest on, when
    known, and fewer than MIN_CLUSTERS pass nothing): right answers that bunch in a few need more.
    too_few_clusters: the probes fail for resting on too few entities (more probes about them would
    not pass), not for being too few."""
    def passes(k, m):
        if k / m < threshold:
            return False
        if not clear_of_chance:
            return True
        if min(m, clusters or m) < MIN_CLUSTERS:
            return False
        return bootstrap_diff([1] * k + [0] * (m - k), [0] * m, list(range(m)))[1] > chance  # as verify's

    min_correct = None
    if n and passes(n, n):  # the bootstrap's bound rises with k: the fewest that pass by bisection
        lo, hi = -1, n
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if passes(mid, n) else (mid, hi)
        min_correct = hi
    min_perfect = None
    if threshold <= 1 and not (clear_of_chance and chance >= 1):
        min_perfect = MIN_CLUSTERS if clear_of_chance else 1  # all right: an interval of no width, at 1 - chance
    # probes sharing fewer than MIN_CLUSTERS entities: their number is not what keeps them from passing
    too_few_clusters = bool(clear_of_chance and clusters is not None and clusters < min(n, MIN_CLUSTERS))
    return {"min_perfect": min_perfect, "min_correct": min_correct, "can_pass": min_correct is not None,
            "clusters": clusters, "too_few_clusters": too_few_clusters}
