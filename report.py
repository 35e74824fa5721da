"""
The comparison report, from report dicts alone: report.md (tables, retention matrix, controls and
plain sentences), report.png and curves.png (when matplotlib is installed), and the aggregate of
per-seed reports (mean, sd and t-interval across seeds). evaluate.compare scores the models and
hands its dict to write_report; this module imports no torch and no evaluate, so a report.json can
be rendered again, or combined across seeds, on any machine.

    python report.py render runs/ladder/report/report.json        # report.md, report.png, curves.png again
    python report.py seeds seed-*/report/report.json --out DIR    # mean, sd, t-interval over seeds
    python report.py results runs/ladder runs/examples --out RESULTS.md   # the runs' results, one page
"""

import argparse
import hashlib
import json
import math
import re
import shlex
from pathlib import Path

from common import atomic_path, atomic_write_text, check_own_page, check_writable, first_repeat, json_kind, \
    refuse_overwriting, run_subcommand, same_file
from presets import UNTRAINED, renamed, settings_now
from stats import MIN_CLUSTERS, NOISE, bootstrap_diff, describe_difference, has_spread, holm, pct, points_range, \
    signed_points, t_interval, t_test


class ReportError(ValueError):
    """A report that cannot be read or combined: not a report.json, or seeds that are not paired."""


# ----------------------------------------------------------------------------- the comparison report

def write_report(report, out_dir, with_json=True):
    """report.md, report.png and curves.png in out_dir, and (with_json) report.json naming the figures."""
    out_dir = Path(out_dir)
    report["plot"] = _figure_name(out_dir / "report.png")
    if report.get("curves"):
        report["curves"]["plot"] = _figure_name(out_dir / "curves.png")
    page = render_markdown(report)  # before any file: a report it cannot render leaves nothing half-written
    figures = _drawn(report["plot"], (report.get("curves") or {}).get("plot"))
    check_report_files(out_dir, ["report.md"] + ["report.json"] * with_json + figures)
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot(report, out_dir / "report.png")
    if report.get("curves"):
        plot_curves(report["curves"], out_dir / "curves.png", report["curves"]["references"])
    if with_json:
        atomic_write_text(out_dir / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out_dir / "report.md", page)


REPORT_FILES = ("report.md", "report.json", "report.png", "curves.png")  # every file write_report may write


def check_report_files(out_dir, names=REPORT_FILES):
    """Refuse (ValueError, one line naming it) any of these files in out_dir that cannot be written there, a
    directory in its place say: checked before the first is written, so none is left without the others."""
    for name in names:
        check_writable(Path(out_dir) / name, "file")


def _drawn(*figures):
    """The file names of the figures a report names that will be drawn (not SKIPPED, not absent)."""
    return [f for f in figures if f not in (None, SKIPPED)]


def cell(s):
    """An accuracy summary as "acc [lo-hi]" in percent (95% interval), or "-" where there is none (or
    it is over no probes)."""
    return f"{pct(s['acc'])} [{pct(s['lo'])}-{pct(s['hi'])}]" if s and s.get("n") != 0 else "-"


def _cell_n(s):
    return f"{cell(s) if s['n'] else '-'} ({s['n']})"


def _num(x, fmt="{:,}"):
    return "-" if x is None else fmt.format(x)


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _header(cells):
    return [_row(cells), "|" + "---|" * len(cells)]


def render_markdown(report):
    """The comparison as a Markdown page: tables, retention matrix, controls, plain sentences."""
    out = [f"# accrete comparison: {report['corpus']}", "",
           f"Multiple-choice accuracy by log-likelihood of each choice after the prompt (norm: {report['norm']}); "
           "cells are accuracy [95% Wilson interval, which takes the probes as independent: too narrow where "
           "many rest on one rule or kind, as reasoning probes do]; differences use a paired bootstrap over the "
           "same probes that resamples what they rest on: each entity and each shared premise (a rule, a kind's "
           "property) gets a random weight, a probe the product of its own (a multiway bootstrap). Probes of units "
           "the gate rejected, and those resting on their facts, are left out of every comparison and reported "
           "apart, and so are the probes a unit's gate read (half of its gated type's). The row \"answer "
           "frequency\" answers each probe with the choice its unit's documents mention most often: what "
           "knowing only how often the text uses each word scores.", ""]
    out += _paragraphs(report.get("notes", []))
    for section in (_md_models, _md_accuracy, _md_composition, _md_retention, _md_controls, _md_sentences,
                    _md_curves, _md_gate_half, _md_rejected, _md_perplexity, _md_samples):
        out += section(report)
    out += ["", f"![accuracy by level and type]({report['plot']})" if report["plot"].endswith(".png")
            else f"Figure: {report['plot']}.", ""]
    return "\n".join(out)


def _md_models(report):
    out = ["## Models", "", "Tokens and FLOPs are counted from random init (the base's training included); wall time is "
           "each model's own training (a merged model's: its last adapter's).", ""]
    out += _header(["model", "mode", "trainable params", "tokens", "FLOPs", "wall time", "primitive ppl",
                    "primitive bpb", "accuracy", "exact match"])
    for n, m in report["models"].items():
        ppl = m["primitive_ppl"] or {}
        out.append(_row([n, m["mode"] or "-", _num(m["trainable_params"]), _num(m["tokens"]),
                         _num(m["flops"], "{:.3g}"),
                         _num(m["seconds"], "{:.0f} s"), _num(ppl.get("ppl"), "{:.2f}"),
                         _num(ppl.get("bpb"), "{:.3f}"), cell(m["summary"]["overall"]),
                         _exact(m["summary"]["overall"])]))
    return out


def _exact(s):
    """Exact match in percent, or "-" over no probe (evaluate stores 0.0 for an empty group)."""
    return pct(s["exact"]) if s.get("n") != 0 else "-"


# what a model scores that learned only how often its units use each word, or which words come with which
# name: report key, row label, how it answers
BASELINES = (("answer_frequency", "answer frequency", "each probe answered with the choice its unit's documents "
              "mention most often"),
             ("association", "association", "each probe answered with the choice mentioned most often in the "
              "documents of its unit that name its entity"))


def _md_accuracy(report):
    models = report["models"]
    first = next(iter(models.values()))["summary"]
    out = []
    for key, title in (("by_level", "level"), ("by_type", "probe type")):
        groups = list(first[key])
        out += ["", f"## Accuracy by {title}", ""] + _header(["model"] + [f"{title} {g}" for g in groups])
        out.append(_row(["chance"] + [pct(first[key][g]["chance"]) for g in groups]))
        for base, label, _ in BASELINES:  # a model that learned only which answers a type favours, or which
            if base in report:  # words come with which name
                out.append(_row([label] + [cell(report[base][key].get(g)) for g in groups]))
        out += [_row([n] + [cell(m["summary"][key].get(g)) for g in groups]) for n, m in models.items()]
    return out


def _md_composition(report):
    models = report["models"]
    if not any(m["composition"] for m in models.values()):
        return []
    out = ["", "## Composition given the premises", "",
           "Probes of non-recall types that name their premises (the recall probes whose facts the answer "
           "follows from): accuracy on all of them, and on those whose premises the same model answers "
           "correctly. A premise and its probe can share their choices and answer (a kind's property, then "
           "a member's): a model that answers a relation with one value, whatever it is asked about, gets "
           "both right together, so read the second column against the base's, not against chance.", ""]
    out += _header(["model", "type", "all: accuracy (n)", "premises right: accuracy (n)", "premises not found"])
    for n, m in models.items():
        for t, c in m["composition"].items():
            out.append(_row([n, t, _cell_n(c["all"]), _cell_n(c["given_premises"]), c["premises_missing"]]))
    return out


def _md_gate_half(report):
    rows = [(n, m["gate_summary"]["overall"]) for n, m in report["models"].items() if m.get("gate_summary")]
    if not rows:
        return []
    out = ["", "## The gate's half", "", "The probes each verified unit's gate read (half of its gated type's; "
           "all of them where its verdict was recorded before gates read half), left out of every table and "
           "sentence above (a unit selected on them would look better on them):",
           ""] + _header(["model", "probes", "accuracy", "exact match"])
    return out + [_row([n, s["n"], cell(s), pct(s["exact"])]) for n, s in rows]


def _md_rejected(report):
    if not report["rejected"]:
        return []
    out = ["", "## Rejected units", "", "Units whose adapter failed the verification gate (latest verdict), "
           "kept out of later stages and out of every table and sentence above: " + ", ".join(_rejected_names(report))
           + ". Their probes, and those of other units that rest on their facts, apart:", ""]
    out += _header(["model", "probes", "accuracy", "chance", "exact match"])
    for n, m in report["models"].items():
        s = (m.get("rejected_summary") or {}).get("overall")  # absent reads as null: none scored
        out.append(_row([n, s["n"], cell(s), pct(s["chance"]), pct(s["exact"])] if s else [n, 0, "-", "-", "-"]))
    return out


def _rejected_names(report):
    """The units the gate rejected, each with the gate's reasons where the report keeps them."""
    why = report.get("rejected_reasons") or {}
    return [u + (f" ({'; '.join(why[u])})" if why.get(u) else "") for u in report["rejected"]]


def _md_retention(report):
    r = report["retention"]
    if not r:
        return []
    out = ["", "## Retention", "", "Rows: accumulation steps; columns: units; cells: accuracy.", ""]
    out += _header(["step"] + r["units"])
    return out + [_row([s] + [pct(a) for a in row]) for s, row in zip(r["steps"], r["acc"])]


def _md_controls(report):
    controls = [c for c in report["comparisons"] if c["control"]]
    if not controls:
        return []
    out = ["", "## Controls", ""] + _header(["scope", "A", "B", "accuracy of A", "accuracy of B",
                                             "A - B, points (95% CI)"])
    for c in controls:
        sa, sb = (_scope(report["models"][x]["summary"], c["scope"]) for x in (c["a"], c["b"]))
        out.append(_row([c["scope"], c["a"], c["b"], cell(sa), cell(sb),
                         f"{signed_points(c['diff'])} ({signed_points(c['lo'])} to {signed_points(c['hi'])})"]))
    return out


def _md_sentences(report):
    return (["", "## What the intervals allow one to say", ""] + [f"- {s}." for s in report["chance"]]
            + [f"- {c['sentence']}." for c in report["comparisons"]])


def _md_perplexity(report):
    out = ["", "## Held-out perplexity by unit", ""] + _header(["model"] + report["units"])
    return out + [_row([n] + [_num((m["unit_ppl"].get(u) or {}).get("ppl"), "{:.2f}") for u in report["units"]])
                  for n, m in report["models"].items()]


def _md_samples(report):
    models = report["models"]
    if not any(m["samples"] for m in models.values()):
        return []
    out = ["", "## Samples"]
    for n, m in models.items():
        out += ["", f"### {n}", ""]
        out += [f"- `{p}` → `{t.strip()}`" for p, texts in m["samples"].items() for t in texts]
    return out


def _scope(summary, scope):
    if scope == "overall":
        return summary["overall"]
    kind, _, group = scope.partition(" ")
    return summary["by_level" if kind == "level" else "by_type"].get(group)


