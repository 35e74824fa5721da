#!/usr/bin/env bash
# gpu_check.sh: everything accrete needs checked on a GPU, in one go, for a machine lent for about
# ten minutes. It runs, each under its own time limit so that the whole stays under nine minutes:
#   1. python bench.py --cuda --json $OUT/bench-gpu.json      the GPU figures, stamped with the machine
#   2. python bench.py --render ... --out $OUT/BENCH-gpu.md   those figures as a BENCH.md section
#   3. python ladder.py --preset smoke --out $OUT/smoke       the GPU smoke ladder
#   4. python -m pytest -q tests -k cuda                      the tests that need CUDA
#   5. the two interop tests (transformers, peft)            skipped where those packages are missing
# A step that fails or runs out of time is reported and the next one still runs. Each step's output
# and wall time go to $OUT/gpu_check.log; bench.py rewrites its JSON after every row, so a bench
# stopped by its limit still leaves the rows it measured (and step 2 renders them).
#
# How to run it, from anywhere, on a machine with CUDA and the requirements installed:
#     bash gpu_check.sh                  # results in ./gpu-out
#     OUT=/some/dir bash gpu_check.sh    # results in /some/dir
# Exit status: 0 when every step passed, 1 otherwise.

set -u
OUT=${OUT:-./gpu-out}
PYTHON=${PYTHON:-python}
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
    timeout --kill-after=15 "$limit" "$@" >> "$LOG" 2>&1
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
    echo "gpu_check.sh at $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    else
        echo "nvidia-smi: not found"
    fi
} >> "$LOG"

# the limits add up to under nine minutes; the bench runs its GPU figures first, so a cut keeps them
step "bench --cuda" 275 "$PYTHON" bench.py --cuda --json "$OUT/bench-gpu.json"
step "render BENCH-gpu.md" 20 "$PYTHON" bench.py --render "$OUT/bench-gpu.json" --out "$OUT/BENCH-gpu.md"
step "smoke ladder" 120 "$PYTHON" ladder.py --preset smoke --out "$OUT/smoke"
step "CUDA tests" 90 "$PYTHON" -m pytest -q -rs tests -k cuda  # -rs: a skip on a GPU machine is news
step "interop tests" 30 "$PYTHON" -m pytest -q -rs \
    tests/test_model.py::test_transformers_gpt2_loads_the_export_and_gives_our_logits \
    tests/test_lora.py::test_peft_loads_the_export_and_gives_our_base_plus_adapter_logits

{
    echo
    echo "summary ($(( $(date +%s) - T0 ))s in all, $FAILED of ${#SUMMARY[@]} steps failed):"
    printf '  %s\n' "${SUMMARY[@]}"
} | tee -a "$LOG"
[ "$FAILED" -eq 0 ]
