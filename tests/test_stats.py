"""stats.py: the intervals and differences a comparison reports, torch-free."""

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


def test_bootstrap_refuses_cluster_labels_that_do_not_match_the_probes():
    with pytest.raises(ValueError, match="3 cluster labels for 40 probes"):
        S.bootstrap_diff(A, B, clusters=["x", "y", "z"])