SKIPPED = "skipped (matplotlib is not installed)"  # what a report names for a figure not drawn


def _figure_name(path):
    """What a report names for the figure drawn to path: its file name, or SKIPPED. Known before it is
    drawn, so that a page can be rendered before any file is written."""
    return Path(path).name if _pyplot() else SKIPPED


def _pyplot():
    """matplotlib.pyplot drawing to files, or None when matplotlib is not installed (it is optional)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _plot(report, path):
    """report.png: accuracy by level and by type for each model, with intervals and chance marks;
    nothing without matplotlib (_figure_name says which)."""
    plt = _pyplot()
    if plt is None:
        return
    models = report["models"]
    colors = plt.get_cmap("tab20").colors  # a ladder has 11 models: the default 10-color cycle repeats
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    for ax, (key, title) in zip(axes, (("by_level", "level"), ("by_type", "probe type"))):
        groups = list(next(iter(models.values()))["summary"][key])
        width = 0.8 / len(models)
        for i, (name, m) in enumerate(models.items()):
            s = [m["summary"][key].get(g) or {"acc": 0, "lo": 0, "hi": 0} for g in groups]
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(groups))]
            acc = [c["acc"] for c in s]
            ax.bar(xs, acc, width, label=name, color=colors[i % len(colors)],
                   yerr=[[a - c["lo"] for a, c in zip(acc, s)], [c["hi"] - a for a, c in zip(acc, s)]], capsize=2)
        chance = [next(iter(models.values()))["summary"][key][g]["chance"] for g in groups]
        ax.hlines(chance, [j - 0.45 for j in range(len(groups))], [j + 0.45 for j in range(len(groups))],
                  colors="k", linestyles="dashed", label="chance")
        ax.set_xticks(range(len(groups)), [str(g) for g in groups])
        ax.set_ylim(0, 1)
        ax.set_title(f"accuracy by {title} (95% CI)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, not on them
    fig.tight_layout()
    _save_figure(plt, fig, path)


def _save_figure(plt, fig, path):
    """fig as a PNG at path, written whole or not at all (a kill mid-write leaves no torn image), then closed."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")  # the temporary's name ends in no ".png" to infer it from
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- learning curves

def _curve_x(points):
    """The x axis of a run: FLOPs from random init when every point has them, else tokens, else steps,
    else the checkpoints' order (a checkpoint whose header holds no step)."""
    for key, label in (("flops", "FLOPs from random init"), ("tokens", "tokens from random init"), ("step", "step")):
        if all(p.get(key) is not None for p in points):
            return [p[key] for p in points], label
    return list(range(1, len(points) + 1)), "checkpoint"


