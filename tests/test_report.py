"""report.py: the comparison report and the aggregate across seeds, from report dicts alone (no torch)."""

import copy
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import report as R  # noqa: E402
from in_process import run_main  # noqa: E402


@pytest.fixture
def run_report(capsys):
    """report.py's command line in this process, from the repository root (or from cwd), as subprocess.run
    gives its result."""
    return lambda *args, cwd=ROOT: run_main(R.main, args, capsys, cwd)


def test_report_imports_neither_torch_nor_evaluate():
    """A fresh interpreter: in this one, other tests have imported both."""
    code = "import sys, report; print(sorted(m for m in ('torch', 'evaluate') if m in sys.modules))"
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stderr


def seed_report(acc, diffs, rejected=(), probes=0.1, n=100):
    """A compare() report reduced to what aggregate_seeds reads: model -> overall and recall accuracy,
    and the curriculum - shuffled differences by scope (each with its bootstrap half-width probes, on
    n probes)."""
    summary = lambda a: {"overall": {"acc": a}, "by_level": {}, "by_type": {"recall": {"acc": a}}}
    return {"units": ["u"], "probes_sha256": {"all": "same"}, "rejected": list(rejected),
            "models": {n: {"summary": summary(a)} for n, a in acc.items()},
            "comparisons": [{"a": "curriculum", "b": "shuffled", "scope": s, "control": True, "diff": d, "n": n,
                             "lo": d - probes, "hi": d + probes} for s, d in diffs.items()]}


def test_aggregate_seeds_gives_means_t_intervals_and_paired_sentences(tmp_path):
    reports = [seed_report({"curriculum": c, "shuffled": s}, {"overall": d, "type recall": e})
               for c, s, d, e in ((0.6, 0.5, 0.10, 0.10), (0.7, 0.5, 0.20, -0.10), (0.65, 0.5, 0.15, 0.05))]
    agg = R.aggregate_seeds(reports, tmp_path)
    cur = agg["models"]["curriculum"]["overall"]
    assert cur["values"] == [0.6, 0.7, 0.65] and cur["mean"] == pytest.approx(0.65) and cur["sd"] == pytest.approx(0.05)
    overall, recall = agg["comparisons"]
    half = 4.302653 * 0.05 / 3 ** 0.5  # the paired differences +10, +20, +15: sd 5 points
    assert (overall["mean"], overall["lo"], overall["hi"]) == pytest.approx((0.15, 0.15 - half, 0.15 + half))
    # the t-interval covers training noise on the one world's probes; each seed's bootstrap, the probes'
    assert overall["probes"] == pytest.approx(0.1)
    # the seeds share the probes: their bootstrap's ±10 does not shrink over seeds, sqrt(12.4² + 10²) = 16
    assert overall["sentence"] == "overall: curriculum (65%) is higher than shuffled (50%) (+15 points, 95% CI +3 " \
        "to +27) across 3 training seeds on one world's probes, but no difference is detectable over a draw of " \
        "probes (seeds and probes: 95% CI -1 to +31)"
    assert recall["sentence"] == "type recall: no difference detectable between curriculum (65%) and shuffled " \
        "(50%) (+2 points, 95% CI -24 to +28) across 3 training seeds on one world's probes; over probes, each " \
        "seed's bootstrap: ±10"
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(agg))
    md = (tmp_path / "report.md").read_text()
    assert "| curriculum | 65% ± 5 [53%-77%] | 65% ± 5 [53%-77%] |" in md
    assert "| overall | curriculum | shuffled | +10, +20, +15 | +15.0 | 5.0 | +2.6 to +27.4 | 10.0 |" in md


def test_results_over_seeds_give_each_seed_s_time_why_its_gate_rejected_and_where_curves_still_rose():
    reports = [seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": d}, rejected=rej)
               for d, rej in ((0.1, ()), (0.2, ("rules",)), (0.15, ()))]
    for r, seconds, rises in zip(reports, (600, 750, 900), ("rising none", "none none", "rising fell")):
        r["stage_seconds"] = {"base": 60, "scratch": seconds - 60}
        r["curves"] = {"rises": [{"run": run, "type": "recall", "rise": v}
                                 for run, v in zip(("curriculum", "shuffled"), rises.split())]}
    reports[1]["rejected_reasons"] = {"rules": ["retention of atoms fell 22% (76% -> 54%), more than the tolerance 20%"]}
    names = [R._seed_name(r, k) for k, r in enumerate(reports)]
    md = R.render_results(RUN, agg=R.aggregate_seeds(reports), reports=reports)
    assert f"Each seed's time, its stages summed: {names[0]} 10.0 min, {names[1]} 12.5 min, {names[2]} 15.0 min." in md
    assert ("Learning curves still rising between their last two points (over a draw of probes): recall in 2 of 6 "
            f"(seed, run) pairs ({names[0]} curriculum recall; {names[2]} curriculum recall).") in md
    assert (f"({names[1]} rules (retention of atoms fell 22% (76% -> 54%), more than the tolerance 20%))") in md
    # reports without these records say nothing of them
    for r in reports:
        del r["stage_seconds"], r["curves"]
    del reports[1]["rejected_reasons"]
    md = R.render_results(RUN, agg=R.aggregate_seeds(reports), reports=reports)
    assert "Each seed's time" not in md and "still rising" not in md.lower() and f"({names[1]} rules)" in md


def test_seeds_name_the_models_some_seed_lacks_and_each_seed_s_notes(tmp_path):
    """A seed whose verified units lie on one level trains no curriculum run, and its report says why: the
    pages across seeds leave that run out of every table, and say so, with each seed's reason."""
    reports = [seed_report({"curriculum": 0.6, "shuffled": 0.5, "merged": 0.4}, {"overall": d}) for d in (0.1, 0.2)]
    reports.append(seed_report({"shuffled": 0.5, "merged": 0.4}, {}))
    reports[2]["notes"] = ["No scratch run in curriculum order: the verified units all lie on level 0."]
    names = [R._seed_name(r, k) for k, r in enumerate(reports)]
    agg = R.aggregate_seeds(reports, tmp_path)
    assert list(agg["models"]) == ["shuffled", "merged"] and agg["comparisons"] == []
    assert agg["lacking"] == {"curriculum": 2} and agg["notes"] == [f"{names[2]}: {reports[2]['notes'][0]}"]
    lacking = "Left out of the tables across seeds, as some seed lacks them: curriculum (in 2 of 3 seeds)."
    for page in ((tmp_path / "report.md").read_text(), R.render_results(RUN, agg=agg, reports=reports)):
        assert f"\n\n{names[2]}: No scratch run in curriculum order: the verified units all lie on level 0.\n\n" \
            f"{lacking}\n\n" in page
    # seeds with every model: no such line
    agg = R.aggregate_seeds(reports[:2])
    assert agg["lacking"] == {} and "Left out of the tables" not in R.render_seeds_markdown(agg)


def test_the_report_across_seeds_given_as_one_run_s_is_named_as_what_it_is(tmp_path, run_report):
    """render and seeds read one run's report.json; the aggregate's is said to be that, with where the
    pages and the seeds' own reports are."""
    reports = [seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": d}) for d in (0.1, 0.2)]
    R.aggregate_seeds(reports, tmp_path / "agg")
    path = tmp_path / "agg" / "report.json"
    for args in (["render", path, "--out", tmp_path / "o"], ["seeds", path, path, "--out", tmp_path / "o"]):
        p = run_report(*args)
        assert p.returncode == 2 and p.stderr == (f"error: {path}: the report across 2 seeds, not one run's report.json; "
                                                  "its pages are report.md beside it (report.py seeds writes them), "
                                                  "and each seed's report.json is in its run directory "
                                                  "(seed-N/report/report.json)\n"), p.stderr
        assert not (tmp_path / "o").exists()


def test_holm_keeps_the_differences_that_hold_for_the_family_of_comparisons(tmp_path):
    """Three comparisons across three seeds: overall's t-test p = 0.0028 (x3: holds), recall's 0.035
    (its own interval leaves out 0, but x2 = 0.07 does not hold for the family), chain's 1."""
    diffs = [{"overall": o, "type recall": r, "type chain": c} for o, r, c in ((0.10, 0.04, 0.1), (0.11, 0.06, -0.1),
                                                                               (0.12, 0.08, 0.0))]
    reports = [seed_report({"curriculum": 0.6, "shuffled": 0.5}, d) for d in diffs]
    agg = R.aggregate_seeds(reports, tmp_path)
    overall, recall, chain = agg["comparisons"]
    assert overall["p"] == pytest.approx(0.0028, abs=1e-4) and overall["holm"] == pytest.approx(3 * overall["p"])
    assert recall["lo"] > 0 and recall["p"] == pytest.approx(0.0351, abs=1e-4)
    assert recall["holm"] == pytest.approx(2 * recall["p"]) and chain["holm"] == chain["p"] == pytest.approx(1.0)
    page = (tmp_path / "report.md").read_text()
    assert ("Holm's correction over these comparisons (3 paired t-tests over seeds, family-wise error 5%): across "
            "seeds, 1 hold: overall curriculum - shuffled.") in page
    assert "| overall | curriculum | shuffled | +10, +11, +12 | +11.0 | 1.0 | +8.5 to +13.5 | 10.0 | 0.0082 |" in page
    results = R.render_results(RUN, agg=agg, reports=reports)
    assert ("Holm's correction over every pair and scope the report compares (3 paired t-tests over seeds, "
            "family-wise error 5%): across seeds, 1 hold: overall curriculum - shuffled.") in results
    # no interval, no test: seeds that agree exactly
    same = R.aggregate_seeds([seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})] * 2)
    assert same["comparisons"][0]["p"] is None and "Holm" not in R.render_seeds_markdown(same).split("say")[-1]


def test_a_difference_larger_than_seeds_and_probes_together_holds_over_a_draw_of_probes():
    reports = [seed_report({"curriculum": c, "shuffled": 0.5}, {"overall": d}, probes=0.05)
               for c, d in ((0.6, 0.10), (0.7, 0.20), (0.65, 0.15))]
    (overall,) = R.aggregate_seeds(reports)["comparisons"]
    assert overall["sentence"].endswith("across 3 training seeds on one world's probes, and over a draw of probes "
                                        "(seeds and probes: 95% CI +2 to +28)")  # sqrt(12.4² + 5²) = 13.4


def test_a_seed_bootstrap_over_too_few_clusters_claims_nothing_over_a_draw_of_probes():
    reports = [seed_report({"curriculum": c, "shuffled": 0.5}, {"overall": d}, probes=0.05)
               for c, d in ((0.6, 0.10), (0.7, 0.20), (0.65, 0.15))]
    reports[1]["comparisons"][0]["clusters"] = 5  # its zero-width or narrow interval is no probe half-width
    (overall,) = R.aggregate_seeds(reports)["comparisons"]
    assert overall["probes"] is None and overall["sentence"].endswith("across 3 training seeds on one world's probes")
    reports[1]["comparisons"][0]["clusters"] = 6
    assert "over a draw of probes" in R.aggregate_seeds(reports)["comparisons"][0]["sentence"]


def test_seeds_that_agree_exactly_form_no_interval():
    reports = [seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})] * 2
    (overall,) = R.aggregate_seeds(reports)["comparisons"]
    assert overall["sd"] == 0.0 and overall["sentence"] == "overall: curriculum (60%) - shuffled (50%) is +10 " \
        "points in each of 2 seeds: no spread across seeds to form an interval; over probes, each seed's " \
        "bootstrap: ±10"
    page = R.render_seeds_markdown(R.aggregate_seeds(reports))  # the tables read them as the sentence does
    assert "| curriculum | 60% in each seed | 60% in each seed |" in page
    assert "| overall | curriculum | shuffled | +10, +10 | +10.0 | 0 | none: every seed alike | 10.0 | - |" in page


