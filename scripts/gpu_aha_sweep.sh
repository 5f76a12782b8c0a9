#!/usr/bin/env bash
# Does thinking grow with accuracy? One unattended pass on one (shared) GPU, ~15.5 minutes.
#
#   scripts/gpu_aha_sweep.sh                  # on the GPU machine, from anywhere in the checkout
#   SMOKE=1 scripts/gpu_aha_sweep.sh          # the same commands on the tiny offline model (CPU, minutes)
#
# Steps (each logs to logs/<step>.log and adds one line to logs/status.txt):
#   0-preflight  versions, GPU, the model in the cache, both configs checked
#   1-calibrate  configs/aha-multiplication.yaml's train problems (2- or 3-digit x 2-digit products) under the base
#                model: k=8 samples each at the recipe's temperature, as many problems as
#                CAL_SECONDS allows (the first ones of the split); band 0.1-0.7 (1 to 5 right of 8)
#   2-sweep      four runs at once (micro-batches of 16), each training until TRAIN_SECONDS
#                (max_train_seconds: it ends before a step would pass it) then evaluated on the
#                held-out split with the base model beside it; one summary.md / summary.json and an
#                overlay report in sweeps/$NAME/:
#                  cal       the aha recipe on its calibrated band (128 completions a step)
#                  cal-b512  the same with 512 completions a step (32 prompts x 16) and 2x the
#                            learning rate, as the big-batch preset does for the default recipe
#                  nocal     the aha recipe on the whole train split (does the band matter?)
#                  ref       configs/default.yaml --preset big-batch (512 a step), the one run that
#                            hinted at growth (47.7 closed-think tokens held out vs base 30.2)
#   3-summary    the summary's table in the log, one line per variant in status.txt
# A run that is stopped can be started again: calibration is reused, finished variants are skipped
# and stopped ones resumed (the training budget decided by the first start, logs/train_seconds, is
# kept: it is part of each run's config). For a fresh pass, use another WORK or NAME.
# Exit code: the sweep's (0: every variant finished; 1: one failed; 124: the time limit), 1 when
# the preflight fails.
#
# Settings (environment): AHAZERO (default "python3 -m ahazero"), PYTHON (python3), NAME (aha-sweep),
# WORK (where logs/, calibration/, runs/, sweeps/ go; default .), WALL_SECONDS (930: the whole
# script), CAL_SECONDS (180), TRAIN_MAX (540), SWEEP_OVERHEAD (210: model loads, graph capture,
# evals and report around the training), MIN_KEPT (32: fewer calibrated problems drop the
# calibrated variants), ONLY ("cal cal-b512 nocal ref": the variants to run).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/gpu_timed_steps.sh   # the checkout on PYTHONPATH; SMOKE, AHZ, PYTHON; elapsed, status, run_step

NAME=${NAME:-aha-sweep}
AHA=configs/aha-multiplication.yaml
REF=configs/default.yaml
MB=16                      # micro-batch of every run (so four share the GPU)
BIG_ACCUM=32               # 16 x 32 = 512 completions a step
BIG_STEPS=75               # max_steps of cal-b512 (aha's 300 / 4); the time budget ends it first
BIG_LR=2.0e-5              # 2x aha's 1e-5, as big-batch doubles the default recipe's rate
BAND_LOW=0.1 BAND_HIGH=0.7
CAL_BATCH=1024             # sequences per generation call in calibration (128 problems x 8)
CAL_LIMIT=()
MODEL=qwen2.5-coder-0.5b-instruct
MODEL_OVR=()
if [[ $SMOKE == 1 ]]; then  # the tiny random model, tiny batches and steps; the same commands and keys
    WORK=${WORK:-runs/gpu-aha-sweep-smoke}
    MODEL=tiny
    MODEL_OVR=(model.name_or_path=tiny model.dtype=float32 task.num_test=8)
    MB=8 BIG_ACCUM=2 BIG_STEPS=2
    BAND_LOW=0 BAND_HIGH=1  # a random model solves nothing: keep every calibrated problem
    CAL_BATCH=64 CAL_LIMIT=(--limit 32)
    WALL_SECONDS=${WALL_SECONDS:-3000} CAL_SECONDS=${CAL_SECONDS:-60} TRAIN_MAX=${TRAIN_MAX:-120}
    MIN_KEPT=${MIN_KEPT:-1}
