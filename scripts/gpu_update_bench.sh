#!/usr/bin/env bash
# The update step on one GPU: its A/B, every preset's peak memory, the `fast` preset's learning run (~8 minutes).
#
#   scripts/gpu_update_bench.sh               # on the GPU machine, from anywhere in the checkout
#   SMOKE=1 scripts/gpu_update_bench.sh       # the same commands on the tiny offline model (CPU, minutes)
#
# Steps (each logs to logs/<step>.log and adds one line to logs/status.txt):
#   0-preflight  versions, GPU, the model in the cache, configs/default.yaml checked with --preset fast, and
#                `ahazero check --all-presets`: each preset's estimated peak memory on a CARD_GIB card
#   1-update-ab  `ahazero bench` at 64 prompts x 16 x 512 tokens with the fast-rollouts preset (the setting the
#                update was measured at before), 2 measured steps after 1 warm-up step; before each step's update
#                every variant computes it on the same completions: padded (TRL), sorted (update.sort_by_length),
#                packed (update.packing), shared (packing + update.share_prompts): update time (forward apart),
#                tokens, padding share, MFU, peak memory, speed-up and gradient difference against padded
#   2-memory     every preset at its defaults on configs/default.yaml, a 2-step run each: peak GiB allocated
#                (memory/peak_allocated_gib) beside the estimate of step 0
#   3-fast       the fast preset's learning run (train_runtime, held-out greedy pass@1 of the base model and the
#                final one, each step's update time) in runs/$NAME
#   4-summary    one table of all of it, in the log and in status.txt
# Exit code: 0 when every step finished, 1 when one failed (the others still run), 1 when the preflight fails.
#
# Settings (environment): AHAZERO (default "python3 -m ahazero"), PYTHON (python3), NAME (fast-update), WORK
# (where logs/, bench/ and runs/ go; default .), ONLY ("ab memory fast": the steps to run; the preflight and the
# summary always run), MEM_SECONDS (the memory step's budget; 420), CARD_GIB (80: the card the estimates are for), PRESETS (the
# presets of step 2; default: every preset `ahazero presets` lists, liger only when liger-kernel is installed).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source scripts/gpu_timed_steps.sh   # the checkout on PYTHONPATH; SMOKE, AHZ, PYTHON; elapsed, status, run_step

NAME=${NAME:-fast-update}
CONFIG=configs/default.yaml
CARD_GIB=${CARD_GIB:-80}
MODEL=qwen2.5-coder-0.5b-instruct
MODEL_OVR=()
BENCH_SHAPE=(--prompts 64 --generations 16 --max-tokens 512 --steps 2 --warmup 1)
MEM_OVR=(grpo.max_steps=2)
FAST_OVR=()
EVAL_OVR=()
CHECK_DEVICE=cuda
LIMITS=(300 "${MEM_SECONDS:-420}" 120 420)   # seconds: update-ab, memory (all presets), one memory run, fast run + evals
ONLY=${ONLY:-ab memory fast}
for part in $ONLY; do
    [[ $part =~ ^(ab|memory|fast)$ ]] || { echo "ONLY: unknown step '$part' (choose from: ab memory fast)" >&2; exit 2; }
done
wanted() { [[ " $ONLY " == *" $1 "* ]]; }
if [[ $SMOKE == 1 ]]; then  # the tiny random model, tiny batches; the same commands and keys
    WORK=${WORK:-runs/gpu-update-bench-smoke}
    MODEL=tiny
    # the CPU profile of configs/default.yaml applies too (8 completions a step, 2 steps); a step of 8 here
    MODEL_OVR=(model.name_or_path=tiny model.dtype=float32 task.num_test=8 grpo.generation_batch_size=8
               grpo.max_completion_length=8)
    BENCH_SHAPE=(--prompts 2 --generations 4 --max-tokens 8 --steps 1 --warmup 1)
    FAST_OVR=(grpo.per_device_train_batch_size=auto update.memory_gib=2)   # the CPU profile replaced 'auto'
    EVAL_OVR=(--limit 8)
    CHECK_DEVICE=cpu        # the CPU profile's batch, as the runs below use it (the estimates stay the GPU config's)
    LIMITS=(600 "${MEM_SECONDS:-1200}" 300 600)
fi
WORK=${WORK:-.}
LOGS=$WORK/logs
RUNS=$WORK/runs
mkdir -p "$LOGS" "$WORK/bench" "$RUNS"
KILL_AFTER=30

status "start: SMOKE=$SMOKE name=$NAME work=$WORK card=${CARD_GIB}GiB ahazero='${AHZ[*]}'"
FAILED=0