def test_the_seeds_table_reads_no_difference_past_100_points():
    reports = [seed_report({"curriculum": a, "shuffled": 0.5}, {"overall": d}) for a, d in ((0.9, 0.4), (0.2, -0.3))]
    page = R.render_seeds_markdown(R.aggregate_seeds(reports))
    # t = 12.706 on 1 df: +5 ± 445 points, which no difference of accuracies reaches
    assert "| overall | curriculum | shuffled | +40, -30 | +5.0 | 49.5 | -100.0 to +100.0 | 10.0 | 0.91 |" in page
    assert "| curriculum | 55% ± 49 [0%-100%] |" in page


def test_the_seeds_table_never_reads_a_small_difference_as_minus_0():
    reports = [seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": d}) for d in (-0.003, 0.1)]
    assert "| overall | curriculum | shuffled | -0.3, +10 |" in R.render_seeds_markdown(R.aggregate_seeds(reports))


def test_seeds_on_probe_sets_of_different_sizes_say_so():
    # seeds whose gates rejected different units compare their models on different probes
    reports = [seed_report({"curriculum": c, "shuffled": 0.5}, {"overall": d}, n=n)
               for c, d, n in ((0.6, 0.10, 108), (0.7, 0.20, 54), (0.65, 0.15, 54))]
    (overall,) = R.aggregate_seeds(reports)["comparisons"]
    assert "(+15 points, 95% CI +3 to +27) across 3 training seeds on probe sets of 54 to 108 from one world, " \
        "but" in overall["sentence"]


def probe_report(probes, correct, units=None):
    """A compare() report with its per-probe record: probes (id, type, level) in order, and per model
    the correctness of each (a string of 0s and 1s); its summaries are those of the report's own probes.
    units: each probe's unit (default: all "u")."""
    def summary(bits, sel):
        picked = [b == "1" for b, keep in zip(bits, sel) if keep]
        return {"acc": sum(picked) / len(picked), "n": len(picked)} if picked else {"acc": None, "n": 0}
    types, levels = [t for _, t, _ in probes], [lv for _, _, lv in probes]
    models = {n: {"correct": bits, "summary": {
        "overall": summary(bits, [True] * len(bits)),
        "by_level": {str(lv): summary(bits, [x == lv for x in levels]) for lv in dict.fromkeys(levels)},
        "by_type": {t: summary(bits, [x == t for x in types]) for t in dict.fromkeys(types)}}}
        for n, bits in correct.items()}
    units = units or ["u"] * len(probes)
    return {"units": list(dict.fromkeys(units)), "probes_sha256": {"all": "same"}, "models": models, "rejected": [],
            "compared": {"ids": [i for i, _, _ in probes], "types": types, "levels": levels, "units": units,
                         "keys": [[i] for i, _, _ in probes]},
            "comparisons": [{"a": "a", "b": "b", "scope": sc, "diff": 0.0, "lo": -0.1, "hi": 0.1, "n": 1}
                            for sc in ("overall", *(f"type {t}" for t in dict.fromkeys(types)))]}


def test_seeds_are_read_on_the_probes_every_seed_compares():
    """A seed whose gate rejected a unit compares fewer probes: every seed is read on the shared ones,
    scope by scope, or the mean would mix an easy set with a hard one (seed 2 lacks p3 and p4)."""
    every = [("p1", "recall", 0), ("p2", "recall", 0), ("p3", "recall", 1), ("p4", "chain", 1), ("p5", "chain", 2)]
    one = probe_report(every, {"a": "11001", "b": "10000"})
    two = probe_report([every[4], every[1], every[0]], {"a": "111", "b": "110"})  # another order, by id
    agg = R.aggregate_seeds([one, two])
    a = agg["models"]["a"]
    assert a["type recall"]["values"] == [1.0, 1.0] and a["type recall"]["probes"] == 2
    assert a["type chain"]["values"] == [1.0, 1.0] and a["type chain"]["probes"] == 1  # p5; p4 only in seed 1
    assert a["overall"]["values"] == [1.0, 1.0] and a["overall"]["probes"] == 3  # not seed 1's 3 of 5
    assert agg["models"]["b"]["overall"]["values"] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert a["level 1"]["values"] == [0.0, None] and a["level 1"]["n"] == 1  # only seed 1 has level 1: its own
    overall = next(c for c in agg["comparisons"] if c["scope"] == "overall")
    assert overall["values"] == [pytest.approx(2 / 3), pytest.approx(1 / 3)]  # a - b on p1, p2, p5
    assert "on the 3 probes of one world that every seed compares" in overall["sentence"]
    # the learning curve too: a point's and a reference's accuracy on the shared probes of each type
    for r, point in ((one, "01100"), (two, "010")):
        r["curves"] = {"runs": {"s": [{"step": 1, "tokens": 1, "flops": 1, "correct": point,
                                       "by_type": {"recall": {"acc": 0.0}, "chain": {"acc": 0.0}}}]},
                       "references": {"a": {"recall": 0.0, "chain": 0.0}}}
    curves = R.aggregate_seeds([one, two])["curves"]
    assert curves["runs"]["s"][0]["by_type"]["recall"]["acc"] == 0.5  # p1 wrong, p2 right, in both seeds
    assert curves["runs"]["s"][0]["by_type"]["chain"]["acc"] == 0.0 and curves["references"]["a"]["recall"] == 1.0
    for r, seed in ((one, "seed-1"), (two, "seed-2")):
        r.update(corpus=f"runs/x/{seed}/corpus", rejected=["u2"] if seed == "seed-2" else [])
    results = R.render_results(RUN, agg=agg, reports=[one, two])
    assert "| probes every seed compares | 3 | 2 | 1 |" in results  # overall, recall, chain
    assert "in each column every seed with probes of it is read on those all of them compare" in results
    md = R.render_seeds_markdown(agg)
    assert "| probes every seed compares | 3 | 2 | 2 | 1 | 2 | 1 |" in md and "so each mean is over one set" in md
    assert "| 0% (1 seed) |" in md  # level 1: a mean over fewer seeds says so
    # a report without the per-probe record (written before it was kept): each seed on its own probes
    old = [dict(r, models={n: {k: v for k, v in m.items() if k != "correct"} for n, m in r["models"].items()})
           for r in (one, two)]
    del old[0]["compared"]
    assert R.aggregate_seeds(old)["models"]["a"]["overall"]["values"] == [0.6, 1.0]


@pytest.mark.parametrize("worlds", [False, True])
def test_a_pair_some_seed_did_not_compare_is_read_from_its_bits_in_every_seed_that_has_both_models(worlds):
    """A seed with no scratch run in curriculum order set its shuffled run against the grown model, the others
    their curriculum run: shuffled - merged is still each seed's difference, from the bits of both models."""
    every = [("p1", "recall", 0), ("p2", "recall", 0), ("p3", "recall", 0), ("p4", "recall", 0)]
    one = probe_report(every, {"s": "1100", "m": "0000", "c": "1111"})
    two = probe_report(every, {"s": "1110", "m": "0000"})
    for r, pair in ((one, ("c", "m")), (two, ("s", "m"))):
        r["comparisons"] = [{"a": pair[0], "b": pair[1], "scope": "overall", "diff": 0.0, "lo": -0.1, "hi": 0.1,
                             "n": 4}]
    if worlds:
        two["probes_sha256"] = {"all": "other"}
    agg = R.aggregate_seeds([one, two], worlds=worlds)
    (shuffled,) = agg["comparisons"]
    assert (shuffled["a"], shuffled["b"]) == ("s", "m")
    # seed 1's from its bits (+50); seed 2's own comparison where one is kept (worlds), else its bits (+75)
    assert shuffled["values"] == [0.5, 0.0 if worlds else 0.75]
    assert agg["lacking"] == {"c": 1}
    # the curves across seeds hold the runs every seed has, as the tables do, whichever seed comes first
    point = {"step": 1, "tokens": 1, "flops": 1, "by_type": {"recall": {"acc": 0.5}}}
    one["curves"] = {"runs": {"c": [point], "s": [point]}, "references": {}}
    two["curves"] = {"runs": {"s": [point]}, "references": {}}
    for order in ([one, two], [two, one]):
        assert list(R.aggregate_seeds(order, worlds=worlds)["curves"]["runs"]) == ["s"]
    two["curves"] = {"runs": {"c2": [point]}, "references": {}}
    assert R.aggregate_seeds([one, two], worlds=worlds)["curves"] is None  # no run in common: no curve


def test_seeds_on_shared_probes_also_read_the_prior_the_control_and_the_curve_on_them():
    every = [("p1", "recall", 0), ("p2", "recall", 0), ("c1", "cooc", 1), ("c2", "cooc", 1), ("k1", "chain", 2)]
    one = probe_report(every, {"a": "10111", "b": "00000"})
    two = probe_report([every[0], every[1], every[3], every[4]], {"a": "0111", "b": "0000"})  # lacks c1
    three = probe_report(every[:2], {"a": "11", "b": "00"})  # its gate kept no unit with cooc or chain probes
    for k, r in enumerate((one, two, three)):
        r.update(corpus=f"runs/x/seed-{k + 5}/corpus", rejected=[] if k == 0 else ["kinds"])
        n = len(r["compared"]["ids"])
        r["answer_frequency"] = {"by_type": {"recall": {"acc": 0.5}}, "correct": "1" + "0" * (n - 1)}
    r["curves"] = {"runs": {"s": [{"step": 1, "tokens": 1, "flops": 1, "correct": "11",
                                   "by_type": {"recall": {"acc": 1.0}}}]}, "references": {"a": {"recall": 0.5}}}
    one["curves"] = {"runs": {"s": [{"step": 1, "tokens": 1, "flops": 1, "correct": "00110",
                                     "by_type": {"recall": {"acc": 0.0}, "cooc": {"acc": 1.0}}}]},
                     "references": {"a": {"recall": 0.5, "cooc": 1.0}}}
    reports = [three, one, two]  # the first seed's curve has no cooc: the curve still does
    agg = R.aggregate_seeds(reports)
    cooc = agg["models"]["a"]["type cooc"]
    assert cooc["values"] == [None, 1.0, 1.0] and cooc["probes"] == 1
    assert agg["curves"]["runs"]["s"][0]["by_type"]["cooc"]["acc"] == 1.0  # c2, in the two seeds with curves of it
    # seed by seed, the control reads the shared probe c2, where a is right in both seeds with cooc
    assert R.control_lines({"cooc": 0.9}, reports, agg)[0].endswith("seed by seed, by a in 2 of 2, and by no other "
                                                                   "model in any seed.")
    results = R.render_results(RUN, agg=agg, reports=reports)
    assert "scores recall 50% (the mean over 3 seeds; on the probes every seed compares)" in results  # p1 right, p2 not
    md = R.render_seeds_markdown(agg)
    assert "(seed-7: kinds; seed-5: none; seed-6: kinds): in each column every seed" in md  # named by run directory
    # two seeds with chain probes that share none: no comparison, and no crash
    lone = probe_report([("k9", "chain", 2), *every[:2]], {"a": "100", "b": "000"})
    agg = R.aggregate_seeds([one, lone])
    chain = next(c for c in agg["comparisons"] if c["scope"] == "type chain")
    assert chain["sentence"] == "type chain: the seeds that measured it share no probe: no comparison across seeds"
    assert "| type chain | a | b | -, - | - |" in R.render_seeds_markdown(agg)


def test_the_control_seed_by_seed_on_shared_probes_counts_a_model_only_some_seeds_have():
    """A merge step exists only in the seeds where its unit passed: read on the shared probes, it is
    counted in those seeds, as it is without the per-probe record (each seed on its own probes)."""
    every = [(f"c{i}", "cooc", 1) for i in range(4)]
    reports = [probe_report(every, {"a": "0000", "b": "0000"}),
               *(probe_report(every, {"a": "0000", "b": "0000", "step2": "1111"}) for _ in range(2))]
    agg = R.aggregate_seeds(reports)
    assert agg["shared_probes"] and list(agg["models"]) == ["a", "b"]
    line = ("Positive control (cooc 90% or more): reached on the mean over seeds by no model; seed by seed, by "
            "step2 in 2 of 2, and by no other model in any seed.")
    assert R.control_lines({"cooc": 0.9}, reports, agg) == [line]
    for r in reports:  # the same seeds without the per-probe record
        del r["compared"]
        for m in r["models"].values():
            del m["correct"]
    assert R.control_lines({"cooc": 0.9}, reports, R.aggregate_seeds(reports)) == [line]


def test_the_seeds_that_kept_every_unit_are_also_read_on_all_their_probes():
    """The shared probes leave out a unit some seed rejected; the seeds that kept every unit read it too."""
    every = [("p1", "recall", 0), ("p2", "recall", 0), ("c1", "cooc", 1), ("c2", "cooc", 1)]
    whole = [probe_report(every, {"a": bits, "b": "0000"}) for bits in ("1111", "1011")]
    part = probe_report(every[:2], {"a": "11", "b": "00"})
    for k, r in enumerate((*whole, part)):
        r.update(corpus=f"runs/x/seed-{k}/corpus", rejected=["kinds"] if r is part else [])
        for c in r["comparisons"]:
            c["control"] = True
    agg = R.aggregate_seeds([*whole, part])
    e = agg["every_unit"]
    assert e["names"] == ["seed-0", "seed-1"]
    overall = next(c for c in e["comparisons"] if c["scope"] == "overall")
    assert overall["values"] == [1.0, 0.75] and "on the 4 probes of one world" in overall["sentence"]
    assert next(c for c in agg["comparisons"] if c["scope"] == "overall")["values"] == [1.0, 0.5, 1.0]  # p1, p2
    results = R.render_results(RUN, agg=agg, reports=[*whole, part])
    assert "In the 2 seeds whose gates kept every unit (seed-0, seed-1), on all their probes" in results
    assert "## In the 2 seeds whose gates kept every unit (seed-0, seed-1)" in R.render_seeds_markdown(agg)
    assert "every_unit" not in R.aggregate_seeds(whole)  # no seed rejected a unit: nothing is left out


def test_by_unit_each_unit_is_read_in_every_seed_that_kept_it():
    """The shared probes leave out u2, which seed 3 rejected; by unit, u2 is read in seeds 1 and 2, and u1
    in all three, each on the probes of it that those seeds share (seed 2 lacks p2, so u1 reads p1)."""
    every = [("p1", "recall", 0), ("p2", "recall", 0), ("q1", "recall", 1), ("q2", "cooc", 1), ("q3", "cooc", 1)]
    units = ["u1", "u1", "u2", "u2", "u2"]
    one = probe_report(every, {"a": "10111", "b": "00100"}, units)
    two = probe_report([every[0], *every[2:]], {"a": "1111", "b": "0000"}, [units[0], *units[2:]])
    three = probe_report(every[:2], {"a": "01", "b": "01"}, units[:2])
    for k, r in enumerate((one, two, three)):
        r.update(units=["u1", "u2"], corpus=f"runs/x/seed-{k}/corpus", rejected=["u2"] if r is three else [])
    agg = R.aggregate_seeds([one, two, three])
    rows = {(r["unit"], r["type"]): r for r in agg["by_unit"]}
    assert list(rows) == [("u1", "recall"), ("u2", "recall"), ("u2", "cooc")]
    u1 = rows["u1", "recall"]
    assert u1["seeds"] == 3 and u1["probes"] == [1, 1, 1]
    assert u1["pairs"][0]["values"] == [1.0, 1.0, 0.0] and u1["pairs"][0]["mean"] == pytest.approx(2 / 3)
    cooc = rows["u2", "cooc"]
    assert cooc["seeds"] == 2 and cooc["probes"] == [2, 2, None]
    assert cooc["pairs"][0]["values"] == [1.0, 1.0, None] and cooc["pairs"][0]["sd"] == 0.0
    assert rows["u2", "recall"]["pairs"][0]["values"] == [0.0, 1.0, None]
    md = R.render_seeds_markdown(agg)
    assert "## By unit" in md and "| u2 | cooc | 2 of 3 | 2 | +100 in each seed |" in md  # no width, no interval
    assert "Of these 2 intervals" in md  # u1's and u2 recall's: not the alike cooc's
    assert "| u1 | recall | 3 of 3 | 1 | +67 [-77 to +100] |" in md  # clipped: within ±100 points
    assert "| u2 | recall | 2 of 3 | 1 | +50 [-100 to +100] |" in md
    assert "By unit. Each unit and type" in R.render_results(RUN, agg=agg, reports=[one, two, three])
    # two seeds with probes of a unit that share none: counted as having it, no probe shared, no difference
    lone = dict(probe_report([("p9", "recall", 0)], {"a": "1", "b": "0"}, ["u1"]), units=["u1", "u2"])
    agg = R.aggregate_seeds([one, lone])
    row = next(r for r in agg["by_unit"] if r["unit"] == "u1")
    assert row["seeds"] == 2 and row["probes"] == [0, 0] and row["pairs"][0]["values"] == [None, None]
    assert "| u1 | recall | 2 of 2 | none shared | - |" in R.render_seeds_markdown(agg)
    # each seed on its own world: other probes of the same units, each seed read on all of its own
    own = probe_report([("w1", "recall", 0), ("w2", "recall", 0), ("w3", "cooc", 1)], {"a": "011", "b": "000"},
                       ["u1", "u1", "u2"])
    own.update(units=["u1", "u2"], probes_sha256={"all": "other"})
    agg = R.aggregate_seeds([one, own], worlds=True)
    rows = {(r["unit"], r["type"]): r for r in agg["by_unit"]}
    assert rows["u1", "recall"]["probes"] == [2, 2] and rows["u1", "recall"]["pairs"][0]["values"] == [0.5, 0.5]
    assert rows["u2", "cooc"]["pairs"][0]["values"] == [1.0, 1.0]
    assert "†" not in R.render_seeds_markdown(agg)  # the t-interval covers the draw of probes already
    # a seed whose gate kept no unit has only the base: no pair every seed has, so no rows and no table
    bare = dict(one, models={"a": one["models"]["a"]})
    agg = R.aggregate_seeds([one, bare])
    assert agg["by_unit"] == [] and "By unit" not in R.render_results(RUN, agg=agg, reports=[one, bare])
    assert "## By unit" not in R.render_seeds_markdown(agg)
    # reports that do not record their probes' units: no by-unit rows, and no section
    for r in (one, two, three):
        del r["compared"]["units"]
    agg = R.aggregate_seeds([one, two, three])
    assert agg["by_unit"] == [] and "## By unit" not in R.render_seeds_markdown(agg)


def test_by_unit_marks_a_difference_that_also_holds_over_a_draw_of_probes():
    """Ten probes, each its own cluster: a - b is +100, +90, +90 in three seeds; the t-interval and each
    seed's bootstrap together still leave out 0 (a †) on the shared probes; with each seed on its own
    world the t-interval covers the probes' draw already, and no † is drawn."""
    probes = [(f"p{i}", "recall", 0) for i in range(10)]
    reports = [probe_report(probes, {"a": "1" * 10, "b": b}) for b in ("0" * 10, "0" * 9 + "1", "1" + "0" * 9)]
    shared = R.render_seeds_markdown(R.aggregate_seeds(reports))
    # ‡: the one by-unit interval is its own family, and its t-test (t = 28 on 2 df) is p = 0.0013
    assert "| u | recall | 3 of 3 | 10 | +93 [+79 to +100] † ‡ |" in shared
    for k, r in enumerate(reports):
        r["probes_sha256"] = {"all": f"world {k}"}
    assert "| u | recall | 3 of 3 | 10 | +93 [+79 to +100] ‡ |" in R.render_seeds_markdown(
        R.aggregate_seeds(reports, worlds=True))


def test_without_matplotlib_the_report_draws_the_learning_curve_in_text():
    def point(step, acc):
        s = {"acc": acc, "lo": 0.0, "hi": 1.0, "n": 4}
        return {"step": step, "tokens": 10 * step, "flops": 1e9 * step, "overall": s, "by_type": {"recall": s}}
    curves = {"runs": {"scratch-curriculum": [point(1, 0.25), point(2, 0.9)],
                       "scratch-shuffled": [point(1, 0.3), point(2, 0.52)]},
              "references": {"merged": {"overall": 0.5, "recall": 0.5}}, "sentences": [], "plot": "skipped"}
    text = R.text_curves(curves, curves["references"])
    assert text[1] == ("c scratch-curriculum; s scratch-shuffled; m merged; columns: FLOPs from random init, 1e+09, "
                       "2e+09; references in the last column")
    rows = dict(line.split(" | ") for line in text if "% | " in line)
    # 25% and 30% both in the 30% row (halves up), 90% and 52% at the second budget
    assert rows["  90%"] == "      c" and rows["  50%"] == "      s     m" and rows["  30%"] == "cs"
    assert "  20%" not in rows and text[-1] == "```"
    md = R._md_curves({"curves": curves})
    assert "The learning curves as a figure in text (with matplotlib installed, curves.png):" in md
    assert R._md_curves({"curves": curves}, figure=False)[-1] == ""  # results.md: the table and sentences alone


@pytest.mark.parametrize("missing, label, columns", [("flops", "tokens from random init", "10, 20"),
                                                     ("tokens", "step", "1, 2"),
                                                     ("step", "checkpoint", "1, 2")])
def test_a_curve_falls_back_to_the_next_axis_its_points_all_have(missing, label, columns):
    # a checkpoint whose header holds no step was a TypeError formatting None
    s = {"acc": 0.5, "lo": 0.0, "hi": 1.0, "n": 4}
    points = [{"step": k, "tokens": 10 * k, "flops": None, "overall": s, "by_type": {"recall": s}} for k in (1, 2)]
    for key in ("flops", "tokens", "step")[:("flops", "tokens", "step").index(missing) + 1]:
        for p in points:
            p[key] = None
    text = R.text_curves({"runs": {"scratch-curriculum": points}})
    assert text[1] == f"c scratch-curriculum; columns: {label}, {columns}; references in the last column"


def test_aggregate_seeds_pairs_the_models_every_seed_has():
    # a merge step exists only in the seeds where its unit passed the gate
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5, "step1": 0.4}, {"overall": 0.1})
    b = seed_report({"curriculum": 0.7, "shuffled": 0.5}, {"overall": 0.2})
    agg = R.aggregate_seeds([a, b])
    assert list(agg["models"]) == ["curriculum", "shuffled"]
    assert agg["models"]["curriculum"]["overall"]["values"] == [0.6, 0.7]