def plot_curves(curves, path, references=None):
    """Accuracy against FLOPs, one panel per probe type, one line per run (with its 95% band) and a
    dashed line per reference model (name -> {type: accuracy}); nothing without matplotlib
    (_figure_name says which)."""
    plt = _pyplot()
    if plt is None:
        return
    types = list(dict.fromkeys(t for points in curves["runs"].values() for p in points for t in p["by_type"]))
    cols = min(3, len(types)) or 1
    rows = -(-len(types) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, t in zip(axes.flat, types):
        for i, (run, points) in enumerate(curves["runs"].items()):
            x, label = _curve_x(points)
            s = [p["by_type"].get(t) or {} for p in points]  # a bound is None where one seed measured the type
            acc, lo, hi = ([math.nan if c.get(k) is None else c[k] for c in s] for k in ("acc", "lo", "hi"))
            ax.plot(x, acc, "o-", color=colors[i % 10], label=run)
            ax.fill_between(x, lo, hi, color=colors[i % 10], alpha=0.15)
            ax.set_xlabel(label)
            if all(v > 0 for v in x):
                ax.set_xscale("log")
        for j, (ref, accs) in enumerate((references or {}).items()):
            if accs.get(t) is not None:
                ax.axhline(accs[t], color="k", linestyle=("--", ":", "-.")[j % 3], linewidth=1, label=ref)
        ax.set_ylim(0, 1)
        ax.set_title(f"{t} (95% CI)")
    for ax in list(axes.flat)[len(types):]:
        ax.axis("off")
    handles = {}  # every run and reference once, whichever panels they appear in
    for ax in axes.flat:
        handles.update({label: h for h, label in zip(*ax.get_legend_handles_labels())})
    axes.flat[0].legend(handles.values(), handles.keys(), fontsize=8)
    fig.tight_layout()
    _save_figure(plt, fig, path)


def text_curves(curves, references=None):
    """The learning curves as a text figure, for a report drawn without matplotlib: per probe type,
    accuracy by tens (rows) at each run's points (columns, in order), a letter per run where it
    stands and one per reference model in the last column."""
    names = list(curves["runs"]) + list(references or {})
    firsts = [n.split("-")[-1][0] for n in names]  # scratch-curriculum: c; merged: m
    marks = dict(zip(names, firsts if len(set(firsts)) == len(firsts) else map(str, range(1, len(names) + 1))))
    points = max(curves["runs"].values(), key=len, default=[])
    x, label = _curve_x(points)
    types = list(dict.fromkeys(t for pts in curves["runs"].values() for p in pts for t in p["by_type"]))
    out = ["```", "; ".join(f"{m} {n}" for n, m in marks.items()) + f"; columns: {label}, " +
           ", ".join(f"{v:.3g}" for v in x) + "; references in the last column"]

    def at(acc):  # the row (tens of percent, halves up) an accuracy falls in, None where not measured
        return None if acc is None else math.floor(10 * acc + 0.5)
    for t in types:
        cells = [["".join(m for n, m in marks.items() if n in curves["runs"] and i < len(curves["runs"][n])
                          and at((curves["runs"][n][i]["by_type"].get(t) or {}).get("acc")) == row)
                  for i in range(len(points))] +
                 ["".join(m for n, m in marks.items() if at((references or {}).get(n, {}).get(t)) == row)]
                 for row in range(10, -1, -1)]
        out += ["", t] + [(f"{10 * row:4d}% | " + "".join(c.ljust(6) for c in line)).rstrip()
                          for row, line in zip(range(10, -1, -1), cells)]
    return out + ["```"]


def _md_curves(report, figure=True):
    c = report.get("curves")
    if not c:
        return []
    types = list(dict.fromkeys(t for points in c["runs"].values() for p in points for t in p["by_type"]))
    out = ["", "## Learning curves", "", "Accuracy on the same probes at checkpoints of each run; tokens and FLOPs "
           "from random init. Sentences: each run's last point against the reference models, and its last two "
           "points against each other (paired bootstraps over what the probes rest on). A rise between the last "
           "two points is not the compute's alone where the learning rate decays between them (wsd) or an order "
           "first serves a level there (curriculum).", ""]
    out += _header(["run", "step", "tokens", "FLOPs", "overall"] + [f"type {t}" for t in types])
    for run, points in c["runs"].items():
        out += [_row([run, _num(p["step"]), _num(p["tokens"]), _num(p["flops"], "{:.3g}"), cell(p["overall"])]
                     + [cell(p["by_type"].get(t)) for t in types]) for p in points]
    for ref, accs in c["references"].items():
        out.append(_row([f"{ref} (reference)", "", "", "", pct(accs["overall"])]
                        + [pct(accs[t]) if t in accs else "-" for t in types]))
    out += [""] + [f"- {s}." for s in c["sentences"]]
    if not figure:
        return out
    if c["plot"].endswith(".png"):
        return out + ["", f"![learning curves]({c['plot']})"]
    return out + ["", "The learning curves as a figure in text (with matplotlib installed, curves.png):", ""] + \
        text_curves(c, c["references"])


# ----------------------------------------------------------------------------- across seeds

def probes_sha256(probes):
    """A probe set's name: the sha256 of each probe's unit, prompt, answer, choices and type, in order."""
    rows = [[p.get("unit"), p["probe"], p["answer"], p["choices"], p.get("type", "recall")] for p in probes]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


NO_PROBES = probes_sha256([])  # a report's gate_read where no gate read any probe


def probe_id(probe):
    """One probe's name across reports: a short sha256 of its unit, prompt, answer, choices and type."""
    return probes_sha256([probe])[:16]


def bits(correct):
    """Per-probe correctness as report.json keeps it: a string of 0s and 1s."""
    return "".join("1" if c else "0" for c in correct)


def aggregate_seeds(reports, out_dir=None, names=None, worlds=False):
    """N per-seed compare() reports (same models and probes, paired by seed; with worlds, each seed
    on its own world: the same units, other probes) -> per model and scope the mean accuracy with its
    sd and 95% t-interval; per compared pair and scope the mean paired difference, its sd, t-interval
    and sentence. Writes report.md and report.json to out_dir if given."""
    _check_seeds(reports, names or [f"report {k}" for k in range(len(reports))], worlds)
    names = common_models(reports)
    shared = None if worlds else shared_probes(reports)
    models = {n: {scope: dict(t_interval(v), values=v, **({"probes": _n_shared(shared, scope)} if shared else {}))
                  for scope, v in _seed_accuracies(reports, n, shared).items()} for n in names}
    pairs = _seed_pairs(reports, names, models, shared, worlds)
    units = by_unit(reports, names, worlds)
    _holm_family(pairs)  # the comparisons and the by-unit table: two families, each of many intervals
    _holm_family([p for row in units for p in row["pairs"]])
    agg = {"seeds": len(reports), "names": [_seed_name(r, k) for k, r in enumerate(reports)], "worlds": worlds,
           "gate_half": _gate_half(reports),
           "shared_probes": bool(shared), "models": models, "comparisons": pairs,
           "rejected": [r.get("rejected", []) for r in reports], "curves": seed_curves(reports, shared),
           "by_unit": units, "notes": _seed_notes(reports),
           # a model some seed lacks (a merge step its gate rejected, a run its units gave no cause for)
           "lacking": {n: sum(n in other["models"] for other in reports)
                       for n in dict.fromkeys(n for r in reports for n in r["models"]) if n not in names}}
    for base, _, _ in BASELINES:
        if shared and all("correct" in r.get(base, {}) for r in reports):
            agg[base] = _shared_prior(reports, shared, base)
    # the shared probes leave out the units some seed rejected: the seeds that kept them all read every probe
    whole = [k for k, r in enumerate(reports) if not r.get("rejected")]
    if shared and 2 <= len(whole) < len(reports):
        agg["every_unit"] = {"names": [agg["names"][k] for k in whole],
                             "comparisons": aggregate_seeds([reports[k] for k in whole])["comparisons"]}
    if out_dir is not None:
        _write_seeds(agg, Path(out_dir))
    return agg


def _write_seeds(agg, out_dir):
    """The aggregate's report.md, curves.png and report.json (naming the figure) in out_dir."""
    if agg["curves"]:
        agg["curves"]["plot"] = _figure_name(out_dir / "curves.png")
    page = render_seeds_markdown(agg)  # before any file: nothing half-written if it cannot be rendered
    check_report_files(out_dir, ["report.md", "report.json"] + _drawn((agg["curves"] or {}).get("plot")))
    out_dir.mkdir(parents=True, exist_ok=True)
    if agg["curves"]:
        plot_curves(agg["curves"], out_dir / "curves.png", agg["curves"]["references"])
    atomic_write_text(out_dir / "report.json", json.dumps(agg, indent=1) + "\n")
    atomic_write_text(out_dir / "report.md", page)


def _seed_pairs(reports, names, models, shared, worlds):
    """Each compared pair and scope across seeds: every seed's difference (on the shared probes of the
    scope, with its bootstrap, where shared), their mean, sd and t-interval, and the sentence."""
    pairs = []
    for a, b, scope in dict.fromkeys((c["a"], c["b"], c["scope"]) for r in reports for c in r["comparisons"]
                                     if c["a"] in names and c["b"] in names):
        found = [next((c for c in r["comparisons"] if (c["a"], c["b"], c["scope"]) == (a, b, scope)), None)
                 for r in reports]
        if shared and not _n_shared(shared, scope):
            pairs.append(dict(a=a, b=b, scope=scope, values=[None] * len(reports), **t_interval([]), probes=None,
                              sentence=f"{scope}: the seeds that measured it share no probe: no comparison across "
                                       "seeds"))
            continue
        # each seed's difference and bootstrap from its bits: on the probes every seed shares in this scope, and
        # also in a seed whose own report did not compare the pair (one with no scratch run in curriculum order
        # set its shuffled run against the grown model, the others their curriculum run)
        if shared:
            found = [_shared_diff(r, a, b, shared[scope][k]) for k, r in enumerate(reports)]
        else:
            found = [c or (_shared_diff(r, a, b, _scope_indices(r, scope)) if _has_bits(r, a, b) else None)
                     for r, c in zip(reports, found)]
        v = [c and c["diff"] for c in found]
        t = dict(t_interval(v), probes=_probe_halfwidth(found))
        sizes = [c["n"] for c in found if c and c.get("n") is not None]  # each seed's probes in this scope
        pairs.append(dict(a=a, b=b, scope=scope, values=v, **t,
                          sentence=_seeds_sentence(models, a, b, scope, t, worlds, sizes, bool(shared))))
    return pairs


def _holm_family(comparisons):
    """Each comparison across seeds gets "p", its paired t-test over seeds (None: no interval), and "holm",
    that p adjusted by Holm over the family: with dozens of 95% intervals read at once, a few leave out 0
    by chance alone where no difference exists; those whose holm is below 0.05 hold for the family."""
    ps = [t_test(c["values"]) for c in comparisons]
    for c, p, adjusted in zip(comparisons, ps, holm(ps)):
        c.update(p=p, holm=adjusted)


def by_unit(reports, names, worlds=False):
    """Each unit and probe type across the seeds that compared any probe of it (those whose gates kept
    the unit): per compared pair of models, every seed's difference on the probes of that unit and type
    that all those seeds compare (with worlds, on each seed's own), their mean, sd and t-interval, and
    the bootstrap half-width. A unit some seed rejected is read in the seeds that kept it, where the
    probes every seed shares leave it out; a probe resting on a fact of a unit that one of those seeds
    rejected is still left out of all. [] for reports that do not record their compared probes' units."""
    if not all("units" in r.get("compared", {}) for r in reports):
        return []
    pairs = list(dict.fromkeys((c["a"], c["b"]) for r in reports for c in r["comparisons"]
                               if c["a"] in names and c["b"] in names))
    if not pairs:  # the models every seed has include no compared pair (a seed whose gate kept no unit)
        return []
    where = [list(zip(r["compared"]["units"], r["compared"]["types"])) for r in reports]
    rows = []
    for unit in dict.fromkeys(reports[0]["units"] + [u for w in where for u, _ in w]):
        for kind in dict.fromkeys(t for w in where for u, t in w if u == unit):
            picked = [[i for i, ut in enumerate(w) if ut == (unit, kind)] for w in where]
            idx = [i or None for i in picked] if worlds else _in_every(reports, picked)
            row = dict(unit=unit, type=kind, seeds=sum(bool(i) for i in picked),
                       probes=[len(i) if i is not None else None for i in idx], pairs=[])
            for a, b in pairs:
                found = [_shared_diff(r, a, b, i) for r, i in zip(reports, idx)]
                v = [c and c["diff"] for c in found]
                row["pairs"].append(dict(a=a, b=b, values=v, **t_interval(v), probes=_probe_halfwidth(found)))
            rows.append(row)
    return rows


def _md_by_unit(agg, pairs=None):
    """The by-unit rows as a Markdown table: one column per compared pair (those in pairs, if given)."""
    rows = agg.get("by_unit")
    shown = [(p["a"], p["b"]) for p in rows[0]["pairs"] if pairs is None or (p["a"], p["b"]) in pairs] if rows else []
    if not shown:
        return []
    n = sum(has_spread(p) for row in rows for p in row["pairs"] if (p["a"], p["b"]) in shown)
    family = sum(p.get("p") is not None for row in rows for p in row["pairs"])
    out = ["Each unit and type in the seeds that compared its probes (those whose gates kept the unit), "
           + ("each seed on its own world's probes" if agg.get("worlds") else "on those all of them compare (a "
              "probe resting on a fact of a unit one of them rejected is left out of all)")
           + ": A - B in points, the mean over those seeds [95% t-interval over them; none from one seed or "
           f"where every seed differs alike]. Of these {n} intervals, about one in twenty where no difference "
           "exists would leave out 0 by chance alone; ‡ marks one that holds across seeds under Holm's correction "
           f"over every by-unit interval the report reads ({family}, paired t-tests over seeds, family-wise error "
           "5%). " + ("Each seed's probes are its own world's draw, so the t-interval covers that draw too."
                      if agg.get("worlds") else
                      "The seeds share their probes, so the t-interval leaves out how far another draw of probes "
                      "could move a difference: † marks one that also leaves out 0 over such a draw (the mean ± "
                      "sqrt(t half-width² + the seeds' mean bootstrap half-width²)), as the sentences read it; no † "
                      "is drawn where a seed's bootstrap had too few clusters to be read."), ""]
    out += _header(["unit", "type", "seeds", "probes"] + [f"{a} - {b}" for a, b in shown])
    for row in rows:
        sizes = [k for k in row["probes"] if k is not None]
        probes = "none shared" if not max(sizes) else \
            f"{min(sizes)}" if min(sizes) == max(sizes) else f"{min(sizes)}-{max(sizes)}"
        cells = [_diff_cell(p, not agg.get("worlds")) for p in row["pairs"] if (p["a"], p["b"]) in shown]
        out.append(_row([row["unit"], row["type"], f"{row['seeds']} of {agg['seeds']}", probes] + cells))
    return out


def _diff_cell(t, mark=True):
    """A mean difference in signed points with its t-interval: "+3 [-2 to +8]"; "+3" from one seed,
    "+3 in each seed" where all alike. With mark, a † where the difference also leaves out 0 over a
    draw of probes (_over_probes)."""
    if t["mean"] is None:
        return "-"
    if not has_spread(t):
        return signed_points(t["mean"]) + (" in each seed" if t["lo"] is not None else "")
    both = _over_probes(t) if mark else None
    dagger = " †" if both and (both[0] > 0 or both[1] < 0) else ""
    dagger += " ‡" if _holds_for_family(t) else ""
    return f"{signed_points(t['mean'])} [{points_range(t['lo'], t['hi'])}]{dagger}"


def _holds_for_family(t):
    """Whether a difference across seeds holds under Holm's correction over its family (_holm_family)."""
    return t.get("holm") is not None and t["holm"] < 0.05


def _holm_line(comparisons, what):
    """A sentence on which of the comparisons (what: the family, in words) hold under Holm's correction."""
    tested = [c for c in comparisons if c.get("p") is not None]
    if not tested:
        return []
    hold = [f"{c['scope']} {c['a']} - {c['b']}" for c in tested if _holds_for_family(c)]
    return ["", f"Holm's correction over {what} ({len(tested)} paired t-tests over seeds, family-wise error 5%): "
            + (f"across seeds, {len(hold)} hold: {'; '.join(hold)}." if hold else "across seeds, none holds.")
            + " A difference above that is not among them may be one of the chance findings so many intervals make."]


def _seed_name(report, k):
    """A seed's name on the page: its run directory's (seed-N), else its place among the reports."""
    return Path(report["corpus"]).parent.name if report.get("corpus") else f"report {k}"


def gate_read_half(report):
    """Whether the report's tables leave out a half its gates read: no gate_read hash (reports from
    before the gates read half) or NO_PROBES (no accepted unit's gate read any) means they do not."""
    return report.get("probes_sha256", {}).get("gate_read") not in (None, NO_PROBES)


def _gate_half(reports):
    """Whether the seeds' numbers leave out a half the gates read: decided over the seeds that compare
    any probe (one whose gate rejected every unit read none, and adds no number to leave it out of)."""
    scored = [r for r in reports if next(iter(r["models"].values()))["summary"]["overall"].get("n") != 0]
    return all(map(gate_read_half, scored or reports))


def _check_seeds(reports, names, worlds=False):
    if len(reports) < 2:
        raise ReportError(f"{len(reports)} report(s) given; an interval across seeds needs at least 2")
    first = reports[0]
    for k, r in enumerate(reports[1:], 1):
        same = r.get("probes_sha256", {}).get("all") == first.get("probes_sha256", {}).get("all")
        if r["units"] != first["units"]:
            raise ReportError(f"{names[k]} scored other units than {names[0]}; seeds are paired unit by unit")
        if r.get("norm") != first.get("norm"):  # a mean per token against a sum is no seed-to-seed difference
            raise ReportError(f"{names[k]} scored choices by their {r.get('norm')} log-likelihood, {names[0]} by "
                              f"their {first.get('norm')}; seeds are compared scored alike (compare's --norm)")
        if same == worlds:
            raise ReportError(f"{names[k]} scored {'the same probes as' if same else 'other probes than'} {names[0]}; "
                              + ("seeds on their own worlds read other probes" if worlds else
                                 "seeds are paired on the same probes (each seed on its own world: --worlds)"))
    if not common_models(reports):
        raise ReportError(f"{', '.join(names)}: no model is in every one of these reports; seeds are paired model "
                          "by model")
    _check_settings([r.get("settings") for r in reports], names, worlds)


def _check_settings(settings, names, worlds):
    """Seeds are runs of one ladder's settings that differ in their seed (and with worlds, their world's
    seed) alone; the same run given twice would agree with itself, an interval of width 0. Reports
    without "settings" (compare's own, or older ladders') are not checked, unless others have them: a
    ladder's seed beside a report made apart is not one of its seeds."""
    if None in settings:
        recorded = next((k for k, s in enumerate(settings) if s is not None), None)
        if recorded is not None:
            raise ReportError(f"{names[settings.index(None)]} records no settings and {names[recorded]} a ladder's: seeds are runs of one "
                              "ladder's settings (a report of evaluate.py compare pools only with others of its kind)")
        return
    # a setting some seed recorded and another ran before it existed reads as what the code did then
    given = [renamed(s) for s in settings]
    keys = set().union(*given)
    settings = [{k: v for k, v in settings_now(g, g.get("preset")).items() if k in keys} for g in given]

    def shown(k, key):
        return f"{settings[k].get(key)}" + ("" if key in given[k] else " (not recorded)")

    free = ("seed", "world_seed") if worlds else ("seed",)
    seen = {}
    for k, s in enumerate(settings):
        other = [f"{key} {shown(k, key)} against {shown(0, key)}" for key in sorted(set(s) | set(settings[0]))
                 if key not in free + UNTRAINED and s.get(key) != settings[0].get(key)]
        if other:
            raise ReportError(f"{names[k]} was trained with other settings than {names[0]} ({', '.join(other)}); "
                              "seeds are runs of one ladder's settings")
        run = tuple(s.get(key) for key in free)
        if run in seen:
            words = " and ".join(f"{key.replace('_', ' ')} {v}" for key, v in zip(free, run))
            raise ReportError(f"{names[k]} was trained with {words}, as {names[seen[run]]} was: the same run twice "
                              "is not two seeds")
        seen[run] = k


def common_models(reports):
    """The models every report holds, in the first report's order (a merge step exists only in the
    seeds where its unit passed the gate)."""
    return [n for n in reports[0]["models"] if all(n in r["models"] for r in reports)]


def _scopes(reports, name):
    """The scopes ("overall", "level L", "type T") some report has for the model, in their order."""
    scopes = {"overall": None}
    for r in reports:
        s = r["models"][name]["summary"]
        scopes.update({f"{key[3:]} {g}": None for key in ("by_level", "by_type") for g in s[key]})
    return list(scopes)


def shared_probes(reports):
    """scope -> per report the indices, in its "compared" record, of the scope's probes that every
    report with any probe in that scope compared (None for a report with none there); None where a
    report lacks the record. Seeds whose gates kept other units compare other probes, and a mean of
    their accuracies would mix sets: each seed is read on the probes all of them share."""
    if not all("compared" in r for r in reports):
        return None
    return {scope: _in_every(reports, [_scope_indices(r, scope) for r in reports])
            for scope in dict.fromkeys(sc for n in common_models(reports) for sc in _scopes(reports, n))}


def _scope_indices(report, scope):
    """The indices, in the report's "compared" record, of its probes in one scope."""
    compared = report["compared"]
    return [i for i, (t, lv) in enumerate(zip(compared["types"], compared["levels"]))
            if scope in ("overall", f"type {t}", f"level {lv}")]


def _in_every(reports, picked):
    """picked: per report the indices of its compared probes in one scope -> per report those of them
    that every report with any probe there compared (None for a report with none there)."""
    having = [{r["compared"]["ids"][i] for i in idx} for r, idx in zip(reports, picked) if idx]
    common = set.intersection(*having) if having else set()
    return [[i for i in idx if r["compared"]["ids"][i] in common] if idx else None for r, idx in zip(reports, picked)]


def _has_bits(report, *names):
    """Whether the report keeps each probe's correctness for these models (reports before it did not)."""
    return "compared" in report and all("correct" in report["models"][n] for n in names)


def _n_shared(shared, scope):
    return next((len(idx) for idx in shared[scope] if idx is not None), 0)


def _seed_accuracies(reports, name, shared=None):
    """scope -> the model's accuracy in each report (None where absent): on the probes every seed
    shares in that scope (shared_probes), or, without them, on each report's own."""
    if shared:
        return {scope: [_mean_bits(r["models"][name]["correct"], idx) for r, idx in zip(reports, shared[scope])]
                for scope in _scopes(reports, name)}
    # a seed with no probe in a scope (its gate rejected every unit) has no accuracy there, not 0%
    return {scope: [(s or {}).get("acc") if (s or {}).get("n") != 0 else None
                    for s in (_scope(r["models"][name]["summary"], scope) for r in reports)]
            for scope in _scopes(reports, name)}


def _shared_prior(reports, shared, base="answer_frequency"):
    """type -> a baseline's (BASELINES) accuracy in each seed with probes of it, on the shared ones."""
    types = dict.fromkeys(t for r in reports for t in r[base]["by_type"])
    accs = {t: [_mean_bits(r[base]["correct"], idx) for r, idx in zip(reports, shared[f"type {t}"])]
            for t in types}
    return {t: [a for a in v if a is not None] for t, v in accs.items() if any(a is not None for a in v)}


def _mean_bits(correct, idx):
    """The share of 1s of a bits string at the indices idx; None for no index (or idx None)."""
    return sum(correct[i] == "1" for i in idx) / len(idx) if idx else None


def _shared_diff(report, a, b, idx):
    """One seed's a - b on the probes at idx, as a comparison: diff, 95% paired bootstrap, n, clusters."""
    if not idx:
        return None
    ca, cb = ([report["models"][m]["correct"][i] == "1" for i in idx] for m in (a, b))
    keys = [tuple(report["compared"]["keys"][i]) for i in idx]
    diff, lo, hi = bootstrap_diff(ca, cb, keys)
    return {"diff": diff, "lo": lo, "hi": hi, "n": len(idx), "clusters": len({k for ks in keys for k in ks})}


def _probe_halfwidth(comparisons):
    """The mean over seeds of each seed's bootstrap half-width (hi - lo) / 2: how far the world's choice
    of probes moves a difference, which the t-interval over seeds, on the same probes, leaves out. None
    where a seed's bootstrap resampled too few clusters to have a width worth reading (stats.MIN_CLUSTERS)."""
    comparisons = [c for c in comparisons if c and c.get("lo") is not None]
    if any(c.get("clusters", MIN_CLUSTERS) < MIN_CLUSTERS for c in comparisons):
        return None
    widths = [(c["hi"] - c["lo"]) / 2 for c in comparisons]
    return sum(widths) / len(widths) if widths else None


def _seeds_sentence(models, a, b, scope, t, worlds=False, sizes=(), shared=False):
    """One sentence on a - b across seeds (t: its t_interval with "probes", the bootstrap half-width;
    sizes: each seed's probe count; shared: each seed read on the probes all of them share). Seeds on
    one world share its probes, so averaging over seeds does not shrink the probes' sampling error: a
    difference the t-interval finds is said to hold over a draw of probes only where mean ±
    sqrt(t half-width² + probes²) leaves out 0 too. With worlds each seed read its own probes, and the
    t-interval already covers their draw."""
    if t["lo"] is None:
        return f"{scope}: {a} - {b} was measured in {t['n']} seed(s) only: no interval across seeds"
    acc_a, acc_b = ((models[x].get(scope) or {}).get("mean") or 0.0 for x in (a, b))
    probes = "" if t.get("probes") is None else f"; over probes, each seed's bootstrap: ±{100 * t['probes']:.0f}"
    if not has_spread(t):  # every seed alike (duplicated reports, tiny scopes): no width is no certainty
        return (f"{scope}: {a} ({pct(acc_a, acc_b)}) - {b} ({pct(acc_b, acc_a)}) is {signed_points(t['mean'])} "
                f"points in each of {t['n']} seeds: no spread across seeds to form an interval{probes}")
    said = f"{scope}: " + describe_difference(a, acc_a, b, acc_b, (t["mean"], t["lo"], t["hi"]))
    if worlds:
        return f"{said} across {t['n']} seeds, each on its own world{probes}"
    if shared:
        where = f"the {sizes[0]} probes of one world that every seed compares"
    else:
        where = ("one world's probes" if len(set(sizes)) < 2
                 else f"probe sets of {min(sizes)} to {max(sizes)} from one world")
    said += f" across {t['n']} training seeds on {where}"
    if t.get("probes") is None or t["lo"] <= 0 <= t["hi"]:
        return said + probes
    lo, hi = _over_probes(t)
    together = f"(seeds and probes: 95% CI {points_range(lo, hi)})"
    if lo > 0 or hi < 0:
        return f"{said}, and over a draw of probes {together}"
    return f"{said}, but no difference is detectable over a draw of probes {together}"


def _over_probes(t):
    """The interval over seeds and a draw of probes together: mean ± sqrt(t half-width² + the seeds'
    mean bootstrap half-width²); None without both."""
    if t["lo"] is None or t.get("probes") is None:
        return None
    half = math.hypot((t["hi"] - t["lo"]) / 2, t["probes"])
    return t["mean"] - half, t["mean"] + half


def _seed_cell(t, sd=True, of=None):
    """mean ± sd [t-interval] in percent, from t_interval's dict or a curve point's (acc for mean); with
    `of` seeds in all, how many the mean is over where fewer (the others had no probe there)."""
    mean = t["mean"] if "mean" in t else t["acc"]
    if mean is None:
        return "-"
    fewer = f" ({t['n']} seed{'s' if t['n'] != 1 else ''})" if of and t["n"] < of else ""
    if t["sd"] is None:
        return pct(mean) + fewer
    if not has_spread(t):  # every seed alike: no spread to form an interval from
        return f"{pct(mean)} in each seed{fewer}"
    spread = f" ± {100 * t['sd']:.0f}" if sd else ""
    return f"{pct(mean)}{spread} [{pct(max(0.0, t['lo']))}-{pct(min(1.0, t['hi']))}]{fewer}"


def render_seeds_markdown(agg):
    """The aggregate across seeds as a Markdown page: accuracies, paired differences, sentences."""
    models = agg["models"]
    scopes = list(dict.fromkeys(s for m in models.values() for s in m))
    out = [f"# accrete across {agg['seeds']} seeds", "",
           "Accuracy on the probes of units the gate did not reject" + (" (less the half its gate read)" if
                                                                         agg.get("gate_half") else "") + ": mean over "
           "seeds ± sd in points [95% t-interval over seeds]. Differences are paired by seed: each seed's A - B, "
           "then their mean, sd and t-interval. " + ("Each seed reads its own world, so the t-interval covers "
           "the draw of the world's creatures, kinds and rules as well as training noise; each seed's bootstrap "
           "over clusters, whose half-width (mean over seeds) is the last column, is within one world." if
           agg.get("worlds") else "Every seed reads the same world, so the t-interval covers training noise on "
           "these probes; how far another draw of probes could move a difference is each seed's bootstrap over "
           "clusters, whose half-width (mean over seeds) is the last column. The seeds share those probes, so "
           "their sampling error does not shrink over seeds: a sentence calls a difference detectable over a draw "
           "of probes only where the mean ± sqrt(t half-width² + probes ±²) leaves out 0.") +
           f" Each interval is 95% on its own: of the {len(agg['comparisons'])} comparisons below, about one in "
           "twenty of those where no difference exists would leave out 0 by chance alone; the Holm p is each "
           "difference's paired t-test over seeds adjusted for all of them (below 0.05: it holds with the "
           "family-wise error at 5%)." +
           (" Each seed is read on the probes that every seed with probes in the scope compares: where the gates "
            "kept other units in other seeds, the probes some seeds lack are left out of all (the first row "
            "counts those kept), so each mean is over one set." if agg.get("shared_probes") else ""), ""]
    out += _paragraphs(agg.get("notes", [])) + _lacking(agg)
    out += ["## Accuracy", ""] + _header(["model"] + scopes)
    if agg.get("shared_probes"):
        first = next(iter(models.values()))
        out.append(_row(["probes every seed compares"] + [str(first[s].get("probes", "-")) if s in first else "-"
                                                          for s in scopes]))
    out += [_row([n] + [_seed_cell(m[s], of=agg["seeds"]) if s in m else "-" for s in scopes])
            for n, m in models.items()]
    out += ["", "## Learning curves"] + _md_seed_curves(agg["curves"]) if agg.get("curves") else []
    out += ["", "## Paired differences", ""] + _header(["scope", "A", "B", "A - B per seed, points",
                                                          "mean", "sd", "95% t-interval", "probes ±", "Holm p"])
    for c in agg["comparisons"]:
        seeds = ", ".join("-" if v is None else signed_points(v) for v in c["values"])
        # as the sentences read them: no interval where every seed agrees, none past ±100 points
        spread = ["-", "-"] if c["sd"] is None else ["0", "none: every seed alike"] if not has_spread(c) else \
            [f"{100 * c['sd']:.1f}", f"{100 * max(-1.0, c['lo']):+.1f} to {100 * min(1.0, c['hi']):+.1f}"]
        probes = "-" if c.get("probes") is None else f"{100 * c['probes']:.1f}"
        mean = "-" if c["mean"] is None else f"{100 * c['mean']:+.1f}"
        holm_p = "-" if c.get("holm") is None else f"{c['holm']:.2g}"
        out.append(_row([c["scope"], c["a"], c["b"], seeds, mean] + spread + [probes, holm_p]))
    out += ["", "## What the seeds allow one to say", ""] + [f"- {c['sentence']}." for c in agg["comparisons"]]
    out += _holm_line(agg["comparisons"], "these comparisons")
    if agg.get("every_unit"):
        e = agg["every_unit"]
        out += ["", f"## In the {len(e['names'])} seeds whose gates kept every unit ({', '.join(e['names'])})", "",
                "Read on all their probes, the units some other seed rejected included:", ""]
        out += [f"- {c['sentence']}." for c in e["comparisons"]]
    table = _md_by_unit(agg)
    if table:
        out += ["", "## By unit", ""] + table
    if any(r != agg["rejected"][0] for r in agg["rejected"]):
        out += ["", "The gate rejected different units in different seeds (" +
                "; ".join(f"{name}: {', '.join(r) or 'none'}" for name, r in zip(agg["names"], agg["rejected"])) +
                "): " + ("in each column every seed with probes of it is read on those all of them compare."
                         if agg.get("shared_probes") else "each seed's numbers are over the probes of its own "
                         "accepted units.")]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- the positive control

def parse_control(text):
    """"inference_cooccur=0.6,chain=0.5" -> {type: least accuracy}; a ValueError names a malformed item."""
    bar = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = (s.strip() for s in item.partition("="))
        try:
            bar[name] = float(value)
        except ValueError:
            raise ValueError(f"--control: {item!r} is not TYPE=ACCURACY (e.g. chain=0.5)") from None
        if not name or not 0 <= bar[name] <= 1:
            raise ValueError(f"--control: {item!r} needs a probe type and an accuracy from 0 to 1")
    return bar


def control_lines(bar, reports, agg=None):
    """Which models reach the positive control (at least bar[type] on every type of bar): in one
    report, or on the mean over seeds and seed by seed (each seed's own models, on the probes agg
    reads them on); then, where bar has several types, which reach each type's bar (a type whose bar
    some model passes has a positive control of its own). Where the compared probes lack a type of bar: a
    line saying so if the gate rejected the units that hold it, else none (units of other types)."""
    if not bar:
        return []
    head = "Positive control (" + ", ".join(f"{t} {pct(v)} or more" for t, v in bar.items()) + "): "
    types = {t for r in reports for m in r["models"].values() for t in m["summary"]["by_type"]}
    missing = [t for t in bar if t not in types]
    if missing:
        apart = {t for r in reports for m in r["models"].values()
                 for t in (m.get("rejected_summary") or {}).get("by_type", {})}
        return [head + f"not judged, as no {' or '.join(missing)} probe was compared: the gate rejected the units "
                "that hold them."] if set(missing) <= apart else []
    # each report's own models, one accuracy per type of bar (a merge step is only in the seeds it passed);
    # across seeds read on shared probes, each seed's value on them, as the means are
    if agg is not None and agg.get("shared_probes"):
        per = _shared_type_accuracies(bar, reports)
    else:
        per = [{n: [(_scope(m["summary"], f"type {t}") or {}).get("acc") for t in bar]
                for n, m in r["models"].items()} for r in reports]
    if agg is None:
        names = [n for n, a in per[0].items() if _reaches(bar, a)]
        return [head + f"reached by {', '.join(names) or 'no model'}{_short_by_rounding(bar, per[0])}."] + \
            _control_by_type(bar, per[0])
    means = {n: [(m.get(f"type {t}") or {}).get("mean") for t in bar] for n, m in agg["models"].items()}
    mean = [n for n, a in means.items() if _reaches(bar, a)]
    mean_text = (', '.join(mean) or 'no model') + _short_by_rounding(bar, means)
    # seed by seed, of the seeds that measured the types (a seed whose gate kept no unit of a type has none)
    measured = {n: [p[n] for p in per if n in p and None not in p[n]] for n in dict.fromkeys(n for p in per for n in p)}
    seeds = ", ".join(f"{n} in {k} of {len(accs)}" for n, accs in measured.items()
                      for k in [sum(_reaches(bar, a) for a in accs)] if k)
    typed = [[p for p in per if any(a[i] is not None for a in p.values())] for i in range(len(bar))]
    some = [(sum(any(_at_bar(a[i], b) for a in p.values()) for p in ps), len(ps))
            for i, (b, ps) in enumerate(zip(bar.values(), typed))]
    return [head + f"reached on the mean over seeds by {mean_text}; seed by seed, " +
            (f"by {seeds}, and by no other model in any seed" if seeds else "by no model in any seed") + "."] + \
        _control_by_type(bar, means, [f" (some model in {k} of {m} seeds)" for k, m in some])


def _shared_type_accuracies(bar, reports):
    """Per seed, each of its own models (those only some seeds have included) -> its accuracy on each
    type of bar, on the probes of that type every seed shares (None where the seed has none)."""
    shared = shared_probes(reports)
    idx = {t: shared.get(f"type {t}") or [None] * len(reports) for t in bar}
    return [{n: [_mean_bits(m["correct"], idx[t][k]) for t in bar] for n, m in r["models"].items()}
            for k, r in enumerate(reports)]


def _control_by_type(bar, accuracies, notes=None):
    """The line naming, type by type, the models whose accuracy (model -> one per type of bar, a
    mean over seeds where notes say how many seeds some model reached it in) reaches that type's bar."""
    if len(bar) < 2:
        return []
    parts = []
    for i, (t, v) in enumerate(bar.items()):
        names = [n for n, a in accuracies.items() if _at_bar(a[i], v)]
        parts.append(f"{t} by {', '.join(names) or 'no model'}{notes[i] if notes else ''}")
    return [("Type by type, on the mean over seeds: " if notes else "Type by type: ") + "; ".join(parts) + "."]


def _short_by_rounding(bar, accuracies):
    """A clause naming each accuracy (model -> one per type of bar) that misses its bar yet reads as it
    in whole percents (59.8% beside a bar of 60%), with the decimal that shows the miss; else ""."""
    short = [f"{n}'s {t} {pct(a, v)}" for n, accs in accuracies.items() for (t, v), a in zip(bar.items(), accs)
             if a is not None and a < v - NOISE and pct(a) == pct(v)]
    return f" ({', '.join(short)}: short of it)" if short else ""


def _reaches(bar, accuracies):
    """accuracies: one per type of bar, in its order; None where not measured (never reaches)."""
    return all(_at_bar(a, v) for a, v in zip(accuracies, bar.values()))


def _at_bar(accuracy, bar):
    """Whether one accuracy (None: not measured, never) reaches one type's bar."""
    return accuracy is not None and accuracy >= bar - NOISE  # a mean's rounding is no miss


# ----------------------------------------------------------------------------- RESULTS.md

def _machine_line(run):
    m = run["machine"]
    where = m.get("gpu") or m.get("cpu")
    ceiling = "ceiling not measured"
    if m.get("ceiling") and m.get("gpu"):
        ceiling = f"{m.get('ceiling_dtype', 'bf16')} matmul ceiling {m['ceiling'] / 1e12:.0f} TFLOP/s"
    elif m.get("ceiling"):
        threads = f"{m['threads']} thread" + "s" * (m["threads"] != 1)
        ceiling = f"float32 matmul ceiling {m['ceiling'] / 1e9:.0f} GFLOP/s on {threads}"
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in run.get("stage_seconds", {}).items())
    return (f"{m['date'][:10]}, {where} ({ceiling}), torch {m['torch']}, commit {m['commit']}: "
            f"`{run['command']}` took {run['seconds'] / 60:.1f} min" + (f" ({stages})" if stages else "") + "."
            + _compute_sentence(run))