# ---- 0: preflight -------------------------------------------------------------------------------
{
    echo "git: $(git rev-parse --short HEAD 2>/dev/null) $(git status --porcelain 2>/dev/null | wc -l) changed files"
    "$PYTHON" -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
'transformers', transformers.__version__, 'trl', trl.__version__)" 2>&1
    "$PYTHON" -c "import liger_kernel; print('liger-kernel installed')" 2>/dev/null || echo "liger-kernel: not installed"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu \
        --format=csv 2>&1
} >> "$LOGS/0-preflight.log"
ok=1
run_step 0-preflight 300 "${AHZ[@]}" fetch-model "$MODEL" || ok=0
run_step 0-preflight 180 "${AHZ[@]}" check "$CONFIG" "${MODEL_OVR[@]}" --device "$CHECK_DEVICE" --preset fast \
    --card-gib "$CARD_GIB" || ok=0
run_step 0-preflight 180 "${AHZ[@]}" check "$CONFIG" "${MODEL_OVR[@]}" --device "$CHECK_DEVICE" --all-presets \
    --card-gib "$CARD_GIB" || ok=0
if [[ $ok == 1 ]]; then
    status "0-preflight: ok ($(grep -m1 '^torch' "$LOGS/0-preflight.log" || echo 'versions not read'); \
$(grep -m1 '^liger' "$LOGS/0-preflight.log"))"
else
    status "0-preflight: FAILED (see $LOGS/0-preflight.log); stopping"
    exit 1
fi
if [[ -z ${PRESETS:-} ]]; then
    PRESETS=$("${AHZ[@]}" presets 2>/dev/null | awk '/^[a-z]/ {print $1}' | tr '\n' ' ')
    grep -q "liger-kernel installed" "$LOGS/0-preflight.log" || PRESETS=${PRESETS/liger /}
fi

# ---- 1: the update's A/B ------------------------------------------------------------------------
AB_JSON=$WORK/bench/update-ab.json
if wanted ab; then
    if run_step 1-update-ab "${LIMITS[0]}" "${AHZ[@]}" bench "$CONFIG" "${MODEL_OVR[@]}" --backends "" \
            --presets fast-rollouts "${BENCH_SHAPE[@]}" --update-variants padded,sorted,packed,shared --out "$AB_JSON" --overwrite; then
        status "1-update-ab: ok in ${STEP_SECONDS}s ($AB_JSON)"
    else
        rc=$?
        FAILED=1
        status "1-update-ab: FAILED (exit $rc, see $LOGS/1-update-ab.log)"
    fi
fi

# ---- 2: every preset's peak memory --------------------------------------------------------------
if wanted memory; then
    MEM_START=$(date +%s)
    for preset in $PRESETS; do
        if (( $(date +%s) - MEM_START > LIMITS[1] )); then
            status "2-memory: $preset skipped (the step's ${LIMITS[1]}s are spent)"
            continue
        fi
        run_dir=$RUNS/mem-$preset
        rm -rf "$run_dir"
        if run_step 2-memory "${LIMITS[2]}" "${AHZ[@]}" train "$CONFIG" --preset "$preset" "${MODEL_OVR[@]}" \
                "${MEM_OVR[@]}" name="mem-$preset" output_root="$RUNS" grpo.save_steps=1000 max_train_seconds=null \
                "logging.report_to=[none]"; then
            status "2-memory: $preset ok in ${STEP_SECONDS}s"
        else
            rc=$?
            FAILED=1
            status "2-memory: $preset FAILED (exit $rc, see $LOGS/2-memory.log)"
        fi
    done
fi

# ---- 3: the fast preset's learning run ----------------------------------------------------------
if wanted fast; then
    FAST_DIR=$RUNS/$NAME
    rm -rf "$FAST_DIR"
    RUN_OVR=(name="$NAME" output_root="$RUNS" "${MODEL_OVR[@]}")
    if run_step 3-fast "${LIMITS[3]}" "${AHZ[@]}" train "$CONFIG" --preset fast "${RUN_OVR[@]}" "${FAST_OVR[@]}" \
            && run_step 3-fast 300 "${AHZ[@]}" eval "$CONFIG" "${RUN_OVR[@]}" --model base --batch-size 200 "${EVAL_OVR[@]}" \
            && run_step 3-fast 300 "${AHZ[@]}" eval "$CONFIG" "${RUN_OVR[@]}" --model final --batch-size 200 \
                "${EVAL_OVR[@]}"; then
        status "3-fast: ok ($FAST_DIR)"
    else
        rc=$?
        FAILED=1
        status "3-fast: FAILED (exit $rc, see $LOGS/3-fast.log)"
    fi