def test_aggregate_seeds_refuses_unpaired_reports():
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    with pytest.raises(ValueError, match=r"^1 report\(s\) given; an interval across seeds needs at least 2$"):
        R.aggregate_seeds([a])
    with pytest.raises(ValueError, match=r"^report 0, report 1: no model is in every one of these reports; seeds "):
        R.aggregate_seeds([a, seed_report({"other": 0.6}, {})])
    with pytest.raises(ValueError, match="report 1 scored other probes"):
        R.aggregate_seeds([a, dict(a, probes_sha256={"all": "other"})])
    with pytest.raises(ValueError, match="report 1 scored other units"):
        R.aggregate_seeds([a, dict(a, units=["v"], probes_sha256={"all": "other"})], worlds=True)
    with pytest.raises(ValueError, match="report 1 scored the same probes .* own worlds read other probes"):
        R.aggregate_seeds([a, a], worlds=True)


def test_seeds_on_their_own_worlds_pair_by_unit_and_say_what_the_interval_covers(tmp_path):
    reports = [dict(seed_report({"curriculum": c, "shuffled": 0.5}, {"overall": d}, n=n), probes_sha256={"all": w})
               for c, d, w, n in ((0.6, 0.10, "world 0", 54), (0.7, 0.20, "world 1", 108), (0.65, 0.15, "world 2", 54))]
    agg = R.aggregate_seeds(reports, tmp_path, worlds=True)
    (overall,) = agg["comparisons"]
    assert agg["worlds"] and overall["mean"] == pytest.approx(0.15)
    # the t-interval over worlds already covers the draw of probes: no combined interval
    assert overall["sentence"] == "overall: curriculum (65%) is higher than shuffled (50%) (+15 points, 95% CI +3 " \
        "to +27) across 3 seeds, each on its own world; over probes, each seed's bootstrap: ±10"
    assert "Each seed reads its own world, so the t-interval covers the draw" in (tmp_path / "report.md").read_text()


