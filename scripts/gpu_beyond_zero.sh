#!/usr/bin/env bash
# Beyond R1-Zero on one (shared) GPU, unattended: the distillation and cold-start comparisons,
# each piece an `ahazero` command with config overrides.
#
# Usage (from anywhere; paths are relative to the repository root):
#   scripts/gpu_beyond_zero.sh [TEACHER_MODEL_DIR]        # default runs/big-batch/model
#
# The teacher is the default recipe trained with the big-batch preset, started beside this
# script (it waits for the teacher's final model, polling, up to $TEACHER_WAIT seconds):
#   python3 -m ahazero train configs/default.yaml --preset big-batch name=big-batch &
#   scripts/gpu_beyond_zero.sh runs/big-batch/model
#
# (a) distillation, student SmolLM2-135M-Instruct (configs/distill-grpo.yaml, configs/distill-sft.yaml):
#     student base eval | student + GRPO ($STUDENT_GRPO_STEPS big-batch steps, about the SFT's time)
#     | teacher rejection samples (train split, K=8, at most 2 kept per prompt, $TEACHER_PROMPTS prompts)
#     | student SFT on them | that + the same GRPO
# (b) cold start, Qwen2.5-Coder-0.5B-Instruct (configs/coldstart.yaml): a $COLD_N-example long
#     chain-of-thought set | SFT on the base model | GRPO with the teacher's recipe (big-batch,
#     $COLD_GRPO_STEPS steps); "GRPO alone" is the teacher run itself (same recipe and steps; only
#     the micro-batch split differs), plus an eval of the untrained base model.
# Every model is evaluated by the same command (configs/default.yaml's held-out test split,
# greedy, 256 new tokens) into <run dir>/eval/. Run directories: runs/$PREFIX-*; data: runs/$PREFIX-data/.
#
# Outputs: logs/<step>.log (each step's output), logs/status.txt (one line per step:
# ok / done (before) / FAIL / TIMEOUT / skip, with seconds), logs/beyond_zero.md (the two tables,
# scripts/beyond_zero_table.py). A failed step skips only the steps that need its output.
# Running the script again skips steps whose output exists and resumes unfinished runs.
#
# Settings (environment):
#   AHAZERO             the command (default: python3 -m ahazero)
#   PYTHON              runs the table script (default: python3)
#   PARALLEL=1          run the two comparisons side by side (default); 0: one after the other
#   PARTS="distill coldstart"  the comparisons to run (default both; e.g. PARTS=distill)
#   TEACHER_WAIT=720    seconds to wait for the teacher's final model; POLL=10
#   DEADLINE=840        seconds: no training, sampling or wait runs past it; each ends EVAL_RESERVE=90 s
#                       before it, so that the evals after it (never cut) still fit. Per-step timeouts:
#                       T_COLD_GRPO=600 T_STUDENT_GRPO=360 T_SFT=300 T_SAMPLE=420 T_EVAL=300
#   STUDENT_GRPO_STEPS=15  COLD_GRPO_STEPS=20  TEACHER_PROMPTS=300  COLD_N=300  MICRO=16
#   PREFIX=bz           run names: runs/bz-student-grpo, ...; LOG_DIR=logs
#   SMOKE=1             CPU dry run: the tiny model for student and base, 2 steps, 4 eval problems
set -u -o pipefail

