#!/usr/bin/env bash
# One prepared GPU check of greencoder's CUDA paths: under 8 minutes on a single-GPU Linux machine
# whose Python already has torch, transformers, peft and accelerate. Prints one line per check
# (PASS / WARN / FAIL / SKIP and what was seen), then a summary line:
#   prepare       a random model of the default model's real shape (Qwen2.5-Coder-0.5B: 24 layers,
#                 hidden 896, 14 heads, 2 KV heads, intermediate 4864, vocab 151936) written in bf16
#   generate      it loads through greencoder's Runtime in bf16 on cuda and generates (tokens/s)
#   prefix-reuse  prefix reuse on vs off gives the same tokens on the GPU (bf16 and fp32)
#   tune          one epoch of `greencoder tune` on the shared pairs (examples/s)
#   batch         evaluation generation, sequential vs batch 8 (prompts/s and the ratio)
#   nvml          NVML energy of a GPU workload (bf16 matrix products), through greencoder's meter
# Each check is its own process under `timeout`, so one that fails or hangs prints FAIL with one
# reason and the others still run. The Python parts are in benchmarks/gpu_check.py.
#
# Usage (from anywhere; the repository is this script's parent folder):
#   benchmarks/gpu_check.sh [--data DIR] [--wheels DIR] [--work DIR] [--python PY] [--cpu --small]
#     --data DIR    the shared data folder (pairs/, humaneval_x/); default ../shared/data beside the repo
#     --wheels DIR  install, offline, the wheels in DIR that this Python lacks (into WORK/site)
#     --work DIR    scratch folder (model, tune run); default /tmp/greencoder-gpu-check
#     --cpu --small smoke mode: a 2-layer model on the CPU, short runs (tests the plumbing anywhere)
#
# Building the wheel folder (on a machine with the project's venv and network access):
#   benchmarks/gpu_check.sh --build-wheels DIR [--python-version 3.12]
# writes DIR/requirements.txt (greencoder's dependencies as installed here, pinned, minus what the
# torch stack brings, plus nvidia-ml-py) and `pip download`s them as manylinux x86-64 wheels for that
# Python version. Carry DIR to the GPU machine and pass it as --wheels DIR; wheels of packages the
# machine already has are skipped there.
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
DATA="$REPO/../shared/data"
WORK=/tmp/greencoder-gpu-check
WHEELS=""
BUILD=""
PYVER=3.12
SMOKE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    --build-wheels) BUILD="$2"; shift 2 ;;
    --python-version) PYVER="$2"; shift 2 ;;
    --cpu|--small) SMOKE+=("$1"); shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

if [ -n "$BUILD" ]; then
  mkdir -p "$BUILD" || exit 1
  "$PY" "$REPO/benchmarks/gpu_check.py" wheel-list > "$BUILD/requirements.txt" || exit 1
  exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d "$BUILD" -r "$BUILD/requirements.txt"
fi

mkdir -p "$WORK" || exit 1
# Time limits in percent of the GPU ones below (GPU_CHECK_PERCENT overrides, e.g. for a slower GPU);
# the smoke mode on a shared CPU gets three times as long: it is not held to the 8-minute budget.
PERCENT="${GPU_CHECK_PERCENT:-100}"
[ ${#SMOKE[@]} -gt 0 ] && PERCENT="${GPU_CHECK_PERCENT:-300}"
STARTED=$SECONDS
FAILED=0

# run_check NAME SECONDS [ARGS...]: one line for NAME, whatever happens to its process.
run_check() {
  local name="$1" limit=$(( ($2 * PERCENT + 99) / 100 )) out rc line
  shift 2
  out="$(timeout --kill-after=10 "$limit" "$PY" "$REPO/benchmarks/gpu_check.py" "$name" "$@" \
         --work "$WORK" --data "$DATA" ${SMOKE[@]+"${SMOKE[@]}"} 2>"$WORK/$name.err")"
  rc=$?
  line="$(printf '%s\n' "$out" | grep -E '^(PASS|WARN|FAIL|SKIP) ' | tail -n 1)"
  if [ -z "$line" ]; then
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      line="FAIL $name: timed out after ${limit} s"
    else
      line="FAIL $name: exit $rc: $(grep -v '^\s*$' "$WORK/$name.err" | tail -n 1)"
    fi
  fi
  case "$line" in FAIL*) FAILED=$((FAILED + 1)) ;; esac
  echo "$line"
}

if [ -n "$WHEELS" ]; then
  run_check install-wheels 60 "$WHEELS" "$WORK/site"
  export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi
# Limits add up to 450 s on a GPU (under 8 minutes); each check normally takes a fraction of its own.
run_check prepare 80
run_check generate 50
run_check prefix-reuse 50
run_check tune 180
run_check batch 60
run_check nvml 30
echo "gpu_check: $FAILED failed, $((SECONDS - STARTED)) s in all"
[ "$FAILED" -eq 0 ]