def test_seeds_cli_names_the_report_files_that_are_not_paired(tmp_path, run_report):
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(dict(a, probes_sha256={"all": "other"})))
    p = run_report("seeds", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "agg")
    assert p.returncode == 2 and p.stderr == (f"error: {tmp_path / 'b.json'} scored other probes than "
                                              f"{tmp_path / 'a.json'}; seeds are paired on the same probes (each seed on "
                                              "its own world: --worlds)\n")
    (tmp_path / "b.json").write_text(json.dumps(seed_report({"curriculum": 0.7, "shuffled": 0.5}, {"overall": 0.2})
                                                | {"probes_sha256": {"all": "other"}}))
    p = run_report("seeds", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "agg", "--worlds")
    assert p.returncode == 0 and "each on its own world" in p.stdout


def test_seeds_cli_refuses_one_report_given_twice_however_it_is_spelled(tmp_path, run_report):
    # the same seed twice read as two seeds that agree: an interval of width 0 "across 2 seeds"
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(a))
    again = tmp_path / "." / "a.json"
    p = run_report("seeds", tmp_path / "a.json", tmp_path / "b.json", again, "--out", tmp_path / "agg")
    assert (p.returncode, p.stderr) == (2, f"error: {again}: given twice (as {tmp_path / 'a.json'}); give each "
                                           "seed's report.json once\n")
    assert not (tmp_path / "agg").exists()


def test_seeds_pool_a_run_recorded_with_the_decoys_old_flag_as_the_choice_it_became(tmp_path, run_report):
    """A ladder's report from when the decoys were a flag (cooccur_decoys) pools with seeds of the
    --cooccur-docs choice it became, and is refused beside another choice, named as it is now."""
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    settings = {"preset": "tiny", "seed": 0, "world_seed": 0, "lora_r": 16}
    runs = {"old": dict(settings, cooccur_decoys=True), "new": dict(settings, seed=1, cooccur_docs="decoys"),
            "plain": dict(settings, seed=2, cooccur_docs="plain")}
    for name, s in runs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(dict(a, settings=s)))
    files = lambda *names: [tmp_path / f"{n}.json" for n in names]
    assert run_report("seeds", *files("old", "new"), "--out", tmp_path / "agg").returncode == 0
    p = run_report("seeds", *files("old", "plain"), "--out", tmp_path / "agg2")
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path / 'plain.json'} was trained with other settings than "
                                           f"{tmp_path / 'old.json'} (cooccur_docs plain against decoys); seeds are "
                                           "runs of one ladder's settings\n")


def test_seeds_pool_a_report_from_before_a_setting_was_added_as_what_the_code_did_then(tmp_path, run_report):
    """A setting missing from an older report reads as the code did before it existed: its preset's value,
    or BEFORE_ADDED's where the default changed when it was added (the fine-tune's order)."""
    import presets
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    micro = {k: v for k, v in dataclasses.asdict(presets.settings_for("micro")).items() if k != "device"}
    runs = {"new": dict(micro, preset="micro", seed=1),
            "old": {k: v for k, v in dict(micro, preset="micro").items() if k not in ("lora_min_steps", "ft_order")},
            "level": dict(micro, preset="micro", seed=2, ft_order="curriculum")}
    for name, s in runs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(dict(a, settings=s)))
    files = lambda *names: [tmp_path / f"{n}.json" for n in names]
    # micro's lora_min_steps (1), not the default's (100); its fine-tune then went level by level
    p = run_report("seeds", *files("old", "new"), "--out", tmp_path / "agg")
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path / 'new.json'} was trained with other settings than "
                                           f"{tmp_path / 'old.json'} (ft_order shuffled against curriculum (not recorded)); seeds "
                                           "are runs of one ladder's settings\n")
    assert run_report("seeds", *files("old", "level"), "--out", tmp_path / "agg").returncode == 0
    # a preset that is no preset now: only what BEFORE_ADDED knows is filled in
    assert presets.settings_now({"preset": "gone", "seed": 3}, "gone") == {**presets.BEFORE_ADDED, "preset": "gone", "seed": 3}
    assert presets.settings_now({"preset": ["x"]}, ["x"]) == {**presets.BEFORE_ADDED, "preset": ["x"]}


def test_seeds_cli_refuses_seeds_scored_with_another_norm(tmp_path, run_report):
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    (tmp_path / "a.json").write_text(json.dumps(dict(a, norm="sum")))
    (tmp_path / "b.json").write_text(json.dumps(dict(a, norm="mean")))
    p = run_report("seeds", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "agg")
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path / 'b.json'} scored choices by their mean "
                                           f"log-likelihood, {tmp_path / 'a.json'} by their sum; seeds are compared "
                                           "scored alike (compare's --norm)\n")
    assert not (tmp_path / "agg").exists()


def test_seeds_cli_refuses_one_run_given_as_two_seeds_and_seeds_of_other_settings(tmp_path, run_report):
    """Two copies of one run's report agree with each other: an interval of width 0 across "2 seeds"."""
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    settings = {"preset": "tiny", "seed": 0, "world_seed": 0, "lora_r": 16}
    runs = {"a": settings, "b": dict(settings, seed=1), "c": dict(settings, seed=1), "d": dict(settings, seed=2, lora_r=8)}
    for name, s in runs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(dict(a, settings=s)))
    files = lambda *names: [tmp_path / f"{n}.json" for n in names]
    p = run_report("seeds", *files("a", "b", "c"), "--out", tmp_path / "agg")
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path / 'c.json'} was trained with seed 1, as "
                                           f"{tmp_path / 'b.json'} was: the same run twice is not two seeds\n")
    p = run_report("seeds", *files("a", "d"), "--out", tmp_path / "agg")
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path / 'd.json'} was trained with other settings than "
                                           f"{tmp_path / 'a.json'} (lora_r 8 against 16); seeds are runs of one "
                                           "ladder's settings\n")
    assert not (tmp_path / "agg").exists()
    (tmp_path / "bare.json").write_text(json.dumps(a))  # compare's own report records no settings
    p = run_report("seeds", *files("a", "bare"), "--out", tmp_path / "agg")
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path / 'bare.json'} records no settings and "
                                           f"{tmp_path / 'a.json'} a ladder's: seeds are runs of one ladder's settings "
                                           "(a report of evaluate.py compare pools only with others of its kind)\n")
    assert run_report("seeds", *files("a", "b"), "--out", tmp_path / "agg").returncode == 0
    # where it ran and what compare read off the models may change as a run continues: no other training
    (tmp_path / "e.json").write_text(json.dumps(dict(a, settings=dict(settings, seed=3, samples=2, control="chain=0.2"))))
    assert R.aggregate_seeds([json.loads((tmp_path / f"{n}.json").read_text()) for n in "ae"])["seeds"] == 2
    # on worlds of their own, a seed is its training seed and its world's together
    worlds = [dict(a, settings=dict(settings, world_seed=w), probes_sha256={"all": f"world {w}"}) for w in (0, 1)]
    assert R.aggregate_seeds(worlds, worlds=True)["seeds"] == 2
    with pytest.raises(ValueError, match=r"report 1 was trained with seed 0 and world seed 0, as report 0 was"):
        R.aggregate_seeds([worlds[0], dict(worlds[0], probes_sha256={"all": "world 1"})], worlds=True)
    with pytest.raises(ValueError, match=r"other settings than report 0 \(world_seed 1 against 0\)"):
        R.aggregate_seeds([dict(worlds[0], probes_sha256={"all": "one"}),
                           dict(worlds[1], settings=dict(settings, seed=1, world_seed=1), probes_sha256={"all": "one"})])


def test_seeds_cli_refuses_a_file_that_is_not_a_report_exit_2(tmp_path, run_report):
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text("{not json")
    p = run_report("seeds", tmp_path / "a.json", tmp_path / "b.json", "--out", tmp_path / "agg")
    assert p.returncode == 2 and p.stderr.startswith(f"error: {tmp_path / 'a.json'}: not a report.json")
    assert len(p.stderr.strip().splitlines()) == 1 and not (tmp_path / "agg").exists()


RUN = {"title": "`ladder.py --seeds 2`", "command": "python ladder.py --seeds 2", "seconds": 600.0,
       "stage_seconds": {}, "machine": {"date": "2026-12-04T20:00:00+00:00", "cpu": "Some CPU", "gpu": None,
                                         "ceiling": 150e9, "threads": 2, "torch": "2.13.0+cpu", "commit": "abc1234"}}