def _compute_sentence(run):
    """The run's training FLOPs by stage, and the rate they went at over its whole time (evaluation
    included) against the matmul ceiling: what its time would be on another machine."""
    flops = run.get("training_flops")
    if not flops:
        return ""
    total = sum(flops.values())
    rate = total / run["seconds"]
    share = f", {rate / run['machine']['ceiling']:.0%} of the ceiling" if run["machine"].get("ceiling") else ""
    seeds = f" over its {run['seeds']} seeds" if run.get("seeds", 1) > 1 else ""
    return (f" Its training took {total:.3g} FLOPs{seeds} ({', '.join(f'{k} {v:.3g}' for k, v in flops.items())}): "
            f"{rate / 1e9:.0f} GFLOP/s over the run's time{share}.")


def _gated_counts(report):
    """(gated types, probes of them the gates read, all probes of them) of a report's accepted units."""
    models = list(report.get("models", {}).values())
    read = (models[0].get("gate_summary") or {}).get("by_type", {}) if models else {}
    compared = models[0]["summary"]["by_type"] if models and "summary" in models[0] else {}
    n_read = sum(v.get("n", 0) for v in read.values())
    return tuple(read), n_read, n_read + sum(compared.get(t, {}).get("n", 0) for t in read)


def _probes_line(reports):
    """Which probes a run's tables read (reports: its one report, or one per seed): less those the
    gates read, counted, where a gate read any (gate_read_half, as the seeds page decides): half of each
    unit's gated probes under today's rule, all of them under a verdict from before it."""
    head = "Probes: those of the units the gate accepted, "
    if all("gate_read" not in r.get("probes_sha256", {}) for r in reports):  # before the gates read half
        return head + "all of them (this run's gates read all the recall probes)."
    halves = [r for r in reports if gate_read_half(r)]
    if not halves:
        return head + "all of them (no accepted unit's gate read any of them)."
    counts = [_gated_counts(r) for r in halves]
    types = list(dict.fromkeys(t for c in counts for t in c[0]))
    gated = f"gated ({', '.join(types)}) probes" if types else "gated probes"
    where = ("" if len(halves) == len(reports)
             else f" in {len(halves)} of {len(reports)} seeds (none in the others)")
    if len({c[1:] for c in counts}) > 1:
        seeds = ", ".join(f"{n} of {total}" for _, n, total in counts)
        return head + f"less the {gated} that the gates read{where}: {seeds}, seed by seed."
    _, n, total = counts[0]
    if not total:  # a report without the gates' counts
        return head + f"less the {gated} that the gates read{where}."
    if n == total:
        return head + f"less their {total} {gated}, all of which the gates read{where}."
    return head + f"less the {n} of their {total} {gated} that the gates read{where}."