fi

# ---- 4: summary ---------------------------------------------------------------------------------
"$PYTHON" - "$AB_JSON" "$RUNS" "$NAME" "$LOGS/0-preflight.log" "$PRESETS" <<'EOF' > "$LOGS/4-summary.log" 2>&1
import json, re, sys
from pathlib import Path

ab_json, runs, name, preflight, presets = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split()
num = lambda v, f="{:.2f}": "-" if v is None else f.format(v)


def metrics(run):
    path = runs / run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


print("update A/B (the same completions, before each step's update):")
try:
    report = json.load(open(ab_json))
    for case in report["cases"]:
        if case["status"] != "ok":
            print(f"  {case['case']}: {case['status']}")
            continue
        s = case["summary"]
        print(f"  {case['case']}: step {num(s['step_seconds'])} s, generation {num(s['generation_seconds'])} s, "
              f"update {num(s.get('update_seconds'))} s (MFU {num(s.get('update_mfu_pct'), '{:.1f}')}%), "
              f"{num(s.get('tokens_per_second'), '{:,.0f}')} generated tok/s; peak {num(s.get('peak_allocated_gib'), '{:.1f}')} GiB")
        for variant, v in case.get("update_variants", {}).items():
            if v.get("status") != "ok":
                print(f"    {variant:7s} {v.get('status')}")
                continue
            print(f"    {variant:7s} update {num(v['update_seconds'])} s (forward {num(v['update_forward_seconds'])}), "
                  f"{v['update_tokens']:,.0f} tokens/step, padding {100 * (v['update_padding_share'] or 0):.1f}%, "
                  f"MFU {num(v.get('update_mfu_pct'), '{:.1f}')}%, peak {num(v.get('peak_allocated_gib'), '{:.1f}')} GiB, "
                  f"speed-up {num(v.get('speedup'))}, grad diff {v.get('grad_rel_diff')}")
except (OSError, ValueError, KeyError) as err:
    print(f"  no A/B report ({type(err).__name__}: {err})")

estimates = {}
for line in Path(preflight).read_text().splitlines():
    m = re.match(r"# memory, (\S+): .*estimated peak ([\d.]+) GiB", line)
    if m:
        estimates[m.group(1)] = float(m.group(2))
print("peak memory per preset (2-step runs of configs/default.yaml; estimate from `ahazero check --all-presets`):")
for preset in presets:
    rows = metrics(f"mem-{preset}")
    peaks = [r["memory/peak_allocated_gib"] for r in rows if "memory/peak_allocated_gib" in r]
    updates = [r["timing/update_seconds"] for r in rows if "timing/update_seconds" in r]
    print(f"  {preset:24s} measured {num(max(peaks) if peaks else None, '{:.1f}')} GiB, estimated "
          f"{num(estimates.get(preset), '{:.1f}')} GiB; update {num(updates[-1] if updates else None)} s/step")

rows = metrics(name)
runtime = next((r["train_runtime"] for r in reversed(rows) if "train_runtime" in r), None)
steps = [r for r in rows if "timing/update_seconds" in r]
peaks = [r["memory/peak_allocated_gib"] for r in rows if "memory/peak_allocated_gib" in r]
updates = [r["timing/update_seconds"] for r in steps[1:]] or [r["timing/update_seconds"] for r in steps]
evals = {}
for tag in ("base", "final"):
    path = runs / name / "eval" / f"{tag}.json"
    evals[tag] = json.load(open(path)).get("pass@1") if path.is_file() else None
gain = (evals["final"] - evals["base"]) * 100 if None not in evals.values() else None
print(f"fast preset ({name}): {len(steps)} steps, train_runtime {num(runtime, '{:.1f}')} s, held-out pass@1 "
      f"{num(evals['base'], '{:.1%}')} -> {num(evals['final'], '{:.1%}')} ({num(gain, '{:+.1f}')} points); peak "
      f"{num(max(peaks) if peaks else None, '{:.1f}')} GiB; update {num(sum(updates) / len(updates) if updates else None)}"
      f" s/step after the first; targets: +30 points (gain {num(gain, '{:+.1f}')}), <= 40 s "
      f"({num(runtime, '{:.1f}')}), <= 75 GiB ({num(max(peaks) if peaks else None, '{:.1f}')})")
EOF
tee -a "$LOGS/status.txt" < "$LOGS/4-summary.log"
command -v nvidia-smi > /dev/null && nvidia-smi >> "$LOGS/4-summary.log" 2>&1
status "done in $(elapsed)s"
exit "$FAILED"