def test_results_across_seeds_name_the_machine_and_give_means_with_t_intervals():
    reports = [seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1}),
               seed_report({"curriculum": 0.7, "shuffled": 0.5}, {"overall": 0.2})]
    for r in reports:
        r["comparisons"][0]["sentence"] = "per seed"
    md = R.render_results(RUN, agg=R.aggregate_seeds(reports), reports=reports)
    assert md.startswith("## `ladder.py --seeds 2`\n\n2026-12-04, Some CPU (float32 matmul ceiling 150 GFLOP/s on "
                         "2 threads), torch 2.13.0+cpu, commit abc1234: `python ladder.py --seeds 2` took 10.0 min.")
    assert "| curriculum | 65% ± 7 [1%-100%] | 65% ± 7 [1%-100%] |" in md
    assert "- overall: no difference detectable between curriculum (65%) and shuffled (50%)" in md
    assert "\n\nProbes: those of the units the gate accepted, all of them (this run's gates read all" in md
    for r in reports:
        r["probes_sha256"]["gate_read"] = "0" * 64
    md = R.render_results(RUN, agg=R.aggregate_seeds(reports), reports=reports)
    assert "\n\nProbes: those of the units the gate accepted, less the gated probes that the gates read.\n" in md
    assert "The gate rejected" not in md
    agg = R.aggregate_seeds(reports)
    assert "(less the half its gate read)" in R.render_seeds_markdown(agg)
    assert f"of the {len(agg['comparisons'])} comparisons below, about one in twenty of those where no " \
        "difference exists would leave out 0 by chance alone" in R.render_seeds_markdown(agg)
    reports[0]["probes_sha256"]["gate_read"] = R.NO_PROBES  # one seed's gates read no half: the clause would be false
    assert "(less the half its gate read)" not in R.render_seeds_markdown(R.aggregate_seeds(reports))
    reports[1]["corpus"], reports[1]["rejected"] = "runs/x/seed-6/corpus", ["kinds-01"]
    md = R.render_results(RUN, agg=R.aggregate_seeds(reports), reports=reports)
    assert "\n\nThe gate rejected units in 1 of 2 seeds (seed-6 kinds-01): the merge steps some seed lacks are left out" in md
    assert "FLOPs" not in md.splitlines()[2]  # a run without its training FLOPs states none
    assert "Answer frequency alone" not in md
    for r, acc in zip(reports, (0.2, 0.3)):
        r["answer_frequency"] = {"by_type": {"recall": {"acc": acc}, "chain": {"acc": 0.1}}}
    md = R.render_results(RUN, agg=R.aggregate_seeds(reports), reports=reports)
    assert ("\n\nAnswer frequency alone (each probe answered with the choice its unit's documents mention most "
            "often) scores recall 25%, chain 10% (the mean over 2 seeds).") in md
    run = dict(RUN, seeds=2, training_flops={"base": 1.5e13, "adapters": 1.5e13, "finetune": 2e13, "scratch": 4e13})
    md = R.render_results(run, agg=R.aggregate_seeds(reports), reports=reports)
    assert md.splitlines()[2].endswith(" took 10.0 min. Its training took 9e+13 FLOPs over its 2 seeds (base "
                                       "1.5e+13, adapters 1.5e+13, finetune 2e+13, scratch 4e+13): 150 GFLOP/s over "
                                       "the run's time, 100% of the ceiling.")


def rejected_all(report):
    """report as a seed whose gate rejected every unit: only its base, no probe compared, no comparison."""
    base = copy.deepcopy(report["models"]["base"])
    base["summary"] = {"overall": {"acc": 0.0, "n": 0, "exact": 0.0}, "by_level": {}, "by_type": {}}
    return dict(report, models={"base": base}, comparisons=[], rejected=list(report["units"]),
                probes_sha256=dict(report["probes_sha256"], gate_read=R.NO_PROBES))


def test_results_across_seeds_say_the_same_whichever_seed_comes_first():
    """The control pairs are those of every seed: a first seed whose gate rejected every unit compares
    none, and its place among the seeds is no reason to drop the sentences of the others."""
    every = [(f"p{i}", "recall", 0) for i in range(8)]
    kept = [probe_report(every, {"base": "00000000", "a": bits, "b": "00000000"}) for bits in ("11111111", "11111110")]
    for c in (c for r in kept for c in r["comparisons"]):
        c["control"] = True
    empty = rejected_all(dict(probe_report([], {"base": ""}), units=["u"]))
    said = []
    for reports in ([empty, *kept], [*kept, empty]):
        text = R.render_results(RUN, agg=R.aggregate_seeds(reports), reports=reports)
        said.append([line for line in text.splitlines() if line.startswith("- ")])
    assert said[0] == said[1] and len(said[0]) == 2
    assert said[0][0].startswith("- overall: a (94%) is higher than b (0%) (+94 points")


def test_the_seeds_leave_out_the_half_the_gates_read_though_a_seed_compared_no_probe():
    """A seed whose gate rejected every unit read no half (NO_PROBES), but adds no number to the page:
    every number is the other seeds', whose gates read half, and the header says so."""
    reports = [seed_report({"base": 0.25, "curriculum": c, "shuffled": 0.5}, {"overall": 0.1}) for c in (0.6, 0.7)]
    for r in reports:
        r["probes_sha256"]["gate_read"] = "0" * 64
    reports.append(rejected_all(dict(reports[0], probes_sha256={"all": "same"}, units=["u"])))
    agg = R.aggregate_seeds(reports)
    assert agg["gate_half"] is True
    assert "Accuracy on the probes of units the gate did not reject (less the half its gate read): " in \
        R.render_seeds_markdown(agg)


def test_answer_frequency_averages_each_type_over_the_seeds_that_have_it():
    # a seed whose gate rejected every unit with chain probes has no chain entry
    both = {"answer_frequency": {"by_type": {"recall": {"acc": 0.2}, "chain": {"acc": 0.1}}}}
    recall = {"answer_frequency": {"by_type": {"recall": {"acc": 0.3}}}}
    line = "scores recall 25%, chain 10% (the mean over 2 seeds; chain over 1 of them)."
    assert R._baseline_lines([both, recall])[1].endswith(line)
    assert R._baseline_lines([recall, both])[1].endswith(line)
    # each baseline a report holds, one line each, the association's beside the answer frequency's
    near = {"answer_frequency": recall["answer_frequency"], "association": {"by_type": {"recall": {"acc": 0.9}}}}
    assert R._baseline_lines([near]) == [
        "", "Answer frequency alone (each probe answered with the choice its unit's documents mention most often) "
        "scores recall 30%.",
        "", "Association alone (each probe answered with the choice mentioned most often in the documents of its unit "
        "that name its entity) scores recall 90%."]


def test_a_seed_whose_gate_rejected_every_unit_has_no_accuracy_rather_than_0_percent():
    summary = lambda acc, n: {"overall": {"acc": acc, "n": n}, "by_level": {}, "by_type": {}}
    reports = [{"models": {"base": {"summary": summary(0.25, 400)}}},
               {"models": {"base": {"summary": summary(0.27, 400)}}},
               {"models": {"base": {"summary": summary(0.0, 0)}}}]  # every unit rejected: nothing scored
    assert R._seed_accuracies(reports, "base") == {"overall": [0.25, 0.27, None]}
    assert R._baseline_lines([{"answer_frequency": {"by_type": {}}}]) == []  # no type: no "scores ." line


def gated_report(gate_read, types=("recall",), read=50, compared=50):
    """A report whose gates read the probes named gate_read, `read` of each of these types
    (gate_summary), beside `compared` others of each."""
    return {"probes_sha256": {"all": "same", "gate_read": gate_read},
            "models": {"base": {"gate_summary": {"by_type": {t: {"acc": 0.5, "n": read} for t in types}},
                                "summary": {"by_type": {t: {"acc": 0.5, "n": compared} for t in types + ("ood",)}}}}}


def test_the_probes_line_counts_what_the_gates_read_and_names_its_types():
    half, head = "0" * 64, "Probes: those of the units the gate accepted, "
    assert R._probes_line([gated_report(half, ("recall", "chain"))]) == \
        head + "less the 100 of their 200 gated (recall, chain) probes that the gates read."
    assert R._probes_line([gated_report(half, read=96, compared=0)]) == \
        head + "less their 96 gated (recall) probes, all of which the gates read."  # a verdict before the half rule
    assert R._probes_line([gated_report(R.NO_PROBES, ())]) == \
        head + "all of them (no accepted unit's gate read any of them)."
    assert R._probes_line([gated_report(half), gated_report(R.NO_PROBES, ())]) == \
        head + "less the 50 of their 100 gated (recall) probes that the gates read in 1 of 2 seeds (none in the others)."
    assert R._probes_line([gated_report(half), gated_report(half, read=40, compared=41)]) == \
        head + "less the gated (recall) probes that the gates read: 50 of 100, 40 of 81, seed by seed."
    assert R._probes_line([{"probes_sha256": {"all": "same"}, "models": {}}]) == \
        head + "all of them (this run's gates read all the recall probes)."


def curve_report(acc_by_point, ref):
    """A seed report with a learning curve (one run, points of recall accuracy) and a reference model."""
    r = seed_report({"curriculum": acc_by_point[-1], "shuffled": 0.5}, {"overall": 0.1})
    r["curves"] = {"runs": {"curriculum": [{"step": 10 * (i + 1), "tokens": 100 * (i + 1), "flops": 1e9 * (i + 1),
                                            "by_type": {"recall": {"acc": a}}} for i, a in enumerate(acc_by_point)]},
                   "references": {"merged": {"overall": ref, "recall": ref}}}
    return r


def test_seed_curves_are_means_with_t_intervals_and_reach_results(tmp_path):
    reports = [curve_report([0.3, 0.6], 0.4), curve_report([0.5, 0.8], 0.6)]
    agg = R.aggregate_seeds(reports, tmp_path / "report")
    first, last = agg["curves"]["runs"]["curriculum"]
    half = 12.706205 * (0.2 ** 2 / 2) ** 0.5 / 2 ** 0.5  # two seeds 20 points apart: sd 0.141, t(1) = 12.706205
    assert (first["flops"], first["by_type"]["recall"]["acc"]) == pytest.approx((1e9, 0.4))
    assert (last["by_type"]["recall"]["lo"], last["by_type"]["recall"]["hi"]) == pytest.approx((0.7 - half, 0.7 + half))
    assert agg["curves"]["references"]["merged"]["recall"] == pytest.approx(0.5)
    md = R.render_results(RUN, agg=agg, reports=reports)
    assert "| curriculum | 1e+09 | 40% [0%-100%] |" in md and "| merged (reference) |  | 50% |" in md
    has_plot = agg["curves"]["plot"] == "curves.png"
    assert (tmp_path / "report" / "curves.png").exists() == has_plot
    assert ("![learning curves across seeds](curves.png)" in md) == has_plot


def test_seed_curves_say_whether_each_run_was_still_rising_with_a_t_interval_over_seed_rises(tmp_path):
    """Each seed's rise between consecutive points, paired: three seeds rising 25, 30 and 35 points rise
    30 [30 ± t(2) x 5 / sqrt 3]; rising 10, falling 10 and level show no rise. The seeds' page and
    results.md show them, and under wsd say that the last rise holds the learning rate's decay."""
    reports = [curve_report([0.3, 0.55, 0.65], 0.4), curve_report([0.5, 0.8, 0.7], 0.6),
               curve_report([0.4, 0.75, 0.75], 0.5)]
    for seed, r in enumerate(reports):
        r["settings"] = {"schedule": "wsd", "seed": seed}
    agg = R.aggregate_seeds(reports, tmp_path / "report")
    first, last = agg["curves"]["rises"]["curriculum"]
    half = 4.302653 * 0.05 / 3 ** 0.5
    assert (first["from"], first["to"], first["by_type"]["recall"]["mean"]) == pytest.approx((1e9, 2e9, 0.3))
    assert (first["by_type"]["recall"]["lo"], first["by_type"]["recall"]["hi"]) == pytest.approx((0.3 - half, 0.3 + half))
    assert last["by_type"]["recall"]["mean"] == pytest.approx(0.0) and last["by_type"]["recall"]["lo"] < 0
    for md in (R.render_seeds_markdown(agg), R.render_results(RUN, agg=agg, reports=reports)):
        assert "| curriculum | 1e+09 to 2e+09 | +30 [+18 to +42] |" in md
        assert "| curriculum | 2e+09 to 3e+09 | +0 [-25 to +25] |" in md
        assert "a rise that ends in the decay holds it" in md and "its rises also say when a level came" in md
    agg["curves"]["decayed_end"] = False  # a constant schedule: no decay at the end, no such sentence
    agg["curves"]["rises"] = {"shuffled": agg["curves"]["rises"]["curriculum"]}  # and no curriculum run
    md = R.render_seeds_markdown(agg)
    assert "| shuffled | 1e+09 to 2e+09 | +30 [+18 to +42] |" in md
    assert "ends in the decay" not in md and "when a level came" not in md


