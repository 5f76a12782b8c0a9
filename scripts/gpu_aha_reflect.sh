#!/usr/bin/env bash
# The aha moment itself: does a reflective cold start (configs/aha-reflect.yaml) give RL checks that change
# answers to amplify? One unattended pass on one (shared) GPU, 785 s on an H100 (the model already converted):
# five pipelines of a cold start, SFT and 20 GRPO steps, two at a time, and 20 evals of 200 problems.
#
#   scripts/gpu_aha_reflect.sh               # on the GPU machine, from anywhere in the checkout
#   SMOKE=1 scripts/gpu_aha_reflect.sh       # the same commands on the tiny offline model (CPU, minutes)
#
# Steps (each logs to logs/<step>.log and adds one line to logs/status.txt: ok, done (before), FAIL,
# TIMEOUT or skip, with seconds):
#   0-preflight              versions, GPU, the model in the cache; the recipe, its control and variant (a) checked
#   base-{heldout,hard}      the base model on both held-out sets: "before" for every variant
#   <variant>                one `ahazero stages` pipeline at a fixed step count, its stages' own evals off:
#                              zero        (a) configs/aha-reflect.yaml's GRPO stage alone, from the base model
#                              reflect-s0  (b) the recipe: reflective cold start -> SFT -> GRPO
#                              control     (c) configs/aha-reflect-control.yaml: plain cold start -> SFT -> GRPO
#                              reflect-s1, reflect-s2   the recipe with seeds 1 and 2 (same held-out sets)
#                              masked-s0, -s1, -s2      (e) the recipe with stages.0.train_on_slips=false: the
#                                                       slipped lines stay in the traces but out of SFT's loss
#                            (d), the reflective cold start alone, is each reflect run's sft model
#   <variant>-<stage>-<set>  `ahazero eval` of a stage's model (sft, grpo) on a held-out set (heldout, hard):
#                            200 problems, greedy, the graph sampler on a GPU, up to EVAL_TOKENS tokens;
#                            hard = task.max_terms=5 task.max_value=999
#   table                    scripts/aha_reflect_table.py: logs/aha_reflect.md, .json and two PNGs of the RL curves
# Two lanes share the GPU (PARALLEL=1): [base evals, control, reflect-s1] beside [reflect-s0, zero, reflect-s2].
# A failed step skips only what needs its output. Running the script again skips what is done and resumes an
# unfinished pipeline (finished stages are kept).
# Exit code: 0 when every step ran (or was done before) and the table was written, else 1; 2 for a bad setting.
#
# Settings (environment): AHAZERO (default "python3 -m ahazero"), PYTHON (python3), WORK (where runs/ and logs/ go;
# default .), PREFIX (ar: run names runs/ar-*), PARALLEL (1; 0: one pipeline at a time), ONLY ("zero reflect control
# seeds": what to run; "masked" adds (e), three seeds), T_PIPELINE (480 s per pipeline), T_EVAL (240 s per eval), EVAL_TOKENS (1024: the reflective
# cold start's traces of the harder set run to 924 tokens).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"   # a checkout runs without being installed
export PYTHONUNBUFFERED=1

SMOKE=${SMOKE:-0}
read -r -a AZ <<< "${AHAZERO:-python3 -m ahazero}"
PYTHON=${PYTHON:-python3}
PREFIX=${PREFIX:-ar}
PARALLEL=${PARALLEL:-1}
ONLY=${ONLY:-zero reflect control seeds}
for part in $ONLY; do
    [[ $part =~ ^(zero|reflect|control|seeds|masked)$ ]] || {
        echo "ONLY: unknown part '$part' (choose from: zero reflect control seeds masked)" >&2; exit 2; }
done
wanted() { [[ " $ONLY " == *" $1 "* ]]; }
RECIPE=configs/aha-reflect.yaml
CONTROL=configs/aha-reflect-control.yaml
ZERO_STAGES='stages=[{name: grpo, kind: grpo, eval: false}]'
NO_STAGE_EVALS=(stages.1.eval=false stages.2.eval=false)
MASKED=(stages.0.train_on_slips=false)
HARD=(task.max_terms=5 task.max_value=999)
MODEL=qwen2.5-coder-0.5b-instruct
MODEL_OVR=()
EVAL=(--batch-size 200 --max-new-tokens "${EVAL_TOKENS:-1024}")
if [[ $SMOKE == 1 ]]; then  # the tiny random model and the configs' CPU profile; the same commands and keys
    WORK=${WORK:-runs/gpu-aha-reflect-smoke}
    MODEL=tiny
    MODEL_OVR=(model.name_or_path=tiny model.dtype=float32)
    EVAL=(--batch-size 4 --max-new-tokens 16 --limit 4)
    T_PIPELINE=${T_PIPELINE:-900} T_EVAL=${T_EVAL:-300}
fi
T_PIPELINE=${T_PIPELINE:-480} T_EVAL=${T_EVAL:-240}
WORK=${WORK:-.}
RUNS=$WORK/runs
LOG_DIR=$WORK/logs
STATUS=$LOG_DIR/status.txt
mkdir -p "$LOG_DIR" "$RUNS"
START=$SECONDS

source scripts/gpu_steps.sh   # status, run_step, skip, done_before, is_model, on_signal

evaluate() {  # evaluate STEP MODEL OUT_DIR SET: one eval command, results in OUT_DIR/<tag>.json
    local step=$1 model=$2 out=$3 set=$4 tag
    if [[ $model == base ]]; then tag=base; else tag="$(basename "$(dirname "$model")")-final"; fi
    if [[ -f $out/$tag.json ]]; then done_before "$step" "$out/$tag.json"; return 0; fi
    local extra=()
    [[ $set == hard ]] && extra=("${HARD[@]}")
    run_step "$step" "$T_EVAL" eval "$RECIPE" 'stages=[]' "name=$PREFIX-eval" "output_root=$RUNS" \
        --model "$model" --out "$out" "${EVAL[@]}" "${MODEL_OVR[@]}" "${extra[@]}"
}

