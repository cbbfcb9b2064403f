#!/usr/bin/env bash
# The page model's long training run, done in chunks across sessions and machines.
# campaign/pagenet/ (committed) holds everything a fresh clone needs to continue it.
#   ./scripts/campaign.sh resume [NAME] [MINUTES]   # continue in the background (restores runs/NAME from
#                                         # campaign/NAME first); with MINUTES, stop on the last epoch that fits
#   ./scripts/campaign.sh save [NAME]     # copy the run's state into campaign/NAME/, then commit that folder
#   ./scripts/campaign.sh status [NAME]   # epochs done and the Valid curve so far
#   ./scripts/campaign.sh autosave NAME MINUTES...  # at each of these minutes from now: save between
#                                         # two epochs (the run paused meanwhile) and commit the folder
#   ./scripts/campaign.sh compare NAME OTHER...  # Valid per epoch against earlier campaigns, and the
#                                         # mean lead over each block of 10 epochs (the stop rule's figure)
# NAME is the run's folder name under runs/ (default: pagenet); campaign/README.md says which is current.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${2:-pagenet}
RUN=runs/$NAME
SAVED=campaign/$NAME
FILES="last.keras model.keras model.json history.csv config.json command.txt"
OPTIONAL="teacher.npy teacher.json"  # a distilled run's targets (and which copies they answer): resuming needs them, not the teachers
epochs() { [ -f "$1/history.csv" ] && echo $(( $(wc -l < "$1/history.csv") - 1 )) || echo 0; }
run_pid() { pgrep -f "training\.train .*--out $RUN( |\$)" | head -1 || true; }  # a resumed or a first-started run
case "${1:-}" in
  resume)
    if [ "$(epochs $SAVED)" -gt "$(epochs $RUN)" ]; then
      mkdir -p $RUN && for f in $FILES; do cp $SAVED/$f $RUN/; done
      for f in $OPTIONAL; do [ ! -f $SAVED/$f ] || cp $SAVED/$f $RUN/; done
      echo "restored $RUN from $SAVED ($(epochs $RUN) epochs done)"
    fi
    [ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/python -m pip install -q -e '.[train]'; }
    # TensorFlow's input pipeline sets glibc's malloc to hand memory back at once, so every step
    # page-faults its tensors in again (~150k faults/s, a third of the CPU in the kernel); jemalloc,
    # told to keep what it frees, trains the same steps ~1.7x faster (DEVELOPERS.md).
    find_jemalloc() { ldconfig -p 2>/dev/null | grep -o '/[^ ]*libjemalloc\.so\.2$' | head -1 || true; }
    jemalloc=$(find_jemalloc)
    if [ -z "$jemalloc" ] && command -v apt-get >/dev/null; then
      sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
      { $sudo apt-get install -y -qq libjemalloc2 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq libjemalloc2; }; } >/dev/null 2>&1 || true
      jemalloc=$(find_jemalloc)
    fi
    [ -n "$jemalloc" ] || echo "note: libjemalloc2 not found (apt-get install libjemalloc2): training runs ~1.7x slower" >&2
    LD_PRELOAD=${jemalloc:+$jemalloc} MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 \
      nohup .venv/bin/python -m training.train --out $RUN --resume --verbose 2 --time-limit "${3:-0}" >> $RUN.log 2>&1 &
    echo "training in the background (pid $!${jemalloc:+, jemalloc}); log: $RUN.log" ;;
  save)
    # A run writes its files at each epoch's end: copy only while it is stopped or paused.
    pid=$(run_pid)
    if [ -n "$pid" ] && ! ps -o stat= -p "$pid" | grep -q T; then
      echo "training is running: pause it first (kill -STOP $pid), then save" >&2; exit 1
    fi
    mkdir -p $SAVED && for f in $FILES; do cp $RUN/$f $SAVED/; done
    for f in $OPTIONAL; do
      [ -f $RUN/$f ] || continue
      # Targets read from an .npy the command names (committed elsewhere) are not copied again.
      for p in $(grep -o '[^ ]*\.npy' $RUN/command.txt || true); do cmp -s "$p" $RUN/$f && { echo "$f: same as $p, not copied"; continue 2; }; done
      cp $RUN/$f $SAVED/
    done
    for f in $SAVED/*.keras; do python3 -c "import sys, zipfile; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip() is not None)" "$f" \
      || { echo "$f is damaged: resume and save after the next epoch" >&2; exit 1; }; done
    echo "saved $(epochs $SAVED) epochs to $SAVED; now: git add $SAVED && git commit" ;;
  autosave)
    # Sessions can end without warning and the next machine is fresh: campaign 7 lost ~2 h of
    # unsaved epochs that way (campaign/README.md). Run this in the background after `resume`.
    start=$(date +%s)
    for at in "${@:3}"; do
      wait_s=$(( start + at * 60 - $(date +%s) )); [ "$wait_s" -le 0 ] || sleep "$wait_s"
      pid=$(run_pid)
      if [ -n "$pid" ]; then  # wait for an epoch's end: history.csv gains a row, the model files follow
        done_now=$(epochs $RUN)
        while [ "$(epochs $RUN)" = "$done_now" ] && kill -0 "$pid" 2>/dev/null; do sleep 2; done
        sleep 10; kill -STOP "$pid" 2>/dev/null || true
      fi
      saved=0; "$0" save "$NAME" && saved=1
      [ -z "$pid" ] || kill -CONT "$pid" 2>/dev/null || true
      [ $saved = 0 ] || { git add "$SAVED" && git commit -q -m "campaign $NAME: $(epochs $SAVED) epochs saved (campaign.sh autosave)" -- "$SAVED"; } || true
      [ -n "$pid" ] || break  # the run had ended: that save was its last
    done ;;
  compare)
    # Runs are compared at the same epochs, not by clock (hosts differ 2x in epoch time).
    [ $# -ge 3 ] || { echo "usage: $0 compare NAME OTHER..." >&2; exit 2; }
    [ -f $RUN/history.csv ] || RUN=$SAVED
    others=(); for o in "${@:3}"; do [ -f "campaign/$o/history.csv" ] && others+=("campaign/$o/history.csv") || others+=("runs/$o/history.csv"); done
    python3 - "$RUN/history.csv" "${others[@]}" <<'PY'
import csv, sys
curves = [[100 * float(row["val_accuracy"]) for row in csv.DictReader(open(p))] for p in sys.argv[1:]]
run, others = curves[0], curves[1:]
print("epoch", sys.argv[1], *(f"{p} (lead)" for p in sys.argv[2:]), sep="\t")
for i, v in enumerate(run):
    print(i + 1, f"{v:.2f}", *(f"{o[i]:.2f} ({v - o[i]:+.2f})" if i < len(o) else "-" for o in others), sep="\t")
for lo in range(0, len(run), 10):
    hi = min(lo + 10, len(run))
    leads = [f"{sum(run[j] - o[j] for j in range(lo, hi)) / (hi - lo):+.2f}" if hi <= len(o) else "-" for o in others]
    print(f"epochs {lo + 1}-{hi}: mean lead", *leads)
PY
    ;;
  status)
    echo "$(epochs $RUN) epochs in $RUN, $(epochs $SAVED) in $SAVED; best: $(cat $RUN/model.json 2>/dev/null || echo none)"
    column -s, -t < $RUN/history.csv ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
