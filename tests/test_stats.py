"""stats.py: the intervals and differences a comparison reports, torch-free."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import stats as S  # noqa: E402

# two models' correctness on the same 40 probes (drawn once with numpy's default_rng(5))
A = [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1,
     0, 1, 1, 1]
B = [1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0,
     0, 0, 0, 1]


def test_bootstrap_without_clusters_gives_the_per_probe_interval():
    assert S.bootstrap_diff(A, B) == (0.275, 0.075, 0.475)
    assert S.bootstrap_diff(A, B, seed=3) == pytest.approx((0.275, 0.074375, 0.475), abs=1e-12)


def test_bootstrap_with_one_probe_per_cluster_equals_the_unclustered_one_exactly():
    assert S.bootstrap_diff(A, B, clusters=[f"fact {i}" for i in range(40)]) == S.bootstrap_diff(A, B)
    assert S.bootstrap_diff(A, B, clusters=list(range(40)), seed=3) == S.bootstrap_diff(A, B, seed=3)


def test_clustering_perfectly_correlated_duplicates_widens_the_interval_back_to_the_facts_one():
    """Five probes per fact, all answered alike: 200 probes are 40 observations, not 200."""
    a5, b5 = [x for x in A for _ in range(5)], [x for x in B for _ in range(5)]
    facts = [i for i in range(40) for _ in range(5)]
    naive, clustered = S.bootstrap_diff(a5, b5), S.bootstrap_diff(a5, b5, clusters=facts)
    assert naive == (0.275, 0.185, 0.36)  # as if there were 200 independent probes: too narrow
    assert clustered == S.bootstrap_diff(A, B) == (0.275, 0.075, 0.475)
    assert clustered[2] - clustered[1] > 2 * (naive[2] - naive[1])


def test_a_probe_resting_on_two_labels_moves_with_both():
    """40 creatures, each asked one rule's outcome; the rule decides the answer: model a knows rules 0
    and 1, model b none. By creature the 40 probes look independent; they are 4 rules' worth."""
    a, b = [int(i % 4 < 2) for i in range(40)], [0] * 40
    creature, rule = [f"creature {i}" for i in range(40)], [f"rule {i % 4}" for i in range(40)]
    by_creature, by_rule = S.bootstrap_diff(a, b, creature), S.bootstrap_diff(a, b, rule)
    both = S.bootstrap_diff(a, b, list(zip(creature, rule)))
    assert by_creature == S.bootstrap_diff(a, b) and by_creature[1] > 0.3  # too sure
    assert by_rule[1] <= 0.25 and both[1] <= by_rule[1] and both[2] >= by_rule[2] >= 0.75
    assert both[0] == 0.5
    assert S.bootstrap_diff(a, b, [(r,) for r in rule]) == by_rule  # a label alone or in a tuple: the same


def test_the_multiway_bootstrap_adds_the_creatures_noise_to_the_rules():
    """As above, but one creature in five answers against its rule: both factors vary, so resampling
    both is wider than resampling either alone (a bootstrap that read one label of each pair is not)."""
    a, b = [int((i % 4 < 2) != (i % 5 == 0)) for i in range(40)], [0] * 40
    creature, rule = [f"creature {i}" for i in range(40)], [f"rule {i % 4}" for i in range(40)]
    width = lambda d: d[2] - d[1]  # noqa: E731
    both = S.bootstrap_diff(a, b, list(zip(creature, rule)))
    assert width(both) > width(S.bootstrap_diff(a, b, rule)) + 0.1 > width(S.bootstrap_diff(a, b, creature)) + 0.1


def test_bootstrap_refuses_cluster_labels_that_do_not_match_the_probes():
    with pytest.raises(ValueError, match="3 cluster labels for 40 probes"):
        S.bootstrap_diff(A, B, clusters=["x", "y", "z"])


# Student's t 0.975 quantiles from a printed table (three decimals)
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 20: 2.086, 30: 2.042,
           40: 2.021, 60: 2.000, 120: 1.980}


def test_t_quantile_is_the_table_s_and_exact_between_and_past_its_entries():
    assert all(S.t_quantile(df) == pytest.approx(q, abs=6e-4) for df, q in T_TABLE.items())
    # between entries and past them, the exact quantiles (scipy.stats.t.ppf(0.975, df)), never the normal's 1.96
    assert S.t_quantile(35) == pytest.approx(2.03011, abs=1e-5)  # not df 30's 2.042
    assert S.t_quantile(121) == pytest.approx(1.97976, abs=1e-5) and S.t_quantile(200) == pytest.approx(1.97190, abs=1e-5)
    assert S.t_quantile(10_000) == pytest.approx(1.96020, abs=1e-5)
    with pytest.raises(ValueError, match="df must be at least 1"):
        S.t_quantile(0)