def render_results(run, report=None, agg=None, reports=None):
    """One run's section of RESULTS.md: where and how it ran, accuracy by probe type (one seed with
    Wilson intervals, or seeds with t-intervals), conditional composition, the learning curve and the
    sentences the intervals allow."""
    out = [f"## {run['title']}", "", _machine_line(run), "", _probes_line(reports or [report]), ""]
    out += _paragraphs(_seed_notes(reports or [report])) + (_lacking(agg) if agg else [])
    if agg is None:
        types = list(next(iter(report["models"].values()))["summary"]["by_type"])
        out += ["Accuracy [95% Wilson interval, the probes taken as independent: too narrow on the reasoning types, "
                "whose probes rest on a few rules and kinds], in percent; FLOPs from random init:", ""]
        out += _header(["model", "FLOPs", "overall"] + types)
        out += [_row([n, _num(m.get("flops"), "{:.3g}"), cell(m["summary"]["overall"])]
                     + [cell(m["summary"]["by_type"].get(t)) for t in types]) for n, m in report["models"].items()]
        out += [line.replace("## ", "### ", 1) if line.startswith("## ") else line  # sections of this run's section
                for line in _md_composition(report) + _md_curves(report, figure=False)] + _results_rejected(report)
        out += _chance_line([report]) + _baseline_lines([report])
        out += ["", "What the intervals allow one to say:", ""] + [f"- {c['sentence']}." for c in report["comparisons"]
                                                                   if c.get("control")]
        return "\n".join(out + [""] + control_lines(run.get("control", {}), [report])) + "\n"
    types = [k for k in next(iter(agg["models"].values())) if k.startswith("type ") or k == "overall"]
    shared = agg.get("shared_probes")
    out += [f"Accuracy over {agg['seeds']} paired seeds" + (", each read on the probes that every seed with probes "
            "of the type compares (the first row counts them)" if shared else "") + ", in percent: mean ± sd over "
            "seeds [95% t-interval over seeds; a mean over fewer seeds says how many]:", ""]
    first = next(iter(agg["models"].values()))
    out += _header(["model"] + types)
    if shared:
        out.append(_row(["probes every seed compares"] + [str(first[t].get("probes", "-")) for t in types]))
    out += [_row([n] + [_seed_cell(m[t], of=agg["seeds"]) if t in m else "-" for t in types])
            for n, m in agg["models"].items()]
    out += _seeds_rejected(reports, shared) + _chance_line(reports) + \
        _baseline_lines(reports, agg)
    out += _md_seed_curves(agg.get("curves")) + _seed_by_seed(reports)
    out += ["", "What the seeds allow one to say:", ""]
    # from every seed: one whose gate rejected every unit compares nothing, and the order of seeds is no choice
    controls = {(c["a"], c["b"]) for r in reports for c in r["comparisons"] if c.get("control")}

    def said(comparisons):  # the controls' sentences, overall and by type
        return [f"- {c['sentence']}." for c in comparisons if (c["a"], c["b"]) in controls
                and (c["scope"] == "overall" or c["scope"].startswith("type "))]
    out += said(agg["comparisons"]) + _holm_line(agg["comparisons"], "every pair and scope the report compares")
    if agg.get("every_unit"):
        e = agg["every_unit"]
        out += ["", f"In the {len(e['names'])} seeds whose gates kept every unit ({', '.join(e['names'])}), on all "
                "their probes, the units the lines above leave out included:", ""] + said(e["comparisons"])
    table = _md_by_unit(agg, controls or None)
    if table:
        out += ["", "By unit. " + table[0]] + table[1:]
    return "\n".join(out + [""] + control_lines(run.get("control", {}), reports, agg)) + "\n"


