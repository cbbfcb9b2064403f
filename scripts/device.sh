#!/usr/bin/env bash
# A training run on a lent accelerator (the workplace's `device` tool: one H200, JAX, no TensorFlow,
# no network, 15 minutes a session, at most 64 MiB sent a call, 30 s warm between calls).
#   ./scripts/device.sh pack                  # here: wheels + the FER+ arrays, in parts, into .device/
#   bash scripts/device.sh train --minutes 9 --out runs/NAME [--from campaign/NAME] -- TRAIN_ARGS
#       # there: install the wheels, assemble the arrays, fit the schedule to the minutes, train, copy to $OUT/NAME
# `pack` prints the device calls to make, back to back; campaign/README.md says which run to send.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.device
CALL_MB=62  # of the 64 MiB a call may send: the tracked tree (~35 MB) travels with every call, so each carries one part

case "${1:-}" in
  pack)
    python=${PYTHON:-.venv/bin/python}
    rm -rf $KIT && mkdir -p $KIT/whl
    # Keras and the two of its needs the device's image lacks, as Python 3.12 wheels (pure or manylinux).
    keras=$($python -c "import keras; print(keras.__version__)")
    for pkg in keras==$keras namex==0.1.0 optree==0.20.0; do
      $python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d $KIT/whl "$pkg"
    done
    # Train and Valid as one cache file (Test stays here: it is never needed to train), split into parts.
    $python -c "from pathlib import Path; from training.data import default_data_dir, load_ferplus, save_cache
s = load_ferplus(default_data_dir()); s['test'] = s['test'].subset(slice(0, 0))
save_cache(s, Path('$KIT/ferplus.npz'), compressed=True)"
    tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s}')
    part=$(( CALL_MB * 1048576 - tree - $(du -sb $KIT/whl | cut -f1) - 65536 ))
    (cd $KIT && split -b $part -d ferplus.npz data.part && sha256sum ferplus.npz > ferplus.sha256 && rm ferplus.npz)
    parts=$(cd $KIT && ls data.part*)
    echo "packed $(du -sh $KIT | cut -f1) in $KIT: $(ls $KIT/whl | tr '\n' ' ')"
    echo "device calls, back to back (the machine goes back after 30 s idle):"
    last=$(echo "$parts" | tail -1)
    for p in $parts; do
      extra=""; [ "$p" = "$(echo "$parts" | head -1)" ] && extra=", \"$KIT/whl\", \"$KIT/ferplus.sha256\""
      if [ "$p" = "$last" ]; then
        echo "  run(carry=[\"$KIT/$p\"$extra], timeout_s=600, command=\"set -o pipefail; bash scripts/device.sh train --minutes 9 --out runs/NAME -- TRAIN_ARGS\")"
      else
        echo "  run(carry=[\"$KIT/$p\"$extra], command=\"ls -l $KIT\")"
      fi
    done ;;

  train)
    shift
    python3 -c "import keras" 2>/dev/null ||  # the device's image has JAX but no Keras
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $KIT/whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
    cat $KIT/data.part* > $KIT/ferplus.npz && (cd $KIT && sha256sum -c ferplus.sha256)
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    mkdir -p "${OUT:=/tmp/out}"
    python3 scripts/device_fit.py --data $KIT/ferplus.npz "$@" 2>&1 | grep -v "^[WI]0000" | tee "$OUT/train.log" ;;

  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
