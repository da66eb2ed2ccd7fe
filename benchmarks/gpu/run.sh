#!/usr/bin/env bash
# The one-shot GPU check: every GPU code path of the project, then probe.py's figures, in one JSON.
#
#   on the GPU machine (after benchmarks/gpu/prepare.sh here; carry .whl and .gpu_data):
#     bash benchmarks/gpu/run.sh --out "$OUT"
#   here, on the CPU, the same steps at toy sizes (tests/test_gpu_check.py runs this):
#     bash benchmarks/gpu/run.sh --dry-run --out outputs/gpu_check
#
# Each step's exit status, seconds and last output line go to <out>/steps.jsonl; probe.py merges them into
# <out>/gpu_check.json and exits 1 if any step or measurement failed. Logs: <out>/logs/<step>.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
DRY=0
OUT_DIR=outputs/gpu_check
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT_DIR=$2; shift ;;
    *) echo "error: unknown argument $1 (use --dry-run, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT_DIR/logs" && OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1 FER_CACHE_DIR="$WORK/cache"

if [ "$DRY" = 1 ]; then
  PY=${PY:-.venv/bin/python}
  SHARED=${FER_DATA_DIR:-../shared/data}
  export FER_DATA_DIR="$WORK/data"
  "$PY" benchmarks/gpu/make_subset.py "$SHARED/fer2013/fer2013.csv.gz" "$FER_DATA_DIR/fer2013/fer2013.csv.gz" \
    --training-rows 300 || exit 1
  mkdir -p "$FER_DATA_DIR/photos" && ls "$SHARED"/jaffe-dev/*.tiff | head -2 | xargs -I{} cp {} "$FER_DATA_DIR/photos/"
  # the GPU settings on the CPU: same configs, accelerator and device swapped, a few batches per stage
  ACCEL=cpu DEVICE=cpu
  LIMITS=(trainer.max_epochs=1 trainer.limit_train_batches=2 trainer.limit_val_batches=2 trainer.limit_test_batches=2
          data.batch_size=32 data.eval_batch_size=64 callbacks.rich_progress_bar=null trainer.enable_progress_bar=false)
  EVAL_LIMITS=(max_faces=128)
else
  PY=${PY:-python3}
  if [ -d .whl ]; then  # the bare image lacks hydra, albumentations, grad-cam: the wheels prepare.sh carried
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || { echo "error: installing the carried wheels failed" >&2; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
  fi
  export FER_DATA_DIR=$PWD/.gpu_data
  [ -f "$FER_DATA_DIR/fer2013/fer2013.csv.gz" ] || { echo "error: no $FER_DATA_DIR: run prepare.sh, carry it" >&2; exit 1; }
  ACCEL=gpu DEVICE=cuda
  LIMITS=(trainer.max_epochs=2 callbacks.rich_progress_bar=null trainer.enable_progress_bar=false)
  EVAL_LIMITS=()
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT_DIR/logs/nvidia-smi.txt" 2>&1
fi
: > "$OUT_DIR/steps.jsonl"

# step NAME COMMAND...: run it, record {"name", "rc", "seconds", "last_line"} as one JSON line
step() {
  local name=$1; shift
  local started=$SECONDS
  echo "== $name: $*"
  "$@" > "$OUT_DIR/logs/$name.log" 2>&1
  local rc=$?
  local last
  last=$(grep -v '^\s*$' "$OUT_DIR/logs/$name.log" | tail -1 | cut -c1-300)
  "$PY" -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "rc": int(sys.argv[2]), "seconds": int(sys.argv[3]), "last_line": sys.argv[4]}))' \
    "$name" "$rc" "$((SECONDS - started))" "$last" >> "$OUT_DIR/steps.jsonl"
  echo "   rc=$rc in $((SECONDS - started)) s"
}

RUNS=$WORK/runs
GPU_TRAINER=(trainer=gpu "trainer.accelerator=$ACCEL")
step headline "$PY" scripts/train.py model=mini_xception "trainer.accelerator=$ACCEL" "${LIMITS[@]}" "hydra.run.dir=$RUNS/headline"
step gpu_callbacks "$PY" scripts/train.py "${GPU_TRAINER[@]}" 'callbacks=[default,ema,precise_bn,gradcam]' \
  callbacks.precise_bn.num_faces=256 callbacks.gradcam.every_n_epochs=1 "${LIMITS[@]}" "hydra.run.dir=$RUNS/callbacks"
step ddp_one_device "$PY" scripts/train.py trainer=ddp_gpu "trainer.accelerator=$ACCEL" trainer.devices=1 \
  trainer.sync_batchnorm=false "${LIMITS[@]}" "hydra.run.dir=$RUNS/ddp"
step sweep "$PY" scripts/train.py -m "${GPU_TRAINER[@]}" model.optimizer.lr=0.01,0.05 test=false "${LIMITS[@]}" \
  "hydra.sweep.dir=$RUNS/sweep"
CKPT=$RUNS/headline/checkpoints/last.ckpt
step eval_shipped "$PY" scripts/eval.py "device=$DEVICE" "${EVAL_LIMITS[@]}" "hydra.run.dir=$RUNS/eval"
step eval_trained "$PY" scripts/eval.py "device=$DEVICE" "ckpt_path=$CKPT" "${EVAL_LIMITS[@]}" "hydra.run.dir=$RUNS/eval2"
step predict "$PY" scripts/predict.py "inputs=$FER_DATA_DIR/photos" detector=haar "device=$DEVICE" "hydra.run.dir=$RUNS/predict"
step gradcam "$PY" scripts/gradcam.py "inputs=$FER_DATA_DIR/photos" detector=haar "device=$DEVICE" "hydra.run.dir=$RUNS/gradcam"

PROBE=(--out "$OUT_DIR/gpu_check.json" --steps "$OUT_DIR/steps.jsonl")
[ "$DRY" = 1 ] && PROBE+=(--dry-run)
"$PY" benchmarks/gpu/probe.py "${PROBE[@]}" 2>&1 | tee "$OUT_DIR/logs/probe.log"
exit "${PIPESTATUS[0]}"