def test_t_interval_of_three_seeds():
    t = S.t_interval([0.5, 0.6, 0.7])
    assert t["n"] == 3 and t["mean"] == pytest.approx(0.6) and t["sd"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / 3 ** 0.5  # Student's t quantile at 2 df
    assert (t["lo"], t["hi"]) == pytest.approx((0.6 - half, 0.6 + half))


def test_t_interval_leaves_missing_seeds_out_and_needs_two_values():
    assert S.t_interval([0.2, None, float("nan"), 0.4])["mean"] == pytest.approx(0.3)
    assert S.t_interval([0.2, None])["n"] == 1 and S.t_interval([0.2])["lo"] is None
    assert S.t_interval([]) == {"n": 0, "mean": None, "sd": None, "lo": None, "hi": None}


def test_an_interval_has_spread_only_where_two_values_differ_by_more_than_float_noise():
    assert S.has_spread(S.t_interval([0.1, 0.2])) and S.has_spread(S.t_interval([0.1, 0.1 + 1e-9]))
    # three seeds of 0.1 sum to a mean a rounding away from 0.1: that noise is no spread, and no t-test
    assert not S.has_spread(S.t_interval([0.1, 0.1, 0.1])) and S.t_test([0.1, 0.1, 0.1]) is None
    assert not S.has_spread(S.t_interval([0.1])) and not S.has_spread(S.t_interval([]))


def test_too_few_clusters_tell_nothing_however_alike_they_are():
    """Five probes on five entities, all right for a and wrong for b: the bootstrap's interval has no
    width, but five alike happen one time in sixteen under no difference; six is the fewest that can tell."""
    five = S.bootstrap_diff([1] * 5, [0] * 5, [f"e{i}" for i in range(5)])
    assert five == (1.0, 1.0, 1.0)
    assert S.describe_difference("a", 1.0, "b", 0.0, five, clusters=5) == \
        "too few independent clusters (5) to tell a (100%) from b (0%) (+100 points, 95% CI +100 to +100)"
    assert S.describe_difference("a", 1.0, "b", 0.0, five, clusters=6).startswith("a (100%) is higher than b (0%)")
    assert S.describe_rise("run", five, clusters=1) == \
        "too few independent clusters (1) to tell whether run was still rising (+100 points, 95% CI +100 to +100)"
    s = {"n": 5, "acc": 1.0, "lo": 0.57, "hi": 1.0, "chance": 0.25}
    assert S.describe_vs_chance("m", s, (0.75, 0.75, 0.75), clusters=5).startswith(
        "m: too few independent clusters (5) to tell from chance (100%, chance 25%: +75 points")
    assert S.describe_vs_chance("m", s, (0.75, 0.75, 0.75), clusters=6).startswith("m is above chance")


def test_describe_rise_says_still_rising_above_zero_fell_below_and_no_rise_between():
    assert S.describe_rise("run from step 1 to step 2", (0.1, 0.02, 0.18)) == \
        "run from step 1 to step 2 was still rising (+10 points, 95% CI +2 to +18)"
    assert S.describe_rise("run", (0.05, -0.01, 0.11)) == "no rise detectable for run (+5 points, 95% CI -1 to +11)"
    assert S.describe_rise("run", (-0.17, -0.26, -0.07)) == "run fell (-17 points, 95% CI -26 to -7)"
    assert [S.rise(d) for d in ((0.1, 0.02, 0.18), (0.05, -0.01, 0.11), (-0.17, -0.26, -0.07))] == \
        ["rising", "none", "fell"]
    assert S.rise((0.1, 0.02, 0.18), clusters=5) == "too few" and S.rise((0.1, 0.02, 0.18), clusters=6) == "rising"


def test_a_bound_that_rounds_to_zero_points_shows_a_decimal_so_higher_never_reads_plus_0():
    assert [S.signed_points(x) for x in (0.003, -0.004, 0.0, 0.12, -0.005, 0.0051)] == \
        ["+0.3", "-0.4", "+0", "+12", "-0.5", "+1"]
    assert S.describe_difference("a", 0.6, "b", 0.4, (0.2, 0.003, 0.29)).endswith("(+20 points, 95% CI +0.3 to +29)")


def test_a_t_interval_past_100_points_reads_100():
    """Two seeds, +95 and +90: the t-interval's upper bound is +127, past any difference of accuracies."""
    assert S.describe_difference("a", 0.95, "b", 0.02, (0.925, 0.61, 1.27)).endswith("(+92 points, 95% CI +61 to +100)")
    assert S.describe_rise("run", (-0.9, -1.3, -0.5)) == "run fell (-90 points, 95% CI -100 to -50)"


def test_a_nonzero_difference_never_reads_plus_or_minus_0_0():
    # 0.03 and 0.004 points: one decimal would still print "+0.0" and "-0.0"
    assert [S.signed_points(x) for x in (0.0003, -0.00004)] == ["+0.03", "-0.004"]
    # but float noise is no difference: a mean over seeds that is 0 reads 0, not -0.000000000000
    noise = S.t_interval([0.03, -0.01, -0.02])["mean"]
    assert noise != 0 and S.signed_points(noise) == S.signed_points(-abs(noise)) == "+0"
    a, b = sum((0.1, 0.1, 0.4)) / 3, sum((0.1, 0.4, 0.1)) / 3  # equal means, unequal floats
    assert a != b and S.pct(a, b) == "20%"


def test_pct_against_a_value_adds_the_decimals_that_keep_them_apart():
    assert [S.pct(0.598, 0.6), S.pct(0.496, 0.5), S.pct(0.2503, 0.25)] == ["59.8%", "49.6%", "25.03%"]
    assert [S.pct(0.598), S.pct(0.6, 0.6), S.pct(0.58, 0.6)] == ["60%", "60%", "58%"]  # nothing hidden: whole


def test_above_chance_never_reads_a_lower_bound_equal_to_the_chance():
    above = {"acc": 0.28, "lo": 0.2503, "hi": 0.31, "chance": 0.25, "n": 400}
    wilson = "95% Wilson interval, the probes taken as independent,"
    assert S.describe_vs_chance("step1", above) == \
        f"step1 is above chance (28%, {wilson} 25.03% to 31%, chance 25.00%, n=400)"
    assert S.describe_vs_chance("step1", dict(above, lo=0.2496)) == \
        f"step1 is not distinguishable from chance (28%, {wilson} 24.96% to 31%, chance 25.00%, n=400)"
    assert S.describe_vs_chance("step1", dict(above, lo=0.26)) == \
        f"step1 is above chance (28%, {wilson} 26% to 31%, chance 25%, n=400)"


def test_against_chance_a_clustered_interval_is_read_instead_of_wilson_s():
    """Wilson's 25.03% clears chance; a bootstrap over what the probes rest on, wider, does not."""
    above = {"acc": 0.28, "lo": 0.2503, "hi": 0.31, "chance": 0.25, "n": 400}
    assert S.describe_vs_chance("step1", above, (0.03, -0.054, 0.142)) == \
        "step1 is not distinguishable from chance (28%, chance 25%: +3 points, 95% interval over what the " \
        "probes rest on -5 to +14 points, n=400)"
    assert S.describe_vs_chance("step1", above, (0.03, 0.004, 0.06)).startswith("step1 is above chance")
    assert S.describe_vs_chance("step1", above, (-0.1, -0.2, -0.01)).startswith("step1 is below chance")


def test_a_difference_between_accuracies_that_round_alike_shows_them_apart():
    assert S.describe_difference("a", 0.334, "b", 0.331, (0.003, 0.001, 0.005)) == \
        "a (33.4%) is higher than b (33.1%) (+0.3 points, 95% CI +0.1 to +0.5)"


def test_t_pvalue_is_student_s_two_sided_tail():
    # the printed table's 0.975 quantiles (three decimals) read back as p = 0.05
    assert all(abs(S.t_pvalue(q, df) - 0.05) < 3e-4 for df, q in T_TABLE.items())
    for t in (0.3, 1.7, 4.0, 20.0):  # closed forms: df 1 is Cauchy, df 2 has 1 - t / sqrt(2 + t^2)
        assert S.t_pvalue(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), rel=1e-12)
        assert S.t_pvalue(-t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-12)
    assert S.t_pvalue(0.0, 4) == 1.0