fi
WORK=${WORK:-.}
WALL_SECONDS=${WALL_SECONDS:-930}
CAL_SECONDS=${CAL_SECONDS:-180}
TRAIN_MAX=${TRAIN_MAX:-540}
SWEEP_OVERHEAD=${SWEEP_OVERHEAD:-210}
MIN_KEPT=${MIN_KEPT:-32}
ONLY=${ONLY:-cal cal-b512 nocal ref}   # the variants to run (a subset shares the GPU with fewer runs)
FINAL_RESERVE=25           # kept for the summary step

LOGS=$WORK/logs
CAL=$WORK/calibration/$NAME.jsonl
SWEEP_OUT=$WORK/sweeps/$NAME
mkdir -p "$LOGS"

# json FILE EXPR: a value from a JSON file (EXPR in Python, on `d`), or nothing
json() { "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }

status "start: SMOKE=$SMOKE name=$NAME work=$WORK wall=${WALL_SECONDS}s ahazero='${AHZ[*]}'"

# ---- 0: preflight -------------------------------------------------------------------------------
{
    echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | wc -l) changed files"
    "$PYTHON" -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
'transformers', transformers.__version__, 'trl', trl.__version__)" 2>&1
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu \
        --format=csv 2>&1
} >> "$LOGS/0-preflight.log"
ok=1
run_step 0-preflight 300 "${AHZ[@]}" fetch-model "$MODEL" || ok=0
run_step 0-preflight 120 "${AHZ[@]}" check "$AHA" "${MODEL_OVR[@]}" || ok=0
run_step 0-preflight 120 "${AHZ[@]}" check "$REF" "${MODEL_OVR[@]}" --preset big-batch || ok=0
if [[ $ok == 1 ]]; then
    status "0-preflight: ok ($(grep -m1 '^torch' "$LOGS/0-preflight.log" || echo 'versions not read'))"
else
    status "0-preflight: FAILED (see $LOGS/0-preflight.log); stopping"
    exit 1
fi

# ---- 1: calibration -----------------------------------------------------------------------------
CAL_SUMMARY=${CAL%.jsonl}.summary.json
if [[ -s $CAL && -s $CAL_SUMMARY ]]; then
    status "1-calibrate: reusing $CAL"
elif run_step 1-calibrate $(( CAL_SECONDS + 240 )) "${AHZ[@]}" calibrate "$AHA" "${MODEL_OVR[@]}" --k 8 \
        --band "$BAND_LOW,$BAND_HIGH" --batch-size "$CAL_BATCH" --max-seconds "$CAL_SECONDS" "${CAL_LIMIT[@]}" \
        --out "$CAL" --overwrite; then
    status "1-calibrate: ok in ${STEP_SECONDS}s"
else
    status "1-calibrate: FAILED (exit $?, see $LOGS/1-calibrate.log); the calibrated variants are dropped"
fi
KEPT=$(json "$CAL_SUMMARY" "d['kept']")
KEPT=${KEPT:-0}
if [[ -s $CAL_SUMMARY ]]; then
    status "1-calibrate: $(json "$CAL_SUMMARY" "f\"{d['n']} of {d['requested']} train problems calibrated in \
{d['seconds']:.0f}s; kept {d['kept']} in [{d['band'][0]:g}, {d['band'][1]:g}] ({d['below']} below, {d['above']} \
above); mean pass rate {d['mean_pass_rate']:.1%}; truncated {d['truncation_rate']:.1%}\"")"
fi

# ---- 2: the sweep -------------------------------------------------------------------------------
BUDGET_FILE=$LOGS/train_seconds
if [[ -s $BUDGET_FILE ]]; then  # a re-run keeps the first start's budget (it is part of each run's config)
    TRAIN_SECONDS=$(cat "$BUDGET_FILE")
else
    left=$(( WALL_SECONDS - $(elapsed) - FINAL_RESERVE - SWEEP_OVERHEAD ))
    TRAIN_SECONDS=$(( left < TRAIN_MAX ? left : TRAIN_MAX ))
    TRAIN_SECONDS=$(( TRAIN_SECONDS < 60 ? 60 : TRAIN_SECONDS ))
    echo "$TRAIN_SECONDS" > "$BUDGET_FILE"