def _seed_notes(reports):
    """What each run's report says it left out, and why (a report's notes), naming the seed where there
    are several."""
    if len(reports) == 1:
        return list(reports[0].get("notes", []))
    return [f"{_seed_name(r, k)}: {n}" for k, r in enumerate(reports) for n in r.get("notes", [])]


def _paragraphs(lines):
    """Markdown paragraphs: each line, then a blank one."""
    return [line for n in lines for line in (n, "")]


def _lacking(agg):
    """One paragraph naming the models some seed lacks, which the tables across seeds leave out."""
    lacking = agg.get("lacking") or {}
    if not lacking:
        return []
    return ["Left out of the tables across seeds, as some seed lacks them: "
            + ", ".join(f"{n} (in {k} of {agg['seeds']} seeds)" for n, k in lacking.items()) + ".", ""]


def _chance_line(reports):
    """Chance on each type: one over a probe's number of choices, averaged over the compared probes (and
    over the seeds that have them): 25% throughout where every probe has four choices."""
    by_type = [next(iter(r["models"].values()))["summary"]["by_type"] for r in reports if r.get("models")]
    chance = {t: [b[t]["chance"] for b in by_type if b.get(t, {}).get("chance") is not None]
              for t in dict.fromkeys(t for b in by_type for t in b)}
    chance = {t: sum(c) / len(c) for t, c in chance.items() if c}
    if not chance:
        return []
    if len({round(c, 6) for c in chance.values()}) == 1:
        return ["", f"Chance is {pct(next(iter(chance.values())))} on every type."]
    return ["", "Chance (one over a probe's choices, averaged over the probes): " +
            ", ".join(f"{t} {pct(c)}" for t, c in chance.items()) + "."]


def _baseline_lines(reports, agg=None):
    """What each baseline (BASELINES) alone scores on each type: one line each."""
    return [line for base, label, how in BASELINES
            for line in _baseline_line(reports, base, f"{label[0].upper()}{label[1:]} alone ({how})",
                                       (agg or {}).get(base))]


def _baseline_line(reports, base, said, shared_prior=None):
    """What the baseline `base` scores on each type (the mean over seeds where several; on the probes
    every seed shares where the aggregate read it there: shared_prior, type -> each seed's accuracy)."""
    priors = [r[base]["by_type"] for r in reports if r.get(base)]
    if not priors:
        return []
    # a seed whose gate rejected every unit of a type has none of its probes: each type over the seeds it is in
    accs = shared_prior or {t: [p[t]["acc"] for p in priors if t in p]
                            for t in dict.fromkeys(t for p in priors for t in p)}
    on_shared = bool(shared_prior)
    if not accs:  # every unit rejected: no probe to answer
        return []
    fewer = [f"{t} over {len(a)} of them" for t, a in accs.items() if len(a) < len(priors)]
    over = (f" (the mean over {len(priors)} seeds" + "".join(f"; {f}" for f in fewer) +
            ("; on the probes every seed compares" if on_shared else "") + ")") if len(priors) > 1 else ""
    return ["", f"{said} scores " + ", ".join(f"{t} {pct(sum(a) / len(a))}" for t, a in accs.items()) + over + "."]


def _seeds_rejected(reports, shared=False):
    """One line naming the units the gate rejected, seed by seed (a run directory names its seed)."""
    rejected = [f"{_seed_name(r, k)} {', '.join(_rejected_names(r))}" for k, r in enumerate(reports) if r["rejected"]]
    if not rejected:
        return []
    return ["", f"The gate rejected units in {len(rejected)} of {len(reports)} seeds ({'; '.join(rejected)}): the "
            "merge steps some seed lacks are left out of these tables (each seed's own report has its steps), and "
            + ("in each column every seed with probes of it is read on those all of them compare: overall, the "
               "probes every seed compares (no type a seed lacks)." if shared else
               "each seed's numbers are over its own accepted units.")]


def _seed_by_seed(reports):
    """Each seed's time (its stages summed) and, type by type over every seed's scratch runs, how often a
    learning curve was still rising between its last two points (as each seed's report says, over a draw
    of probes), naming where."""
    names = [_seed_name(r, k) for k, r in enumerate(reports)]
    times = [f"{n} {sum(r['stage_seconds'].values()) / 60:.1f} min" for n, r in zip(names, reports)
             if r.get("stage_seconds")]
    out = ["", f"Each seed's time, its stages summed: {', '.join(times)}."] if times else []
    rises = [(n, x) for n, r in zip(names, reports) for x in (r.get("curves") or {}).get("rises", [])]
    if rises:
        types = dict.fromkeys(x["type"] for _, x in rises)
        tally = ", ".join(f"{t} in {sum(x['rise'] == 'rising' for _, x in rises if x['type'] == t)} of "
                          f"{sum(x['type'] == t for _, x in rises)}" for t in types)
        where = "; ".join(f"{n} {x['run']} {x['type']}" for n, x in rises if x["rise"] == "rising")
        out += ["", f"Learning curves still rising between their last two points (over a draw of probes): {tally} "
                "(seed, run) pairs" + (f" ({where})." if where else ".")]
    return out


def _results_rejected(report):
    """One paragraph on the units the gate rejected: left out of the table above, scored apart."""
    if not report["rejected"]:
        return []
    scores = "; ".join(f"{n} {cell(m['rejected_summary']['overall'])}" for n, m in report["models"].items()
                       if (m.get("rejected_summary") or {}).get("overall"))
    return ["", f"The gate rejected {', '.join(_rejected_names(report))}: left out of the table above. "
            f"Their probes, and those resting on their facts, apart: {scores}."]