def test_t_test_is_the_test_the_t_interval_inverts():
    v = [0.1, 0.2, 0.15]
    t = S.t_interval(v)
    t_stat = 0.15 / (0.05 / math.sqrt(3))  # mean 0.15, sd 0.05; at 2 df p = 1 - t / sqrt(2 + t^2)
    assert S.t_test(v) == pytest.approx(1 - t_stat / math.sqrt(2 + t_stat ** 2), rel=1e-9)
    assert S.t_test(v) < 0.05 and t["lo"] > 0
    assert S.t_test([0.1, 0.3, -0.1]) > 0.05 and S.t_interval([0.1, 0.3, -0.1])["lo"] < 0
    assert S.t_test([0.1]) is None and S.t_test([0.1, 0.1]) is None and S.t_test([None, 0.1]) is None
    # three seeds of 0.1 have a mean of 0.10000000000000002 and an sd of 1.7e-17: no spread, no test
    assert S.t_test([0.1] * 3) is None and S.t_interval([0.1] * 3)["sd"] == 0.0
    # 36 seeds at t = 2.036 and 2.025 on 35 df (quantile 2.0301, between a printed table's rows 30 and 40):
    # the interval leaves out 0 exactly where the test's p is below 0.05
    for t_stat in (2.036, 2.025):
        sd = 0.1 * math.sqrt(36 / 35)  # that of +-0.1 around the mean, alternating
        v = [t_stat * sd / 6 + 0.1 * (-1) ** k for k in range(36)]
        assert (S.t_test(v) < 0.05) == (S.t_interval(v)["lo"] > 0) == (t_stat > 2.0301)


def test_holm_adjusts_step_down_and_keeps_the_order_and_the_gaps():
    assert S.holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert S.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002]) and S.holm([]) == []
    assert S.holm([0.4, 0.6]) == pytest.approx([0.8, 0.8])  # never above 1, never below a smaller p's
