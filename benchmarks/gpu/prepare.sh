#!/usr/bin/env bash
# Prepare, on a machine with network and the real data, what benchmarks/gpu/run.sh needs on a bare GPU machine
# (Python 3.12, torch, Lightning, OpenCV, TensorBoard, timm present; no network; no hydra, albumentations,
# grad-cam; the shared data not there):
#   .whl/       cp312 wheels of exactly the missing packages, at the versions this project runs with
#   .gpu_data/  fer2013/fer2013.csv.gz: every PublicTest and PrivateTest row plus the first Training rows
# Both are git-ignored; carry them to the device: carry=[".whl", ".gpu_data"]. Total must stay under ~60 MiB.
# Usage: bash benchmarks/gpu/prepare.sh [training rows, default 5000]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
TRAIN_ROWS=${1:-5000}
: "${FER_DATA_DIR:=../shared/data}"

# name==version of what the device lacks, read from this environment so the two never drift apart
installed() { "$PY" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
PACKAGES=(hydra-core omegaconf albumentations albucore simsimd stringzilla pydantic pydantic-core
          annotated-types typing-inspection ttach)
# published as source archives only: their pure-Python wheels are built here
SOURCE_ONLY=(antlr4-python3-runtime grad-cam)
rm -rf .whl && mkdir -p .whl
for name in "${PACKAGES[@]}"; do
  version=$(installed "$name")
  [ -n "$version" ] || { echo "error: $name is not installed in $PY's environment" >&2; exit 1; }
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl "$name==$version"
done
for name in "${SOURCE_ONLY[@]}"; do
  "$PY" -m pip wheel -q --no-deps -w .whl "$name==$(installed "$name")"
done

# a few real photos for predict.py and gradcam.py (detector=haar: dlib is not on the device)
mkdir -p .gpu_data/photos
ls "$FER_DATA_DIR"/jaffe-dev/*.tiff | head -4 | xargs -I{} cp {} .gpu_data/photos/
"$PY" benchmarks/gpu/make_subset.py "$FER_DATA_DIR/fer2013/fer2013.csv.gz" .gpu_data/fer2013/fer2013.csv.gz \
  --training-rows "$TRAIN_ROWS"
du -sh .whl .gpu_data
total=$(du -cb .whl .gpu_data $(git ls-files) 2>/dev/null | tail -1 | cut -f1)
echo "carried tree: $((total / 1048576)) MiB of the 64 MiB limit"