def test_seed_curves_are_over_the_seeds_that_trained_scratch_runs(tmp_path):
    """A seed whose gate rejected every unit has no scratch run, and no curve: first or not, it is left out."""
    bare = seed_report({"curriculum": 0.5, "shuffled": 0.5}, {"overall": 0.0})
    for reports in ([bare, curve_report([0.3, 0.6], 0.4), curve_report([0.5, 0.8], 0.6)],
                    [curve_report([0.3, 0.6], 0.4), bare, curve_report([0.5, 0.8], 0.6)]):
        curves = R.aggregate_seeds(reports, tmp_path / "report")["curves"]
        last = curves["runs"]["curriculum"][-1]["by_type"]["recall"]
        assert (curves["seeds"], curves["of"], last["n"], last["acc"]) == (2, 3, 2, pytest.approx(0.7))
        assert curves["references"]["merged"]["recall"] == pytest.approx(0.5)
    assert "mean accuracy over the 2 of 3 seeds that trained scratch runs, in percent" in \
        "\n".join(R._md_seed_curves(curves))
    one = R.aggregate_seeds([curve_report([0.3, 0.6], 0.4), bare], tmp_path / "one")["curves"]  # no band to draw
    assert one["runs"]["curriculum"][0]["by_type"]["recall"]["lo"] is None and one["plot"] in (
        "curves.png", "skipped (matplotlib is not installed)")


def test_results_name_the_figures_where_the_runs_drew_them(tmp_path, run_report):
    for run in ("inside", "outside"):
        (tmp_path / run / "report").mkdir(parents=True)
        (tmp_path / run / "report" / "results.md").write_text(f"## `ladder.py --out {run}`\n\n![learning curves]"
                                                              "(curves.png)\n")
    (tmp_path / "docs").mkdir()
    p = run_report("results", tmp_path / "docs" / ".." / "inside", tmp_path / "outside", "--out",
                   tmp_path / "inside" / "RESULTS.md")
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "inside" / "RESULTS.md").read_text()
    assert "Figure (learning curves): `report/curves.png`, drawn by the run." in text
    assert "Figure (learning curves): `report/curves.png` in the run's directory, drawn by the run." in text
    assert "![" not in text