def seed_curves(reports, shared=None):
    """The learning curves across seeds, in the shape plot_curves draws: each point's accuracy by type
    as the mean over seeds with its 95% t-interval, and each reference model's mean accuracy by type;
    over the seeds that have curves (a seed whose gate rejected every unit trained no scratch run),
    counted in "seeds" of "of"; on the probes every seed shares (shared_probes) where the reports keep
    each point's correctness; of the runs every such seed has. None when no report has curves, or they
    share no run."""
    having = [k for k, r in enumerate(reports) if r.get("curves", {}).get("runs")]
    if not having:
        return None

    def over_seeds(values):
        t = t_interval(values)
        return {"acc": t["mean"], "lo": t["lo"], "hi": t["hi"], "sd": t["sd"], "n": t["n"]}

    def acc(k, entry, t):  # in report k, a curve point's or a reference's accuracy on type t (None: absent)
        if entry is None:
            return None
        if shared and "correct" in entry:  # a point, or a model of report k
            return _mean_bits(entry["correct"], shared[f"type {t}"][k]) if f"type {t}" in shared else None
        if "by_type" in entry:  # a point's own summary
            return (entry["by_type"].get(t) or {}).get("acc")
        return entry.get(t)  # the curves' reference accuracies

    def point(k, run, i):
        points = reports[k]["curves"]["runs"].get(run, [])
        return points[i] if i < len(points) else None

    def reference(k, ref):
        return reports[k]["models"].get(ref) if shared else reports[k]["curves"].get("references", {}).get(ref)

    first = reports[having[0]]["curves"]
    # the runs every seed with curves has, as the tables hold the models every seed has (a seed whose units
    # lie on one level has no run in curriculum order)
    first = dict(first, runs={run: points for run, points in first["runs"].items()
                              if all(run in reports[k]["curves"]["runs"] for k in having)})
    if not first["runs"]:
        return None
    # the types any seed's curve has: a first seed whose gate rejected the kinds has no inference type
    types = list(dict.fromkeys(t for k in having for pts in reports[k]["curves"]["runs"].values()
                               for p in pts for t in p["by_type"]))
    refs = list(dict.fromkeys(ref for k in having for ref in reports[k]["curves"].get("references", {})))
    out = {run: [dict({k: p.get(k) for k in ("step", "tokens", "flops")}, by_type={
        t: over_seeds([acc(k, point(k, run, i), t) for k in having]) for t in types})
        for i, p in enumerate(points)] for run, points in first["runs"].items()}
    references = {ref: {t: t_interval([acc(k, reference(k, ref), t) for k in having])["mean"] for t in types}
                  for ref in refs}

    def rise(run, i, t):  # each seed's rise on type t from point i - 1 to point i (None where it lacks either)
        pairs = ((acc(k, point(k, run, i - 1), t), acc(k, point(k, run, i), t)) for k in having)
        return [None if a is None or b is None else b - a for a, b in pairs]
    rises = {run: [{"from": points[i - 1].get("flops"), "to": p.get("flops"),
                    "by_type": {t: t_interval(rise(run, i, t)) for t in types}} for i, p in enumerate(points) if i]
             for run, points in first["runs"].items()}
    # a schedule that decays the learning rate at the end (wsd) lifts the last point by the decay itself
    decayed = bool(having) and all(reports[k].get("settings", {}).get("schedule") == "wsd" for k in having)
    return {"runs": out, "references": references, "rises": rises, "decayed_end": decayed, "seeds": len(having),
            "of": len(reports), "shared": bool(shared)}


def _md_seed_curves(curves):
    """The learning curve across seeds as a table (mean accuracy, percent) and its figure."""
    if not curves:
        return []
    types = list(dict.fromkeys(t for pts in curves["runs"].values() for p in pts for t in p["by_type"]))
    over = "seeds" if curves.get("seeds", 0) == curves.get("of", 0) else \
        f"the {curves['seeds']} of {curves['of']} seeds that trained scratch runs"
    over += ", on the same probes as the table above" if curves.get("shared") else ""
    out = ["", f"The learning curve against FLOPs from random init: mean accuracy over {over}, in percent "
           "[95% t-interval over seeds]; the reference models' means below:", ""]
    out += _header(["run", "FLOPs"] + types)
    for run, points in curves["runs"].items():
        out += [_row([run, _num(p["flops"], "{:.3g}")] + [_seed_cell(p["by_type"][t], False, curves["seeds"])
                                                         if t in p["by_type"] else "-" for t in types])
                for p in points]
    out += [_row([f"{ref} (reference)", ""] + [pct(accs[t]) if accs.get(t) is not None else "-" for t in types])
            for ref, accs in curves["references"].items()]
    plot = curves.get("plot", "")
    out += ["", f"![learning curves across seeds]({plot})"] if plot.endswith(".png") else []
    return out + _md_seed_rises(curves, types)


def _md_seed_rises(curves, types):
    """Whether each run was still rising: its rise between consecutive points, a mean over seeds with a
    t-interval, as a table (curves from before the rises were kept have none)."""
    if not curves.get("rises"):
        return []
    out = ["", "Still rising? Each run's rise between consecutive points, in points: the mean over seeds of each "
           "seed's rise [95% t-interval over seeds]; an interval above 0 says the run was still rising there"
           + (" on these probes (over training noise: how far a draw of probes moves it, each seed's report "
              "says)" if curves.get("shared") else "") + "."
           + (" The learning rate decays at the end of each run (wsd): a rise that ends in the decay holds it, "
              "which lifts a curve by itself, so the rises before the decay say more about whether more compute "
              "would help." if curves.get("decayed_end") else "")
           + (" A run in curriculum order first reads each level at a point of its own: its rises also say when a "
              "level came." if any("curriculum" in run for run in curves["rises"]) else ""), ""]
    out += _header(["run", "FLOPs"] + types)
    for run, rises in curves["rises"].items():
        out += [_row([run, f"{_num(r['from'], '{:.3g}')} to {_num(r['to'], '{:.3g}')}"]
                     + [_diff_cell(r["by_type"][t], mark=False) if t in r["by_type"] else "-" for t in types])
                for r in rises]
    return out


# ----------------------------------------------------------------------------- command line

# What each reader of a report.json indexes, checked before anything is read or written: a report damaged
# deep inside is a one-line ReportError naming the key path, not a traceback from the middle of a page. A
# shape is a JSON kind ("object", "array", "string", "number", "boolean", "null") or "any"; a tuple of
# shapes, any one of them; [shape], an array of such items; or {key: shape}, an object with those keys
# ("key?": checked where present, as a reader .get()s it; "*": every key not named). compare writes more
# than this: a shape holds only what its reader reads, so that a reduced report (a seed's) is not refused.
NUM, OPT_NUM = "number", ("number", "null")
BOUNDS = {"n?": NUM, "acc": NUM, "lo": NUM, "hi": NUM}  # what cell() reads of an accuracy
CELL = {"n": NUM, "acc": NUM, "lo": NUM, "hi": NUM, "chance": NUM, "exact": NUM}  # a summary's group, all read
SUMMARY = {"overall": CELL, "by_level": {"*": CELL}, "by_type": {"*": CELL}}
COMPARED = {"ids": ["string"], "types": ["string"], "levels": ["any"], "units?": ["string"], "keys": [["string"]]}
PAGE_KEYS = {  # render_markdown's and the figures' (its required keys in the order a refusal names them)
    "answer_frequency?": {"by_level": {"*": CELL}, "by_type": {"*": CELL}, "correct?": "string"},
    "association?": {"by_level": {"*": CELL}, "by_type": {"*": CELL}, "correct?": "string"},
    "chance": ["string"],
    "comparisons": [{"a": "string", "b": "string", "scope": "string", "control": "boolean", "sentence": "string",
                     "diff": NUM, "lo": NUM, "hi": NUM}],
    "compared?": COMPARED, "corpus": "string",
    "curves?": {"runs": {"*": [{"step": OPT_NUM, "tokens": OPT_NUM, "flops": OPT_NUM, "overall": BOUNDS,
                                "by_type": {"*": ("null", BOUNDS)}, "correct?": "string"}]},
                "references": {"*": {"overall": NUM, "*": NUM}}, "sentences": ["string"],
                "rises?": [{"run": "string", "type": "string", "rise": "string"}]},
    "models": {"*": {
        "mode": "any", "trainable_params": OPT_NUM, "tokens": OPT_NUM, "flops": OPT_NUM, "seconds": OPT_NUM,
        "primitive_ppl": ("null", {"ppl?": OPT_NUM, "bpb?": OPT_NUM}), "summary": SUMMARY,
        "composition": {"*": {"all": CELL, "given_premises": CELL, "premises_missing": "any"}},
        "gate_summary?": ("null", {"overall": CELL}), "rejected_summary?": ("null", {"overall?": CELL}),
        "unit_ppl": {"*": ("null", {"ppl?": OPT_NUM})}, "samples": {"*": ["string"]}, "correct?": "string"}},
    "norm": "string", "rejected": ["string"], "rejected_reasons?": {"*": ["string"]},
    "retention": ("null", {"steps": ["string"], "units": ["string"], "acc": [[NUM]]}),
    "units": ["string"]}
SEED_CELL = ("null", {"n?": OPT_NUM, "acc?": OPT_NUM})  # _scope's group, read with .get
SEED_KEYS = {  # what aggregate_seeds reads of each seed's report
    "comparisons": [{"a": "string", "b": "string", "scope": "string", "diff": OPT_NUM, "n?": OPT_NUM,
                     "lo?": OPT_NUM, "hi?": OPT_NUM, "clusters?": NUM}],
    "models": {"*": {"summary": {"overall": SEED_CELL, "by_level": {"*": SEED_CELL}, "by_type": {"*": SEED_CELL}},
                     "correct?": "string"}},
    "units": ["string"], "corpus?": ("string", "null"), "rejected?": ["string"], "probes_sha256?": "object",
    "settings?": "object",
    "answer_frequency?": {"by_type": "object", "correct?": "string"},
    "association?": {"by_type": "object", "correct?": "string"}, "compared?": COMPARED,
    "curves?": {"runs?": {"*": [{"by_type": {"*": ("null", {"acc?": OPT_NUM})}, "correct?": "string"}]},
                "references?": {"*": {"*": OPT_NUM}}}}
_KINDS = {"object": "an object", "array": "an array", "string": "a string", "number": "a number",
          "boolean": "a boolean", "null": "null"}


def read_report(path, keys=PAGE_KEYS):
    """A report.json (compare's, or one seed's: keys=SEED_KEYS) as a dict of the shape its reader needs
    (PAGE_KEYS, SEED_KEYS); anything else is a ReportError naming the file and what is wrong (the key
    path where it lies deeper), raised before anything is written."""
    try:
        report = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not a report.json ({e})")
    problem = _report_problem(report, keys)
    if problem and isinstance(report, dict) and isinstance(report.get("seeds"), int) and "by_unit" in report:
        # the report across seeds (aggregate_seeds), which its own report.md renders: a seed's is what is read
        raise ReportError(f"{path}: the report across {report['seeds']} seeds, not one run's report.json; its pages "
                          "are report.md beside it (report.py seeds writes them), and each seed's report.json is in "
                          "its run directory (seed-N/report/report.json)")
    if problem:
        raise ReportError(f"{path}: not a report.json ({problem})")
    return report


def _report_problem(report, keys):
    """What keeps a JSON value from being read as a report of the shape keys, or None."""
    if not isinstance(report, dict):
        return f"a JSON {json_kind(report)}, not an object"
    missing = [k for k in keys if not k.endswith("?") and k not in report]
    if missing:  # all of them at once: a file of another kind lacks most
        return "no " + ", ".join(f'"{k}"' for k in missing)
    models = report["models"]
    if not isinstance(models, dict) or not models:  # every table takes its rows and groups from the models
        return '"models" names no model'
    bare = [n for n, m in models.items() if not isinstance(m, dict) or "summary" not in m]
    if bare:
        return f'model "{bare[0]}" has no "summary"'
    return _shape_problem(report, keys, "") or _cross_problem(report)


def _kind(shape):  # the JSON kind a shape asks for ("any" for any)
    return "object" if isinstance(shape, dict) else "array" if isinstance(shape, list) else shape