fi
CAL_OVR=("task.calibration=$CAL" "task.pass_rate_band=[$BAND_LOW,$BAND_HIGH]")
VARIANTS=()
wanted() { [[ " $ONLY " == *" $1 "* ]]; }
if (( KEPT >= MIN_KEPT )); then
    wanted cal && VARIANTS+=(--variant cal "${CAL_OVR[@]}")
    wanted cal-b512 && VARIANTS+=(--variant cal-b512 "${CAL_OVR[@]}" "grpo.gradient_accumulation_steps=$BIG_ACCUM"
               "grpo.learning_rate=$BIG_LR" "grpo.max_steps=$BIG_STEPS")
else
    status "2-sweep: calibration kept $KEPT problems (< $MIN_KEPT): the calibrated variants are left out"
fi
wanted nocal && VARIANTS+=(--variant nocal)
wanted ref && VARIANTS+=(--variant ref "config=$REF" preset=big-batch "grpo.per_device_train_batch_size=$MB"
           "grpo.gradient_accumulation_steps=$BIG_ACCUM")
if (( ${#VARIANTS[@]} == 0 )); then
    status "2-sweep: no variant left to run (ONLY='$ONLY', calibration kept $KEPT)"
    exit 1
fi
COMMON=("output_root=$WORK/runs" "max_train_seconds=$TRAIN_SECONDS" grpo.save_steps=100000 "${MODEL_OVR[@]}")
SWEEP_LIMIT=$(( WALL_SECONDS - $(elapsed) - FINAL_RESERVE ))
SWEEP_LIMIT=$(( SWEEP_LIMIT < TRAIN_SECONDS + 120 ? TRAIN_SECONDS + 120 : SWEEP_LIMIT ))
status "2-sweep: starting; training budget ${TRAIN_SECONDS}s per run, sweep limit ${SWEEP_LIMIT}s"
# --parallel 6: the four runs and the two base-model evals (aha's and the default recipe's held-out
# splits) all start at once; each run's own eval waits for its base eval
SWEEP_RC=0
if run_step 2-sweep "$SWEEP_LIMIT" "${AHZ[@]}" sweep "$AHA" "${COMMON[@]}" --preset fast-rollouts "${VARIANTS[@]}" \
        --eval --eval-batch-size 200 --parallel 6 --name "$NAME" --out "$SWEEP_OUT" --resume; then
    status "2-sweep: ok in ${STEP_SECONDS}s"
else
    SWEEP_RC=$?
    status "2-sweep: exit $SWEEP_RC after ${STEP_SECONDS}s (124: the time limit; see $LOGS/2-sweep.log and $WORK/runs/*/sweep.log)"
fi

# ---- 3: summary ---------------------------------------------------------------------------------
if [[ -s $SWEEP_OUT/summary.json ]]; then
    cat "$SWEEP_OUT/summary.md" > "$LOGS/3-summary.log"
    "$PYTHON" - "$SWEEP_OUT/summary.json" <<'EOF' | tee -a "$LOGS/status.txt"
import json, sys
d = json.load(open(sys.argv[1]))
pct = lambda v: "-" if v is None else f"{v:.1%}"
num = lambda v: "-" if v is None else f"{v:.1f}"
for r in d["variants"]:
    t = r["target"]
    print(f"  {r['variant']}: {r['status']}, {r['steps'] or '-'} steps in {num(r['train_seconds'])}s; pass@1 "
          f"{pct(r['pass1_base'])} -> {pct(r['pass1_final'])}; closed think {num(r['think_closed_fmt90'])} (format 90% "
          f"at step {r['format90_step'] or '-'}) -> {num(r['think_closed_end'])}, held out {num(r['think_closed_eval_base'])}"
          f" -> {num(r['think_closed_eval_final'])}; target {t['met']} (gain {t['gain']}, growth {t['growth']}, "
          f"above base {t['above_base']}, time {t['time']})")
EOF
    status "3-summary: $SWEEP_OUT/summary.md, summary.json$( [[ -f $SWEEP_OUT/report/report.html ]] && \
        echo ", overlay report $SWEEP_OUT/report/report.html"); calibration $CAL"
else
    status "3-summary: no summary written (see $LOGS/2-sweep.log)"
fi
command -v nvidia-smi > /dev/null && nvidia-smi >> "$LOGS/3-summary.log" 2>&1
status "done in $(elapsed)s"
exit "$SWEEP_RC"
