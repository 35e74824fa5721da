"""Unit files for the curriculum tests: a header, documents and a probe, written as JSONL."""
import json
from pathlib import Path

COLORS = ["blue", "red", "green", "amber"]


def header(uid, kind="knowledge", level=0, requires=()):
    return {"unit": uid, "kind": kind, "level": level, "title": f"unit {uid}", "concepts": [uid],
            "requires": list(requires), "source": "tests", "license": "CC0"}


def write_unit(dir, uid, kind="knowledge", level=0, requires=(), n_docs=12, probes=None, lines=None):
    """Write a unit file; `lines` (JSON-able records) replaces the whole body when given."""
    if lines is None:
        lines = [header(uid, kind, level, requires)]
        lines += [{"text": f"Creature {i} of the {uid} herd grazes by the river and sings at dawn."} for i in range(n_docs)]
        if probes is None and kind == "knowledge":
            probes = [{"probe": f"Which color does the {uid} herd favor?", "answer": "blue", "choices": COLORS,
                       "type": "recall"}]
        lines += probes or []
    path = Path(dir) / f"{uid}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    return path


def snapshot(dir, dirs=False):
    """Every file under dir: relative path -> bytes; with dirs, every directory too (-> None): what a
    refused command must leave as it was."""
    return {str(p.relative_to(dir)): None if p.is_dir() else p.read_bytes() for p in sorted(Path(dir).rglob("*"))
            if dirs or p.is_file()}