ORIG_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
TEACHER=${1:-runs/big-batch/model}
if [[ $TEACHER != /* && ! -e $TEACHER && -e $ORIG_PWD/$TEACHER ]]; then TEACHER=$ORIG_PWD/$TEACHER; fi
TEACHER=${TEACHER%/}
TEACHER_RUN=$(dirname "$TEACHER")   # GRPO alone for the cold-start comparison; its eval goes to $TEACHER_RUN/eval

read -r -a AZ <<< "${AHAZERO:-python3 -m ahazero}"
PYTHON=${PYTHON:-python3}
SMOKE=${SMOKE:-0}
PARALLEL=${PARALLEL:-1}
PARTS=${PARTS:-distill coldstart}
for part in $PARTS; do
  [[ $part == distill || $part == coldstart ]] || { echo "PARTS: unknown part '$part' (choose from: distill coldstart)" >&2; exit 2; }
done
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
TEACHER_WAIT=${TEACHER_WAIT:-720}
POLL=${POLL:-10}
PREFIX=${PREFIX:-bz}
LOG_DIR=${LOG_DIR:-logs}
RUNS=runs
DATA=$RUNS/$PREFIX-data

STUDENT=smollm2-135m-instruct
BASE05=qwen2.5-coder-0.5b-instruct
STUDENT_GRPO_STEPS=${STUDENT_GRPO_STEPS:-15}   # SmolLM2 ~4x a 0.5B step (~7 s / 512): ~30 s, the SFT's time
COLD_GRPO_STEPS=${COLD_GRPO_STEPS:-20}         # the big-batch preset's 20, as the teacher run
TEACHER_PROMPTS=${TEACHER_PROMPTS:-300}
COLD_N=${COLD_N:-300}
COMPLETIONS=512                                 # per optimizer step, as the big-batch preset
MICRO=${MICRO:-16}
SAMPLE_N=8
EVAL=(--batch-size 200 --max-new-tokens 256)
GRPO_X=() SFT_X=() SAMPLE_X=()
# timeouts (s) of each kind of step
T_EVAL=${T_EVAL:-300} T_SFT=${T_SFT:-300} T_SAMPLE=${T_SAMPLE:-420}
T_STUDENT_GRPO=${T_STUDENT_GRPO:-360} T_COLD_GRPO=${T_COLD_GRPO:-600}
# the whole run: no training, sampling or teacher wait goes on past DEADLINE seconds from the start,
# and each leaves EVAL_RESERVE seconds before it for the evals after it (evals are not cut)
DEADLINE=${DEADLINE:-840} EVAL_RESERVE=${EVAL_RESERVE:-90}
START_EPOCH=$(date +%s)

if [[ $SMOKE == 1 ]]; then   # the same commands at toy size, on a CPU with the tiny random model
  STUDENT=tiny BASE05=tiny
  STUDENT_GRPO_STEPS=2 COLD_GRPO_STEPS=2 TEACHER_PROMPTS=4 COLD_N=8 COMPLETIONS=8 MICRO=4 SAMPLE_N=2
  EVAL=(--batch-size 4 --max-new-tokens 16 --limit 4)
  GRPO_X=(grpo.num_generations=4 grpo.max_completion_length=16 grpo.save_steps=1)
  SFT_X=(sft.max_steps=2 sft.per_device_train_batch_size=4)
  SAMPLE_X=(grpo.max_completion_length=16)
fi
GRPO_BATCH=(--preset big-batch "grpo.per_device_train_batch_size=$MICRO"
            "grpo.gradient_accumulation_steps=$((COMPLETIONS / MICRO))" grpo.save_total_limit=1)

mkdir -p "$LOG_DIR" "$DATA"
STATUS=$LOG_DIR/status.txt

# ---------------------------------------------------------------------------------------------
source scripts/gpu_steps.sh   # status, run_step, skip, done_before, is_model, on_signal

left() { echo $((DEADLINE - ($(date +%s) - START_EPOCH))); }

capped() {  # capped LIMIT: LIMIT, or less so that the step ends EVAL_RESERVE s before the deadline; fails under 30 s
  local room=$(($(left) - EVAL_RESERVE))
  (( room >= 30 )) || return 1
  echo $((room < $1 ? room : $1))
}
model_of() {  # the model a run left: its final model/, else its newest checkpoint (a cut-short run)
  if is_model "$1/model"; then echo "$1/model"; return 0; fi
  local ckpt
  ckpt=$(ls -d "$1"/checkpoints/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -n 1)
  if [[ -n $ckpt ]] && is_model "$ckpt"; then echo "$ckpt"; return 0; fi
  return 1
}

resume_if_started() { [[ -d $1 ]] && echo --resume; }

tag_of() {  # the file name `ahazero eval --model MODEL` gives its results (ahazero.evaluate._path_tag)
  local m=${1%/} base
  base=$(basename "$m")
  if [[ -d $m && $base == model ]]; then echo "$(basename "$(dirname "$m")")-final"
  elif [[ -d $m && $base == checkpoint-* ]]; then echo "$(basename "$(dirname "$(dirname "$m")")")-step-${base#checkpoint-}"
  else echo "${base//./_}"
  fi
}

evaluate() {  # evaluate STEP RUN_DIR MODEL: the one eval command, results in RUN_DIR/eval/<tag>.json
  local step=$1 run=$2 model=$3 result
  result=$run/eval/$(tag_of "$model").json
  if [[ -f $result ]]; then done_before "$step" "$result"; return 0; fi
  run_step "$step" "$T_EVAL" eval configs/default.yaml --model "$model" --out "$run/eval" "${EVAL[@]}" "name=$PREFIX-eval"
}

eval_run() {  # eval_run STEP RUN_DIR: evaluate what the run left (final model, else its newest checkpoint)
  local model
  model=$(model_of "$2") || { skip "$1" "no model in $2"; return 1; }
  evaluate "$1" "$2" "$model"
}

grpo() {  # grpo STEP CONFIG RUN_NAME MODEL STEPS TIMEOUT
  local step=$1 config=$2 name=$3 model=$4 steps=$5 limit=$6
  if is_model "$RUNS/$name/model"; then done_before "$step" "$RUNS/$name/model"; return 0; fi
  limit=$(capped "$limit") || { skip "$step" "past the deadline ($(left) s left)"; return 1; }
  run_step "$step" "$limit" train "$config" $(resume_if_started "$RUNS/$name") "${GRPO_BATCH[@]}" 'stages=[]' \
    "name=$name" "model.name_or_path=$model" "grpo.max_steps=$steps" "${GRPO_X[@]}"
}

sft() {  # sft STEP CONFIG RUN_NAME MODEL DATA
  local step=$1 config=$2 name=$3 model=$4 data=$5
  if is_model "$RUNS/$name/model"; then done_before "$step" "$RUNS/$name/model"; return 0; fi
  [[ -s $data ]] || { skip "$step" "no data: $data"; return 1; }
  local limit
  limit=$(capped "$T_SFT") || { skip "$step" "past the deadline ($(left) s left)"; return 1; }
  run_step "$step" "$limit" sft "$config" $(resume_if_started "$RUNS/$name") 'stages=[]' "name=$name" \
    "model.name_or_path=$model" "sft.data=$data" sft.save_total_limit=1 "${SFT_X[@]}"
}

wait_teacher() {  # wait_teacher STEP: poll for the teacher's final model
  local step=$1 start=$SECONDS
  until is_model "$TEACHER"; do
    if (( SECONDS - start >= TEACHER_WAIT || $(left) <= EVAL_RESERVE )); then
      status "$step" TIMEOUT "$((SECONDS - start))" "no final model at $TEACHER after $((SECONDS - start))s"
      return 1
    fi
    sleep "$POLL"
  done
  status "$step" ok "$((SECONDS - start))" "$TEACHER"
}

# (a) distillation -----------------------------------------------------------------------------
distill() {
  local s=$RUNS/$PREFIX-student
  evaluate d1-student-base-eval "$s-base" "$STUDENT"
  grpo d2-student-grpo configs/distill-grpo.yaml "$PREFIX-student-grpo" "$STUDENT" "$STUDENT_GRPO_STEPS" "$T_STUDENT_GRPO"
  eval_run d3-student-grpo-eval "$s-grpo"
  wait_teacher d4-teacher-wait || { skip d5-teacher-sample "no teacher"; return 1; }
  if [[ -s $DATA/teacher.jsonl ]]; then done_before d5-teacher-sample "$DATA/teacher.jsonl"
  else
    local limit
    limit=$(capped "$T_SAMPLE") || { skip d5-teacher-sample "past the deadline ($(left) s left)"; return 1; }
    run_step d5-teacher-sample "$limit" sample configs/distill-sft.yaml 'stages=[]' "name=$PREFIX-teacher-sample" \
      --model "$TEACHER" --split train --n "$SAMPLE_N" --prompts "$TEACHER_PROMPTS" --max-per-prompt 2 \
      --out "$DATA/teacher.jsonl" "${SAMPLE_X[@]}" || return 1
  fi
  sft d6-student-sft configs/distill-sft.yaml "$PREFIX-student-sft" "$STUDENT" "$DATA/teacher.jsonl"
  eval_run d7-student-sft-eval "$s-sft" || { skip d8-student-sft-grpo "no SFT model"; return 1; }
  grpo d8-student-sft-grpo configs/distill-sft.yaml "$PREFIX-student-sft-grpo" "$(model_of "$s-sft")" \
    "$STUDENT_GRPO_STEPS" "$T_STUDENT_GRPO"
  eval_run d9-student-sft-grpo-eval "$s-sft-grpo"
}

# (b) cold start -------------------------------------------------------------------------------
coldstart() {
  local c=$RUNS/$PREFIX-cold
  if [[ -s $DATA/coldstart.jsonl ]]; then done_before c1-coldstart-set "$DATA/coldstart.jsonl"
  else run_step c1-coldstart-set 120 coldstart configs/coldstart.yaml --n "$COLD_N" --out "$DATA/coldstart.jsonl"
  fi
  if sft c2-cold-sft configs/coldstart.yaml "$PREFIX-cold-sft" "$BASE05" "$DATA/coldstart.jsonl" \
     || model_of "$c-sft" > /dev/null; then
    eval_run c3-cold-sft-eval "$c-sft"
    grpo c4-cold-grpo configs/coldstart.yaml "$PREFIX-cold-grpo" "$(model_of "$c-sft")" "$COLD_GRPO_STEPS" "$T_COLD_GRPO"
    eval_run c5-cold-grpo-eval "$c-grpo"
  fi
  if wait_teacher c6-teacher-wait; then
    evaluate c7-grpo-alone-eval "$TEACHER_RUN" "$TEACHER"
  fi
  evaluate c8-base-eval "$RUNS/$PREFIX-base" "$BASE05"
}

# ---------------------------------------------------------------------------------------------
echo "=== $(date '+%F %T') gpu_beyond_zero.sh teacher=$TEACHER smoke=$SMOKE parallel=$PARALLEL prefix=$PREFIX" >> "$STATUS"
echo "status: $STATUS, logs: $LOG_DIR/<step>.log, teacher: $TEACHER"
START=$SECONDS
if ! has_part coldstart; then
  distill
elif ! has_part distill; then
  coldstart
elif [[ $PARALLEL == 1 ]]; then
  ( trap '[[ -n $CHILD ]] && kill -TERM "$CHILD" 2> /dev/null; exit 143' TERM; coldstart ) &
  OTHER_PID=$!
  distill
  wait "$OTHER_PID"
else
  coldstart
  distill
fi

"$PYTHON" scripts/beyond_zero_table.py --runs "$RUNS" --prefix "$PREFIX" --teacher-run "$TEACHER_RUN" \
  --status "$STATUS" --out "$LOG_DIR/beyond_zero.md" > "$LOG_DIR/table.log" 2>&1
rc=$?
if (( rc == 0 )); then status table ok 0 "$LOG_DIR/beyond_zero.md"; else status table FAIL 0 "rc=$rc, see $LOG_DIR/table.log"; fi
echo "=== done in $((SECONDS - START)) s" | tee -a "$STATUS"
cat "$LOG_DIR/beyond_zero.md" 2>/dev/null