def _shape_problem(value, shape, where):
    """"where: what is wrong" for the first part of value not of shape (shapes: above PAGE_KEYS), or None."""
    options = shape if isinstance(shape, tuple) else (shape,)
    shape = next((s for s in options if _kind(s) in ("any", json_kind(value))), None)
    if shape is None:
        return f"{where}: a JSON {json_kind(value)}, not {' or '.join(_KINDS[_kind(s)] for s in options)}"
    if isinstance(shape, list):
        parts = [(v, shape[0], f"{where}[{i}]") for i, v in enumerate(value)]
    elif isinstance(shape, dict):
        missing = [k for k in shape if k != "*" and not k.endswith("?") and k not in value]
        if missing:
            return f'{where}: no "{missing[0]}"'
        parts = [(v, shape.get(k, shape.get(k + "?", shape.get("*"))), f"{where}.{k}" if where else k)
                 for k, v in value.items()]  # a key no reader reads has no shape: not checked
    else:
        return None
    for v, s, w in parts:
        problem = s is not None and _shape_problem(v, s, w)
        if problem:
            return problem
    return None


def _cross_problem(report):
    """What one part of a well-shaped report names of another and is not there, or None: each
    comparison's models and scope (a page looks them up, the seeds index their shared probes by scope),
    the baselines' types (indexed likewise), then the per-probe record (_per_probe_problem)."""
    for i, c in enumerate(report["comparisons"]):
        for side in ("a", "b"):
            if c[side] not in report["models"]:
                return f'comparisons[{i}].{side}: "{c[side]}" is not a model of the report'
        if c["scope"] not in _scopes([report], c["a"]):
            return f'comparisons[{i}].scope: "{c["scope"]}" is not a scope of model "{c["a"]}"'
    types = set.intersection(*(set(m["summary"]["by_type"]) for m in report["models"].values()))
    for base, _, _ in BASELINES:
        stray = [t for t in report.get(base, {}).get("by_type", {}) if t not in types]
        if stray:
            return f'{base}.by_type: "{stray[0]}" is not a probe type of every model'
    return _per_probe_problem(report)


def _per_probe_problem(report):
    """Where a report keeps its compared probes' record: one entry per compared probe in each list and
    bits string the seeds index by a probe's place (a shorter one is an IndexError mid-way), or None."""
    compared = report.get("compared")
    if compared is None:
        return None
    n = len(compared["ids"])
    rows = [(f"compared.{k}", compared[k]) for k in ("types", "levels", "units", "keys") if k in compared]
    rows += [(f"models.{name}.correct", m.get("correct")) for name, m in report["models"].items()]
    rows += [(f"{base}.correct", report[base]["correct"]) for base, _, _ in BASELINES
             if "correct" in report.get(base, {})]
    rows += [(f"curves.runs.{run}[{i}].correct", p["correct"])
             for run, points in report.get("curves", {}).get("runs", {}).items()
             for i, p in enumerate(points) if "correct" in p]
    for where, v in rows:
        if v is None:  # the seeds read each model on the probes every seed shares, by its bits
            return f'{where.rpartition(".")[0]}: no "correct"'
        if len(v) != n:
            return f"{where}: length {len(v)}, not one per compared probe ({n})"
    return None


def _read_text(path):
    """A UTF-8 text file's text; one that cannot be read is a ReportError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ReportError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})")
    except OSError as e:
        raise ReportError(f"{path}: cannot be read ({e.strerror})")


def cmd_render(args):
    """Write report.md, report.png and curves.png again from a report.json (and, elsewhere, the JSON naming them)."""
    report = read_report(args.report)
    out = check_writable(args.out or Path(args.report).parent)
    # The report.json read is compare's record, and render never rewrites its input: in the report's own
    # directory only report.md and the figures are written (report.md names the figures), so the JSON keeps
    # the figure names compare gave it; in another directory the JSON is written beside them, naming them.
    with_json = not same_file(out / "report.json", args.report)
    write_report(report, out, with_json)
    print(f"wrote {out / 'report.md'}" + (", report.json" if with_json else "") + f"; figure: {report['plot']}")


def cmd_seeds(args):
    """Aggregate per-seed report.json files into one page across seeds."""
    reports = [read_report(path, SEED_KEYS) for path in args.reports]
    refuse_overwriting(check_writable(args.out) / "report.json", args.reports, ReportError)
    repeat = first_repeat(args.reports)  # one seed read twice would pass for two that agree
    if repeat:
        raise ReportError(f"{repeat[0]}: given twice (as {repeat[1]}); give each seed's report.json once")
    agg = aggregate_seeds(reports, args.out, names=args.reports, worlds=args.worlds)
    for c in agg["comparisons"]:
        print(c["sentence"])
    print(f"wrote {Path(args.out) / 'report.md'}, report.json")


def add_seeds_parser(sub):
    """The seeds subcommand, shared by this module's command line and evaluate.py's."""
    a = sub.add_parser("seeds", help="aggregate per-seed report.json files: means, sds and t-intervals")
    a.add_argument("reports", nargs="+", metavar="REPORT.json", help="compare's report.json of each seed, "
                   "the same models on the same probes (other probes with --worlds)")
    a.add_argument("--out", required=True, help="directory for the aggregate report.md and report.json")
    a.add_argument("--worlds", action="store_true", help="each seed read its own world (ladder.py "
                   "--world-per-seed): the same units, other probes")
    a.set_defaults(run=cmd_seeds)


def _name_figures(text, run_report_dir, results_dir):
    """A results.md's figure links as the files' names: the run's directory is seldom kept beside
    RESULTS.md (runs/ is not committed), so a link would show a broken image."""
    def name(m):
        figure = (run_report_dir / m.group(2)).resolve()
        try:
            where = f"`{figure.relative_to(results_dir).as_posix()}`"
        except ValueError:
            where = f"`report/{m.group(2)}` in the run's directory"
        return f"Figure ({m.group(1)}): {where}, drawn by the run."
    return re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", name, text)


def _moved_heading(text, run_dir):
    """A section whose command wrote to another --out than the directory it is read from now (a run
    kept beside a newer one of the same command) says where it is, so two headings never read the same."""
    m = re.match(r"## `ladder\.py([^`\n]*)`", text)
    try:  # the title quotes its words as a shell does (an --out with a space in it is one word)
        words = shlex.split(m.group(1)) if m else []
    except ValueError:  # unbalanced quotes: a title written unquoted (runs/bob's), read word by word
        words = m.group(1).split()
    out = None
    for w, after in zip(words, words[1:] + [None]):  # the last --out given counts, as argparse takes it
        if w == "--out" or w.startswith("--out="):
            out = w[len("--out="):] if "=" in w else after
    if out and Path(out).resolve() != Path(run_dir).resolve():  # resolved: one directory, two spellings
        end = text.index("\n")
        return f"{text[:end]} (now in `{Path(run_dir).as_posix()}`){text[end:]}"
    return text


BY_HAND = "## Measured by hand:"
RESULTS_HEADING = "# accrete results"  # the first line of every page cmd_results writes
RUN_HEADING = re.compile(r"## `ladder\.py[ `]")  # how ladder.write_results' section starts: "## `ladder.py ARGS`"


def _read_section(path):
    """A run's results.md, refused (naming it) where it does not start with the heading ladder.py writes."""
    text = _read_text(path)
    if not RUN_HEADING.match(text):
        raise ReportError(f"{path}: not a ladder run's results (it does not start with \"## `ladder.py\", the heading "
                          "ladder.py writes)")
    return text


def cmd_results(args):
    """RESULTS.md: an introduction, then each run's results.md (written by ladder.py) in turn; with
    --add, then the runs an existing RESULTS.md already holds (but one whose heading a new run repeats)."""
    out = check_writable(args.out, "file")
    files = [Path(d) / "report" / "results.md" for d in args.runs]
    for f in files:
        if not f.is_file():
            raise ReportError(f"{f}: no such file; a ladder run writes it when it ends")
    refuse_overwriting(out, files, ReportError)  # a run's own section would come back with the introduction above it
    repeat = first_repeat(files)
    if repeat:
        raise ReportError(f"{repeat[0].parent.parent}: given twice (as {repeat[1].parent.parent}); its section "
                          "would be written twice")
    check_own_page(out, RESULTS_HEADING, "results page", "a RESULTS.md this command wrote", ReportError)
    parts = [_moved_heading(_name_figures(_read_section(f), f.parent, out.resolve().parent), d)
             for f, d in zip(files, args.runs)]
    intro = (RESULTS_HEADING + "\n\nWritten by `python report.py results RUN... --out RESULTS.md` from the "
             "results.md each ladder run writes; each section names its date, machine, torch version and "
             "commit. Accuracy is multiple choice (chance is 25% on every type of the built-in world; later "
             "sections state it) on the probes of the units the gate did not reject (a section's \"Probes:\" "
             "line, where it has one, says which). A section across seeds whose table has no row \"probes every "
             "seed compares\" read each seed on its own probes: where the gates rejected other units in other "
             "seeds, its means mix probe sets. Sections headed \"" + BY_HAND + "\" are experiments outside a "
             "ladder run, written by hand with the same particulars, and kept when the file is written again.\n\n")
    sections = _sections(out)
    kept = [t for t in sections if t.startswith(BY_HAND)]
    headings = {t.split("\n", 1)[0] for t in parts}
    earlier = [t for t in sections if not t.startswith(BY_HAND) and t.split("\n", 1)[0] not in headings]
    atomic_write_text(args.out, intro + "\n".join(parts + (earlier if args.add else []) + kept))
    print(f"wrote {args.out}" + _kept_note(len(earlier), len(kept), args.add))


def _kept_note(earlier, by_hand, add):
    """What became of the sections the page held before: the earlier runs kept (--add) or dropped (said,
    so that none goes without a word), and those measured by hand (always kept)."""
    if add:
        note = f" (kept {earlier} earlier run(s))"
    else:
        note = f" (dropped {earlier} earlier run(s) the file held; --add keeps them)" if earlier else ""
    return note + (f" (kept {by_hand} section(s) measured by hand)" if by_hand else "")


def _sections(path):
    """The "## " sections of an existing RESULTS.md (its introduction left out), each up to the next."""
    if not path.is_file():
        return []
    return [s.rstrip("\n") + "\n" for s in re.split(r"(?m)^(?=## )", _read_text(path)) if s.startswith("## ")]


def build_parser():
    """The command line: render a report again, or aggregate seeds; neither loads a model."""
    p = argparse.ArgumentParser(description="accrete reports from report.json files alone (no torch, no "
                                "models): render report.md and its figures again, or aggregate per-seed reports.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="write report.md, report.png and curves.png again from a report.json")
    r.add_argument("report", metavar="REPORT.json", help="a report.json written by evaluate.py compare or ladder.py")
    r.add_argument("--out", help="directory for the files (default: the report.json's own directory, "
                   "where the report.json is left as it is)")
    r.set_defaults(run=cmd_render)
    add_seeds_parser(sub)
    r = sub.add_parser("results", help="write RESULTS.md from ladder runs' results.md")
    r.add_argument("runs", nargs="+", metavar="RUN_DIR", help="ladder run directories (their report/results.md)")
    r.add_argument("--out", required=True, help="the file to write; an existing one must be a page this command "
                   "wrote, and keeps its sections measured by hand (and, with --add, its runs)")
    r.add_argument("--add", action="store_true", help="keep the runs the file already holds, after the new ones "
                   "(a run whose heading a new one repeats is replaced): the run directories need not be at hand")
    r.set_defaults(run=cmd_results)
    return p


def main(argv=None):
    run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    main()