def test_results_say_where_a_run_kept_beside_a_newer_one_of_the_same_command_now_is(tmp_path, run_report):
    for run in ("runs/seeds5", "runs/seeds5-abc1234"):  # both ran `--out runs/seeds5`; the older was moved
        (tmp_path / run / "report").mkdir(parents=True)
        (tmp_path / run / "report" / "results.md").write_text(f"## `ladder.py --seeds 5 --out runs/seeds5`\n\n{run}\n")
    p = run_report("results", "runs/seeds5", "runs/seeds5-abc1234", "--out", "RESULTS.md", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    headings = [line for line in (tmp_path / "RESULTS.md").read_text().splitlines() if line.startswith("## ")]
    assert headings == ["## `ladder.py --seeds 5 --out runs/seeds5`",
                        "## `ladder.py --seeds 5 --out runs/seeds5` (now in `runs/seeds5-abc1234`)"]
    # the same directory spelled another way (absolute here) has not moved
    (tmp_path / "runs/seeds5/report/results.md").write_text(f"## `ladder.py --out {tmp_path / 'runs/seeds5'}`\n")
    p = run_report("results", "runs/seeds5", "--out", "R.md", cwd=tmp_path)
    assert p.returncode == 0 and "now in" not in (tmp_path / "R.md").read_text(), p.stderr
    # an --out with a space, quoted in the title as ladder.py writes it, is the whole path, not its first word
    (tmp_path / "runs/r 2/report").mkdir(parents=True)
    for title, moved in (("--out 'runs/r 2'", False), ("--out='runs/r 2'", False), ("--out runs/r", True),
                         ("--out=runs/r", True), ("--out runs/r --out 'runs/r 2'", False), ("--out runs/bob's", True)):
        (tmp_path / "runs/r 2/report/results.md").write_text(f"## `ladder.py --seed 1 {title}`\n")
        p = run_report("results", "runs/r 2", "--out", "R.md", cwd=tmp_path)
        assert p.returncode == 0 and ("now in `runs/r 2`" in (tmp_path / "R.md").read_text()) == moved, p.stderr


def test_results_add_a_run_before_those_the_file_holds_and_replace_one_of_the_same_heading(tmp_path, run_report):
    heading = {name: f"## `ladder.py --out {(tmp_path / name).as_posix()}`" for name in ("new", "b")}
    for name in heading:
        (tmp_path / name / "report").mkdir(parents=True)
        (tmp_path / name / "report" / "results.md").write_text(f"{heading[name]}\n\n{name} figures\n")
    out = tmp_path / "RESULTS.md"
    out.write_text("# accrete results\n\nintro\n\n## `ladder.py --out runs/a`\n\na figures\n\n### Learning curves\n\na curve\n\n"
                   f"{heading['b']}\n\nold b figures\n\n## Measured by hand: x\n\nhand-measured\n")
    p = run_report("results", tmp_path / "new", "--out", out, "--add")
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert text.index("new figures") < text.index("a figures") < text.index("a curve") < text.index("old b figures") \
        < text.index("hand-measured")
    assert "kept 2 earlier run(s)" in p.stdout
    p = run_report("results", tmp_path / "b", "--out", out, "--add")  # the same heading: the new one replaces it
    text = out.read_text()
    assert "old b figures" not in text and text.count(heading["b"]) == 1
    assert text.index("b figures") < text.index("new figures") < text.index("a figures") < text.index("hand-measured")
    p = run_report("results", tmp_path / "new", "--out", out)  # without --add: the runs given, the by-hand kept
    assert "a figures" not in out.read_text() and "hand-measured" in out.read_text()


def test_results_state_each_run_s_chance_where_probes_have_other_than_four_choices():
    s = lambda chance: {"n": 10, "correct": 6, "acc": 0.6, "lo": 0.3, "hi": 0.8, "chance": chance}
    summary = lambda c: {"overall": s(c), "by_type": {"recall": s(c), "chain": s(0.25)}}
    report = lambda c: {"rejected": [], "comparisons": [], "models": {"base": {"flops": 1e9, "composition": {},
                                                                            "summary": summary(c)}}}
    assert "Chance is 25% on every type." in R.render_results(RUN, report=report(0.25))
    md = R.render_results(RUN, report=report(0.5))  # yes/no probes: 60% is hardly above chance
    assert "Chance (one over a probe's choices, averaged over the probes): recall 50%, chain 25%." in md


def test_results_of_one_run_score_rejected_units_apart():
    s = lambda n, c: {"n": n, "correct": c, "acc": c / n if n else 0.0, "lo": 0.1, "hi": 0.4, "chance": 0.25}
    report = {"rejected": ["herbs"], "comparisons": [],
              "models": {"base": {"flops": 1e9, "composition": {}, "summary": {"overall": s(0, 0), "by_type": {}},
                                  "rejected_summary": {"overall": s(48, 12)}}}}
    md = R.render_results(RUN, report=report)
    assert "The gate rejected herbs: left out of the table above. Their probes, and those resting on their facts, " \
           "apart: base 25% [10%-40%]." in md


def test_a_run_on_one_thread_says_so_and_its_command_sets_the_threads(monkeypatch):
    import ladder
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = dict(RUN, command=" ".join(ladder.threads_env() + ["python ladder.py"]),
               machine=dict(RUN["machine"], threads=1))
    assert R._machine_line(one).endswith("(float32 matmul ceiling 150 GFLOP/s on 1 thread), torch 2.13.0+cpu, "
                                         "commit abc1234: `OMP_NUM_THREADS=1 python ladder.py` took 10.0 min.")
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert ladder.threads_env() == []


def test_a_gpu_run_states_its_bf16_ceiling_not_a_cpu_s():
    gpu = dict(RUN, machine=dict(RUN["machine"], gpu="NVIDIA H100 80GB HBM3", ceiling=7.5e14, ceiling_dtype="bf16"))
    assert R._machine_line(gpu).startswith(f"{RUN['machine']['date'][:10]}, NVIDIA H100 80GB HBM3 (bf16 matmul "
                                           "ceiling 750 TFLOP/s), torch")


def test_results_keep_the_sections_measured_by_hand_and_rewrite_the_runs(tmp_path, run_report):
    (tmp_path / "run" / "report").mkdir(parents=True)
    (tmp_path / "run" / "report" / "results.md").write_text("## `ladder.py --out run`\n\nnew figures\n")
    out = tmp_path / "RESULTS.md"
    out.write_text("# accrete results\n\nold intro\n\n## `ladder.py --out run`\n\nold figures\n\n"
                   "## Measured by hand: batch 8\n\n2026-12-05, a CPU, commit abc: 3 of 6 units rejected\n\n"
                   "## Measured by hand: base steps\n\nval loss 1.03\n")
    p = run_report("results", tmp_path / "run", "--out", out)
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "old figures" not in text and "old intro" not in text
    assert text.index("new figures") < text.index("## Measured by hand: batch 8") < text.index("val loss 1.03")
    assert "3 of 6 units rejected\n\n## Measured by hand: base steps" in text
    assert "kept 2 section(s)" in p.stdout


def typed_report(accs):
    """A report whose models have these accuracies by probe type."""
    return {"units": ["u"], "probes_sha256": {"all": "same"}, "comparisons": [],
            "models": {n: {"summary": {"overall": {"acc": 0.5}, "by_level": {},
                                       "by_type": {t: {"acc": a} for t, a in by.items()}}}
                       for n, by in accs.items()}}


def test_the_positive_control_names_the_models_that_reach_every_bar_in_a_run_and_over_seeds():
    bar = R.parse_control("cooc=0.6, chain=0.5")
    assert bar == {"cooc": 0.6, "chain": 0.5}
    one = typed_report({"merged": {"cooc": 0.3, "chain": 0.6}, "finetune": {"cooc": 0.6, "chain": 0.5}})
    assert R.control_lines(bar, [one]) == ["Positive control (cooc 60% or more, chain 50% or more): reached by "
                                           "finetune.", "Type by type: cooc by finetune; chain by merged, finetune."]
    low = typed_report({"merged": {"cooc": 0.3, "chain": 0.6}, "finetune": {"cooc": 0.7, "chain": 0.46}})
    assert R.control_lines(bar, [low]) == ["Positive control (cooc 60% or more, chain 50% or more): reached by no "
                                           "model.", "Type by type: cooc by finetune; chain by merged."]
    # on the mean: finetune (cooc 65, chain 48) misses; seed by seed it passes once
    reports = [one, low]
    line, by_type = R.control_lines(bar, reports, R.aggregate_seeds(reports))
    assert line.endswith("reached on the mean over seeds by no model; seed by seed, by finetune in 1 of 2, "
                         "and by no other model in any seed.")
    assert by_type == "Type by type, on the mean over seeds: cooc by finetune (some model in 2 of 2 seeds); chain " \
        "by merged (some model in 2 of 2 seeds)."
    nochain = typed_report({"merged": {"cooc": 0.3, "chain": 0.3}, "finetune": {"cooc": 0.7, "chain": 0.46}})
    assert R.control_lines(bar, [one, nochain], R.aggregate_seeds([one, nochain]))[1] == "Type by type, on the " \
        "mean over seeds: cooc by finetune (some model in 2 of 2 seeds); chain by no model (some model in 1 of 2 seeds)."
    assert R.control_lines(bar, [one, one], R.aggregate_seeds([one, one]))[0].endswith(
        "by finetune; seed by seed, by finetune in 2 of 2, and by no other model in any seed.")
    assert R.control_lines({"recall": 0.5}, [one]) == []  # no recall probes: nothing to control
    # the gate rejected the units that hold chain probes: scored apart, so the control is said not to be judged
    rejected = typed_report({"merged": {"cooc": 0.3}, "finetune": {"cooc": 0.7}})
    for m in rejected["models"].values():
        m["rejected_summary"] = {"overall": {"acc": 0.3}, "by_level": {}, "by_type": {"chain": {"acc": 0.3}}}
    assert R.control_lines(bar, [rejected]) == ["Positive control (cooc 60% or more, chain 50% or more): not judged, "
                                                "as no chain probe was compared: the gate rejected the units that hold "
                                                "them."]
    # a seed whose gate rejected every unit has only its base: a fine-tune is counted in the seeds that measured one
    base_only = typed_report({"base": {"cooc": 0.25, "chain": 0.25}})
    one["models"]["base"] = base_only["models"]["base"]
    line = R.control_lines(bar, [base_only, one, one], R.aggregate_seeds([base_only, one, one]))[0]
    assert line.endswith("reached on the mean over seeds by no model; seed by seed, by finetune in 2 of 2, and by "
                         "no other model in any seed."), line


def test_the_positive_control_shows_a_miss_that_whole_percents_would_hide():
    bar = {"cooc": 0.6}
    near = typed_report({"shuffled": {"cooc": 0.598}, "finetune": {"cooc": 0.7}})
    assert R.control_lines(bar, [near]) == ["Positive control (cooc 60% or more): reached by finetune "
                                            "(shuffled's cooc 59.8%: short of it)."]
    other = typed_report({"shuffled": {"cooc": 0.596}, "finetune": {"cooc": 0.7}})
    line, = R.control_lines(bar, [near, other], R.aggregate_seeds([near, other]))
    assert line.startswith("Positive control (cooc 60% or more): reached on the mean over seeds by finetune "
                           "(shuffled's cooc 59.7%: short of it); seed by seed, by finetune in 2 of 2")


@pytest.mark.parametrize("text", ["cooc", "cooc=high", "cooc=1.5", "=0.5"])
def test_a_malformed_positive_control_is_refused_naming_it(text):
    with pytest.raises(ValueError, match="--control: "):
        R.parse_control(text)


def page_report():
    """The least report.json that render draws a page from: one model, nothing compared."""
    s = {"n": 4, "acc": 0.5, "lo": 0.2, "hi": 0.8, "exact": 0.5, "chance": 0.25}
    model = {"mode": None, "trainable_params": 10, "tokens": 100, "flops": 1e9, "seconds": 1.0, "primitive_ppl": None,
             "summary": {"overall": s, "by_level": {"0": s}, "by_type": {"recall": s}}, "composition": {},
             "unit_ppl": {}, "samples": {}}
    return {"corpus": "c", "norm": "none", "units": [], "models": {"base": model}, "comparisons": [], "chance": [],
            "rejected": [], "retention": None}


def written(where, text):
    """A report.json of this text (bytes as they are) in the directory where: its path and its bytes."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / "report.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path, path.read_bytes()


@pytest.mark.parametrize("key", ["chance", "comparisons", "corpus", "models", "norm", "rejected", "retention", "units"])
def test_render_refuses_a_report_without_a_key_the_page_needs_and_writes_nothing(tmp_path, run_report, key):
    path, before = written(tmp_path / "in", json.dumps({k: v for k, v in page_report().items() if k != key}))
    for out in (["--out", tmp_path / "o"], []):  # elsewhere, and in the report's own directory
        p = run_report("render", path, *out)
        assert (p.returncode, p.stderr) == (2, f'error: {path}: not a report.json (no "{key}")\n')
        assert path.read_bytes() == before and not (tmp_path / "o").exists()
        assert sorted(f.name for f in path.parent.iterdir()) == ["report.json"]


def test_the_models_table_gives_no_exact_match_where_no_probe_was_compared():
    """evaluate stores exact 0.0 for an empty group: beside accuracy "-", "0%" would be a score."""
    r = page_report()
    r["models"]["base"]["summary"]["overall"] = {"n": 0, "acc": 0.0, "lo": 0.0, "hi": 1.0, "exact": 0.0, "chance": 0.0}
    assert R._md_models(r)[-1] == "| base | - | 10 | 100 | 1e+09 | 1 s | - | - | - | - |"
    assert R._md_models(page_report())[-1].endswith("| 50% [20%-80%] | 50% |")


@pytest.mark.parametrize("text, problem", [
    ('{"corpus": "x"}', 'not a report.json (no "chance", "comparisons", "models", "norm", "rejected", "retention", '
                        '"units")'),
    ("{}", 'not a report.json (no "chance", "comparisons", "corpus", "models", "norm", "rejected", "retention", '
           '"units")'),
    ("[]", "not a report.json (a JSON array, not an object)"),
    ("null", "not a report.json (a JSON null, not an object)"),
    (b'{"corpus": "\xff"}', "not UTF-8 text (byte 0xff at offset 12)"),
    (json.dumps(dict(page_report(), models={})), 'not a report.json ("models" names no model)'),
    (json.dumps(dict(page_report(), models={"base": {"mode": None}})),
     'not a report.json (model "base" has no "summary")')],
    ids=["corpus only", "empty", "array", "null", "not utf-8", "no model", "no summary"])
def test_render_and_seeds_name_the_file_that_is_not_a_report_and_what_it_lacks(tmp_path, run_report, text, problem):
    path, before = written(tmp_path / "in", text)
    p = run_report("render", path)
    assert (p.returncode, p.stderr) == (2, f"error: {path}: {problem}\n")
    if "corpus" not in problem and "chance" not in problem:  # seeds need less of a report than a page
        p = run_report("seeds", path, path, "--out", tmp_path / "agg")
        assert (p.returncode, p.stderr) == (2, f"error: {path}: {problem}\n")
    assert path.read_bytes() == before and sorted(tmp_path.rglob("*")) == [path.parent, path]


def full_report():
    """page_report() with what compare also writes and the seeds read: a second model compared with the
    first, the compared probes' record with each model's bits, answer frequency, retention and a curve."""
    r = page_report()
    s = r["models"]["base"]["summary"]["overall"]
    r["models"]["tuned"] = copy.deepcopy(r["models"]["base"])
    for bits, m in zip(("10", "11"), r["models"].values()):
        m.update(correct=bits, unit_ppl={"u": {"ppl": 2.0}})
    r.update(units=["u"], probes_sha256={"all": "same"}, retention={"steps": ["base"], "units": ["u"], "acc": [[0.5]]},
             compared={"ids": ["p1", "p2"], "types": ["recall"] * 2, "levels": [0, 0], "units": ["u"] * 2,
                       "keys": [["k1"], ["k2"]]},
             comparisons=[{"a": "base", "b": "tuned", "scope": "overall", "control": True, "n": 2, "clusters": 2,
                           "diff": -0.5, "lo": -1.0, "hi": 0.0, "sentence": "overall: no difference"}],
             answer_frequency={"by_level": {"0": s}, "by_type": {"recall": s}, "correct": "01"},
             curves={"runs": {"scratch": [{"step": 1, "tokens": 10, "flops": 1e9, "overall": s,
                                           "by_type": {"recall": s}, "correct": "11"}]},
                     "references": {"base": {"overall": 0.5, "recall": 0.5}}, "sentences": ["scratch: as base"]})
    return json.loads(json.dumps(r))  # as read from a file: no part shared, so a damage lies in one place


def test_render_and_seeds_read_the_report_the_damaged_ones_below_are_made_from(tmp_path, run_report):
    path, _ = written(tmp_path / "in", json.dumps(full_report()))
    twin, _ = written(tmp_path / "twin", json.dumps(full_report()))
    assert run_report("render", path, "--out", tmp_path / "o").returncode == 0
    p = run_report("seeds", path, twin, "--out", tmp_path / "agg")
    assert p.returncode == 0 and (tmp_path / "agg" / "report.md").is_file(), p.stderr


DELETE = object()  # a damage that takes the key out
DAMAGES = [  # where, the damage, the refusal that names it, the commands that read what it damages
    (("models", "base", "summary", "by_type"), DELETE, 'models.base.summary: no "by_type"', "render seeds"),
    (("models", "base", "summary", "overall"), "x", "models.base.summary.overall: a JSON string, not ", "render seeds"),
    (("models", "base", "summary", "by_type", "recall", "chance"), DELETE, 'models.base.summary.by_type.recall: no '
     '"chance"', "render"),
    (("models", "base", "flops"), "many", "models.base.flops: a JSON string, not a number or null", "render"),
    (("models", "base", "correct"), "abc", "models.base.correct: length 3, not one per compared probe (2)",
     "render seeds"),
    (("comparisons",), ["a"], "comparisons[0]: a JSON string, not an object", "render seeds"),
    (("comparisons", 0, "a"), DELETE, 'comparisons[0]: no "a"', "render seeds"),
    (("comparisons", 0, "b"), "nobody", 'comparisons[0].b: "nobody" is not a model of the report', "render seeds"),
    (("units",), "abc", "units: a JSON string, not an array", "render seeds"),
    (("curves",), [1], "curves: a JSON array, not an object", "render seeds"),
    (("curves", "runs", "scratch", 0, "by_type"), [], "curves.runs.scratch[0].by_type: a JSON array, not an object",
     "render seeds"),
    (("chance",), 3, "chance: a JSON number, not an array", "render"),
    (("retention",), [1], "retention: a JSON array, not null or an object", "render"),
    (("compared",), None, "compared: a JSON null, not an object", "render seeds"),
    (("compared", "keys"), [["k1"]], "compared.keys: length 1, not one per compared probe (2)", "render seeds")]


@pytest.mark.parametrize("keys, value, problem, commands", DAMAGES, ids=[".".join(map(str, d[0])) for d in DAMAGES])
def test_a_report_damaged_deep_inside_is_refused_naming_the_key_path_and_nothing_is_written(
        tmp_path, run_report, keys, value, problem, commands):
    """One line naming the file and where in it the damage lies, exit 2, no file written: not a traceback
    from the middle of a page (a KeyError, TypeError or IndexError) nor a format error naming no file."""
    report = full_report()
    *parents, last = keys
    inner = report
    for k in parents:
        inner = inner[k]
    if value is DELETE:
        del inner[last]
    else:
        inner[last] = value
    path, before = written(tmp_path / "in", json.dumps(report))
    runs = {"render": [["render", path, "--out", tmp_path / "o"], ["render", path]],
            "seeds": [["seeds", path, path, "--out", tmp_path / "o"]]}
    for args in (a for command in commands.split() for a in runs[command]):
        p = run_report(*args)
        assert p.returncode == 2 and p.stderr.startswith(f"error: {path}: not a report.json ({problem}"), p.stderr
        assert p.stderr.endswith(")\n") and len(p.stderr.splitlines()) == 1
        assert path.read_bytes() == before and sorted(tmp_path.rglob("*")) == [path.parent, path]


def test_render_in_the_report_s_own_directory_leaves_its_report_json_as_it_is(tmp_path, run_report):
    path, before = written(tmp_path / "in", json.dumps(page_report()))
    figure = "report.png" if R._pyplot() else R.SKIPPED  # matplotlib is optional
    p = run_report("render", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"wrote {tmp_path / 'in' / 'report.md'}; figure: {figure}\n"
    assert path.read_bytes() == before  # no "plot" key added: the input is compare's record
    assert (tmp_path / "in" / "report.md").read_text().startswith("# accrete comparison: c\n")
    p = run_report("render", "report.json", cwd=tmp_path / "in")  # from its own directory: --out is "."
    assert (p.returncode, p.stdout) == (0, f"wrote report.md; figure: {figure}\n"), p.stderr
    p = run_report("render", path, "--out", tmp_path / "o")  # elsewhere, the JSON beside the page names its figure
    assert p.returncode == 0 and json.loads((tmp_path / "o" / "report.json").read_text())["plot"] == figure
    assert (tmp_path / "o" / "report.md").read_text() == (tmp_path / "in" / "report.md").read_text()


@pytest.mark.parametrize("command", ["render", "seeds", "results"])
def test_an_out_that_cannot_be_made_is_refused_before_anything_is_written(tmp_path, run_report, command):
    path, before = written(tmp_path / "run" / "report", json.dumps(dict(page_report(), probes_sha256={"all": "s"})))
    (tmp_path / "run" / "report" / "results.md").write_text("## run\n")
    afile = tmp_path / "afile"
    afile.write_text("kept\n")
    args = {"render": [path], "seeds": [path, path], "results": [tmp_path / "run"]}[command]
    under = afile / "x" / ("R.md" if command == "results" else "x")
    refusals = {under: f"{afile}: is a file, not a directory, so {under} cannot be made there"}
    if command == "results":  # a file to write
        refusals[tmp_path / "run"] = f"{tmp_path / 'run'}: is a directory, where the output file would be written"
    else:  # a directory to make
        refusals[afile] = f"{afile}: is a file, where the output directory would be made"
    for out, error in refusals.items():
        p = run_report(command, *args, "--out", out)
        assert (p.returncode, p.stderr) == (2, f"error: {error}\n")
    assert afile.read_text() == "kept\n" and path.read_bytes() == before
    assert sorted(f.name for f in (tmp_path / "run" / "report").iterdir()) == ["report.json", "results.md"]


def test_results_refuse_to_write_over_a_run_s_own_section(tmp_path, run_report):
    section = tmp_path / "run" / "report" / "results.md"
    section.parent.mkdir(parents=True)
    section.write_text("## run\n\nits figures\n")
    for out in (section, tmp_path / "run" / ".." / "run" / "report" / "results.md"):  # however it is spelled
        p = run_report("results", tmp_path / "run", "--out", out)
        assert (p.returncode, p.stderr) == (2, f"error: --out {out} would overwrite {section}, which this command "
                                               "reads\n")
    assert section.read_text() == "## run\n\nits figures\n"


def test_results_refuse_one_run_given_twice(tmp_path, run_report):
    section = tmp_path / "run" / "report" / "results.md"
    section.parent.mkdir(parents=True)
    section.write_text("## run\n\nits figures\n")
    p = run_report("results", tmp_path / "run", tmp_path / "run" / ".", "--out", tmp_path / "RESULTS.md")
    assert (p.returncode, p.stderr) == (2, f"error: {tmp_path / 'run'}: given twice (as {tmp_path / 'run'}); its "
                                           "section would be written twice\n")
    assert not (tmp_path / "RESULTS.md").exists()


def test_seeds_refuse_to_write_over_a_seed_s_report(tmp_path, run_report):
    a = seed_report({"curriculum": 0.6, "shuffled": 0.5}, {"overall": 0.1})
    one, before = written(tmp_path / "one", json.dumps(a))
    two, _ = written(tmp_path / "two", json.dumps(a))
    p = run_report("seeds", one, two, "--out", tmp_path / "one")
    assert (p.returncode, p.stderr) == (2, f"error: --out {tmp_path / 'one' / 'report.json'} would overwrite {one}, "
                                           "which this command reads\n")
    assert one.read_bytes() == before and sorted(f.name for f in one.parent.iterdir()) == ["report.json"]


def ladder_run(where, text="figures"):
    """A run directory as ladder.py leaves it for `results`: report/results.md under the heading it writes."""
    (where / "report").mkdir(parents=True)
    (where / "report" / "results.md").write_text(f"## `ladder.py --out {where.as_posix()}`\n\n{text}\n")
    return where


@pytest.mark.parametrize("text", ["# accrete\n\nGrow a corpus.\n\n## Install\n\npip install\n", "{not json\n",
                                  "## `ladder.py --out runs/a`\n\na section without the page's heading\n"])
def test_results_refuse_to_write_over_a_file_that_is_not_a_results_page(tmp_path, run_report, text):
    run = ladder_run(tmp_path / "run")
    out = tmp_path / "README.md"
    out.write_text(text)
    for add in ([], ["--add"]):  # with --add, a README's "## " sections would have been kept as runs
        p = run_report("results", run, "--out", out, *add)
        assert (p.returncode, p.stdout, p.stderr) == (2, "", f'error: {out}: not a results page (its first line is '
                                                      'not "# accrete results"), so it is not written over; give a '
                                                      'new file or a RESULTS.md this command wrote\n')
        assert out.read_text() == text and sorted(f.name for f in tmp_path.iterdir()) == ["README.md", "run"]


def test_results_write_over_an_empty_file_and_a_page_they_wrote(tmp_path, run_report):
    out = tmp_path / "RESULTS.md"
    out.write_text("")  # holds nothing to lose
    p = run_report("results", ladder_run(tmp_path / "run"), "--out", out)
    assert (p.returncode, p.stdout) == (0, f"wrote {out}\n"), p.stderr
    assert out.read_text().startswith("# accrete results\n\nWritten by ") and out.read_text().endswith(
        f"\n## `ladder.py --out {tmp_path / 'run'}`\n\nfigures\n")
    out.write_text(out.read_text().replace("figures", "old figures"))
    p = run_report("results", tmp_path / "run", "--out", out)  # the page it wrote: its run's section replaced
    assert (p.returncode, p.stdout) == (0, f"wrote {out}\n") and "old figures" not in out.read_text(), p.stderr


def test_results_say_how_many_earlier_runs_they_drop_and_that_add_keeps_them(tmp_path, run_report):
    out = tmp_path / "RESULTS.md"
    run = ladder_run(tmp_path / "run")
    out.write_text("# accrete results\n\nintro\n\n## `ladder.py --out a`\n\na figures\n\n## `ladder.py --out b`\n\n"
                   f"b figures\n\n## `ladder.py --out {run}`\n\nold run figures\n\n## Measured by hand: x\n\nhand\n")
    p = run_report("results", run, "--out", out)  # a and b dropped; the run's own section replaced, not counted
    assert (p.returncode, p.stdout) == (0, f"wrote {out} (dropped 2 earlier run(s) the file held; --add keeps them) "
                                           "(kept 1 section(s) measured by hand)\n"), p.stderr
    assert [line for line in out.read_text().splitlines() if line.startswith("## ")] == [
        f"## `ladder.py --out {run}`", "## Measured by hand: x"]
    p = run_report("results", tmp_path / "run", "--out", out)  # nothing left to drop: nothing said of it
    assert p.stdout == f"wrote {out} (kept 1 section(s) measured by hand)\n"


@pytest.mark.parametrize("text", ["garbage\n", "", "# accrete results\n\n## `ladder.py --out a`\n\nfigures\n",
                                  "## run\n\nfigures\n"])
def test_results_refuse_a_run_whose_results_md_is_not_a_ladder_section_naming_it(tmp_path, run_report, text):
    good = ladder_run(tmp_path / "good")
    bad = tmp_path / "bad" / "report" / "results.md"
    bad.parent.mkdir(parents=True)
    bad.write_text(text)
    out = tmp_path / "RESULTS.md"
    p = run_report("results", good, tmp_path / "bad", "--out", out)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"error: {bad}: not a ladder run's results (it does not "
                                                  'start with "## `ladder.py", the heading ladder.py writes)\n')
    assert not out.exists()


def curved_report():
    """page_report with a learning curve: render draws report.png and curves.png for it."""
    point = {"step": 1, "tokens": 10, "flops": 1e9, "overall": {"n": 4, "acc": 0.5, "lo": 0.2, "hi": 0.8},
             "by_type": {"recall": {"n": 4, "acc": 0.5, "lo": 0.2, "hi": 0.8}}}
    return dict(page_report(), curves={"runs": {"scratch": [point, dict(point, step=2, flops=2e9)]},
                                       "references": {"base": {"overall": 0.5, "recall": 0.5}}, "sentences": []})


@pytest.mark.parametrize("name", ["report.md", "report.json", "report.png", "curves.png"])
def test_render_refuses_a_directory_where_a_file_of_the_report_goes_and_writes_none(tmp_path, run_report, name):
    if name.endswith(".png") and not R._pyplot():
        pytest.skip("without matplotlib no figure is drawn")
    path, before = written(tmp_path / "in", json.dumps(curved_report()))
    (tmp_path / "out" / name).mkdir(parents=True)
    p = run_report("render", path, "--out", tmp_path / "out")
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"error: {tmp_path / 'out' / name}: is a directory, where "
                                                  "the output file would be written\n")
    assert [f.name for f in (tmp_path / "out").iterdir()] == [name] and path.read_bytes() == before


@pytest.mark.parametrize("name", ["report.md", "report.json", "report.png", "curves.png"])
def test_write_report_as_compare_calls_it_refuses_a_directory_in_a_file_s_place_before_writing(tmp_path, name):
    """evaluate.compare hands its report to write_report: the same check, before any file."""
    if name.endswith(".png") and not R._pyplot():
        pytest.skip("without matplotlib no figure is drawn")
    (tmp_path / name).mkdir()
    with pytest.raises(ValueError, match=re.escape(name) + r": is a directory, where the output file would be written$"):
        R.write_report(curved_report(), tmp_path)
    assert [f.name for f in tmp_path.iterdir()] == [name]
    R.check_report_files(tmp_path / "new")  # every file a report may write, checked up front: none is in the way


@pytest.mark.parametrize("name", ["report.md", "report.json", "curves.png"])
def test_seeds_refuse_a_directory_where_a_file_of_the_aggregate_goes_and_write_none(tmp_path, name):
    if name.endswith(".png") and not R._pyplot():
        pytest.skip("without matplotlib no figure is drawn")
    (tmp_path / "out" / name).mkdir(parents=True)
    with pytest.raises(ValueError, match=f"{name}: is a directory, where the output file"):
        R.aggregate_seeds([curve_report([0.3, 0.6], 0.4), curve_report([0.5, 0.8], 0.6)], tmp_path / "out")
    assert [f.name for f in (tmp_path / "out").iterdir()] == [name]


@pytest.mark.skipif(not R._pyplot(), reason="without matplotlib no figure is drawn")
@pytest.mark.parametrize("draw", ["report", "curves"])
def test_a_figure_killed_mid_write_leaves_the_one_before_and_no_torn_file(tmp_path, monkeypatch, draw):
    from matplotlib.figure import Figure

    def torn(self, fname, **kwargs):  # half a PNG, then the kill
        Path(fname).write_bytes(b"\x89PNG\r\n")
        raise KeyboardInterrupt
    monkeypatch.setattr(Figure, "savefig", torn)
    path = tmp_path / f"{draw}.png"
    path.write_bytes(b"the figure drawn before")
    report = curved_report()
    with pytest.raises(KeyboardInterrupt):
        R._plot(report, path) if draw == "report" else R.plot_curves(report["curves"], path)
    assert path.read_bytes() == b"the figure drawn before" and [f.name for f in tmp_path.iterdir()] == [path.name]
