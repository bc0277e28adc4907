#!/usr/bin/env bash
# GPU benchmark of issue 7 (items 1-3) in one short prepared script: on a lent GPU machine,
#   OUT=/some/dir bash bench/gpu.sh                 # CUDA checks + 320 px InceptionV3, paper settings
#   bash bench/gpu.sh --smoke --device cpu          # the same steps at a tiny size, on this CPU (tested)
# Steps, each under its own timeout so one failure or overrun still leaves the others' JSON:
#   1. bench/gpu_checks.py: training images/s of both architectures (fp32, bf16 autocast, bf16
#      channels-last), every method on the device, GRAD maps on the device vs the CPU
#                                                                    -> $OUT/gpu_checks.json
#   2. bench/methods.py at 320 px, batch 32, paper settings (DEFAULT_SETTINGS), InceptionV3 and
#      DenseNet121: every method's efficiency against the pass-count limit, speed-up over the
#      one-image-at-a-time PAIR way, XRAI parts and the segment cache  -> $OUT/methods_gpu.json
# Hard total: 150 s + 400 s = 9 min 10 s at most (the earlier InceptionV3-only version took
# 2.5-3.2 min on an H200, the first CUDA start included); copy $OUT/*.json to bench/gpu_results/. Python: $PYTHON, else .venv/bin/python if it imports torch + captum +
# saliency, else python3; wheels in .whl/ (captum, saliency) are installed to /tmp/site when
# the chosen python lacks them (the GPU image has torch but not these two).
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${OUT:-$REPO/results/bench}"
DEVICE=cuda
SMOKE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --device) DEVICE="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

needs='import torch, captum, saliency'
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$REPO/.venv/bin/python" ] && "$REPO/.venv/bin/python" -c "$needs" 2>/dev/null; then
    PY="$REPO/.venv/bin/python"
  else
    PY=python3
  fi
fi
if ! "$PY" -c "$needs" 2>/dev/null && ls "$REPO"/.whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$REPO"/.whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
echo "python: $PY ($("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)' 2>&1))"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

if [ "$SMOKE" = 1 ]; then
  CHECKS=(--size 80 --batch 2 --steps 1 --archs inception_v3)
  BENCH=(--size 80 --batch 2 --n-images 2 --slow-images 1 --usual-images 1 --time-budget 20
         --settings sg.samples=3 ig.steps=3 sig.samples=2 sig.steps=2 xrai.steps=3)
  T_CHECKS=300; T_BENCH=300
else
  CHECKS=(--size 320 --batch 16 --steps 5)
  # SIG (250 passes/image) and XRAI (200 + segmentation + region selection) on fewer images;
  # every method stops after the batch that crosses 20 s (two architectures in 400 s).
  BENCH=(--size 320 --batch 32 --n-images 32 --slow-images 4 --usual-images 4 --time-budget 20)
  T_CHECKS=150; T_BENCH=400
fi

cd "$REPO"
status=0
timeout "$T_CHECKS" "$PY" bench/gpu_checks.py --device "$DEVICE" "${CHECKS[@]}" --out "$OUT/gpu_checks.json" \
  || { echo "gpu_checks: exit $?"; status=1; }
timeout "$T_BENCH" "$PY" bench/methods.py --arch inception_v3 densenet121 --device "$DEVICE" "${BENCH[@]}" \
  --out "$OUT/methods_gpu.json" || { echo "methods: exit $?"; status=1; }
ls -la "$OUT"
exit $status
