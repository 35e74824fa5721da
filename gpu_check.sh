#!/usr/bin/env bash
# gpu_check.sh: everything accrete needs checked on a GPU, in one go, in under ten minutes. It runs,
# each under its own time limit so that the whole stays under nine minutes:
#   1. bench.py --cuda --cuda-only --json $OUT/bench-gpu.json  the GPU figures, stamped with the machine
#   2. bench.py --render ... --out $OUT/BENCH-gpu.md          those figures as a BENCH.md section
#   3. ladder.py --preset smoke                               the GPU smoke ladder (adapters of 20 steps
#      at least, not 100: compiling, not training, is its time); its report, results and figures are
#      copied flat into $OUT as smoke-*
#   4. pytest tests -k cuda                                   the tests that need CUDA
#   5. the two interop tests (transformers, peft)
# A skipped test fails its step: on a GPU machine with those packages a skip is a check not made.
# A step that fails or runs out of time is reported and the next one still runs. Each step's output
# and wall time go to $OUT/gpu_check.log; bench.py rewrites its JSON after every row, so a bench
# stopped by its limit still leaves the rows it measured (and step 2 renders them). $OUT receives at
# most 7 files, none in a folder, so that they are quick to copy.
#
# How to run it, from anywhere, on a machine with CUDA and the requirements installed:
#     bash gpu_check.sh                  # results in ./gpu-out
#     OUT=/some/dir bash gpu_check.sh    # results in /some/dir
#     ACCRETE_COMMIT=abc1234 bash gpu_check.sh   # a copy without .git: the commit its files came from
# Exit status: 0 when every step passed, 1 otherwise.

set -u
OUT=${OUT:-./gpu-out}
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1  # a log kept up to a hard kill; no download attempts
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)  # absolute: the steps run in the repository root
cd "$(dirname "$0")" || exit 1
LOG="$OUT/gpu_check.log"
: > "$LOG"
FAILED=0
SUMMARY=()
T0=$(date +%s)

step() {  # step NAME SECONDS COMMAND...: run it under a time limit, log its output and wall time
    local name=$1 limit=$2
    shift 2
    local start rc dt verdict
    start=$(date +%s)
    echo "=== $name: $* (limit ${limit}s)" | tee -a "$LOG"
    timeout --kill-after=5 "$limit" bash -c '"$@"' "$name" "$@" >> "$LOG" 2>&1  # bash -c: runs the functions below too
    rc=$?
    dt=$(( $(date +%s) - start ))
    case $rc in
        0) verdict="ok" ;;
        124|137) verdict="TIMED OUT after ${limit}s" ;;
        *) verdict="FAILED (exit $rc)" ;;
    esac
    [ "$rc" -eq 0 ] || FAILED=$((FAILED + 1))
    SUMMARY+=("$name: $verdict, ${dt}s")
    echo "=== $name: $verdict, ${dt}s" | tee -a "$LOG"
}

{
    echo "gpu_check.sh at $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null \
        || echo "${ACCRETE_COMMIT:-unknown}")"
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    else
        echo "nvidia-smi: not found"
    fi
} >> "$LOG"

no_skips() {  # no_skips COMMAND...: run a pytest command, its output streamed; a skipped test fails it
    local seen rc
    seen=$(mktemp)
    "$@" 2>&1 | tee "$seen"  # streamed to the log: a step cut by its limit still shows where it was
    rc=${PIPESTATUS[0]}
    if grep -q "skipped" "$seen"; then
        echo "a test was skipped on this machine: its check was not made"
        rc=1
    fi
    rm -f "$seen"
    return $rc
}

smoke() {  # smoke DIR: the smoke ladder in the scratch directory DIR (smoke_out copies it and cleans up)
    "$PYTHON" ladder.py --preset smoke --lora-min-steps 20 --out "$1/smoke"
}

smoke_out() {  # smoke_out DIR: the smoke ladder's pages and figures copied flat into $OUT, then DIR deleted;
    local f       # run by this shell, not the step's: a step cut by its limit is killed with its group
    for f in report.md results.md report.png curves.png; do
        [ -f "$1/smoke/report/$f" ] && cp "$1/smoke/report/$f" "$OUT/smoke-$f"
    done
    rm -rf "$1"
}

export -f no_skips smoke
export OUT PYTHON
[[ "${BASH_SOURCE[0]}" != "$0" ]] && return 0  # sourced (the tests): the functions alone, no step run
# the limits, with 5 s each to end after a SIGTERM, add up to under nine minutes (535 s); the bench
# runs its GPU figures first, so a cut keeps them
step "bench --cuda" 200 "$PYTHON" bench.py --cuda --cuda-only --json "$OUT/bench-gpu.json"
step "render BENCH-gpu.md" 20 "$PYTHON" bench.py --render "$OUT/bench-gpu.json" --out "$OUT/BENCH-gpu.md"
SMOKE_DIR=$(mktemp -d)
step "smoke ladder" 170 smoke "$SMOKE_DIR"
smoke_out "$SMOKE_DIR"
step "CUDA tests" 90 no_skips "$PYTHON" -m pytest -q -rs tests -k cuda
step "interop tests" 30 no_skips "$PYTHON" -m pytest -q -rs \
    tests/test_model.py::test_transformers_gpt2_loads_the_export_and_gives_our_logits \
    tests/test_lora.py::test_peft_loads_the_export_and_gives_our_base_plus_adapter_logits

{
    echo
    echo "summary ($(( $(date +%s) - T0 ))s in all, $FAILED of ${#SUMMARY[@]} steps failed):"
    printf '  %s\n' "${SUMMARY[@]}"
} | tee -a "$LOG"
[ "$FAILED" -eq 0 ]