pipeline() {  # pipeline NAME CONFIG SEED "STAGES" OVERRIDES...: the stages, then STAGES' models on both sets
    local name=$1 config=$2 seed=$3 evaluated=$4
    shift 4
    local root=$RUNS/$PREFIX-$name resume=()
    if [[ -f $root/grpo/stage.json ]]; then done_before "$name" "$root"
    else
        [[ -d $root ]] && resume=(--resume)
        run_step "$name" "$T_PIPELINE" stages "$config" "name=$PREFIX-$name" "seed=$seed" "output_root=$RUNS" "$@" \
            "${MODEL_OVR[@]}" "${resume[@]}"
    fi
    local stage set
    for stage in $evaluated; do
        for set in heldout hard; do
            if is_model "$root/$stage/model"; then
                evaluate "$name-$stage-$set" "$root/$stage/model" "$root/$stage/eval/$set" "$set"
            else
                skip "$name-$stage-$set" "no model in $root/$stage"
            fi
        done
    done
}

lane_a() {
    wanted reflect && pipeline reflect-s0 "$RECIPE" 0 "sft grpo" "${NO_STAGE_EVALS[@]}"
    wanted zero && pipeline zero "$RECIPE" 0 grpo "$ZERO_STAGES"
    wanted seeds && pipeline reflect-s2 "$RECIPE" 2 "sft grpo" "${NO_STAGE_EVALS[@]}"
    wanted masked && pipeline masked-s0 "$RECIPE" 0 "sft grpo" "${NO_STAGE_EVALS[@]}" "${MASKED[@]}"
    wanted masked && pipeline masked-s2 "$RECIPE" 2 "sft grpo" "${NO_STAGE_EVALS[@]}" "${MASKED[@]}"
    return 0
}

lane_b() {
    for set in heldout hard; do
        evaluate "base-$set" base "$RUNS/$PREFIX-base/eval/$set" "$set"
    done
    wanted control && pipeline control "$CONTROL" 0 "sft grpo" "${NO_STAGE_EVALS[@]}"
    wanted seeds && pipeline reflect-s1 "$RECIPE" 1 "sft grpo" "${NO_STAGE_EVALS[@]}"
    wanted masked && pipeline masked-s1 "$RECIPE" 1 "sft grpo" "${NO_STAGE_EVALS[@]}" "${MASKED[@]}"
    return 0
}

FIRST_LINE=$( (cat "$STATUS" 2> /dev/null || true) | wc -l)   # this run's lines come after it
echo "=== $(date '+%F %T') gpu_aha_reflect.sh smoke=$SMOKE parallel=$PARALLEL prefix=$PREFIX only='$ONLY'" >> "$STATUS"
echo "status: $STATUS, logs: $LOG_DIR/<step>.log, runs: $RUNS/$PREFIX-*"

# ---- 0: preflight -------------------------------------------------------------------------------
{
    echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | wc -l) changed files"
    "$PYTHON" -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
'transformers', transformers.__version__, 'trl', trl.__version__)" 2>&1
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>&1
} >> "$LOG_DIR/0-preflight.log"
ok=1
run_step 0-preflight-model 300 fetch-model "$MODEL" || ok=0
run_step 0-preflight-recipe 120 check "$RECIPE" "output_root=$RUNS" "${MODEL_OVR[@]}" || ok=0
run_step 0-preflight-control 120 check "$CONTROL" "output_root=$RUNS" "${MODEL_OVR[@]}" || ok=0
run_step 0-preflight-zero 120 check "$RECIPE" "$ZERO_STAGES" "output_root=$RUNS" "${MODEL_OVR[@]}" || ok=0
if wanted masked; then
    run_step 0-preflight-masked 120 check "$RECIPE" "${MASKED[@]}" "output_root=$RUNS" "${MODEL_OVR[@]}" || ok=0
fi
if [[ $ok != 1 ]]; then
    status 0-preflight FAIL 0 "see $LOG_DIR/0-preflight-*.log; stopping"
    exit 1
fi

# ---- 1: base evals and the pipelines, two lanes -----------------------------------------------
if [[ $PARALLEL == 1 ]]; then
    ( trap '[[ -n $CHILD ]] && kill -TERM "$CHILD" 2> /dev/null; exit 143' TERM; lane_a ) &
    OTHER_PID=$!
    lane_b
    wait "$OTHER_PID"
    OTHER_PID=
else
    lane_b
    lane_a
fi

# ---- 2: the table -------------------------------------------------------------------------------
start=$SECONDS
if "$PYTHON" scripts/aha_reflect_table.py --runs "$RUNS" --prefix "$PREFIX" --out "$LOG_DIR/aha_reflect.md" \
        > "$LOG_DIR/table.log" 2>&1; then
    status table ok $((SECONDS - start)) "$LOG_DIR/aha_reflect.md"
    grep -E '^- (PASS|FAIL|n/a):' "$LOG_DIR/aha_reflect.md" | sed 's/^/  /' | tee -a "$STATUS"
else
    status table FAIL $((SECONDS - start)) "see $LOG_DIR/table.log"
fi
command -v nvidia-smi > /dev/null && nvidia-smi >> "$LOG_DIR/table.log" 2>&1
echo "=== done in $((SECONDS - START)) s" | tee -a "$STATUS"
if tail -n +$((FIRST_LINE + 1)) "$STATUS" | grep -qE '^[0-9:]+ +[^ ]+ +(FAIL|TIMEOUT) '; then exit 1; fi
exit 0
