# Shared by scripts/gpu_update_bench.sh and gpu_aha_sweep.sh (sourced, not run): their settings, the status line, a step under a limit.
#
#   cd "$(dirname "$0")/.." && source scripts/gpu_timed_steps.sh   # the checkout on PYTHONPATH; SMOKE, AHZ, PYTHON, START
#   status "1-bench: ok"                      # one line in $LOGS/status.txt (and on the terminal)
#   run_step 1-bench 300 cmd args...          # cmd's output to $LOGS/1-bench.log under `timeout`; its exit code;
#                                             # STEP_SECONDS holds how long it ran
# Environment: SMOKE (1: the tiny offline model), AHAZERO (default "python3 -m ahazero"), PYTHON (python3),
# KILL_AFTER (90: seconds between the TERM a step over its limit gets and a KILL).
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"   # a checkout runs without being installed
export PYTHONUNBUFFERED=1
SMOKE=${SMOKE:-0}
read -r -a AHZ <<< "${AHAZERO:-python3 -m ahazero}"
PYTHON=${PYTHON:-python3}
START=${START:-$(date +%s)}
elapsed() { echo $(( $(date +%s) - START )); }
status() { echo "$(date '+%F %T') [+$(elapsed)s] $*" | tee -a "$LOGS/status.txt"; }

run_step() {
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s)
    { echo "# $(date '+%F %T') \$ $*"; } >> "$LOGS/$name.log"
    timeout --signal=TERM --kill-after="${KILL_AFTER:-90}" "$limit" "$@" >> "$LOGS/$name.log" 2>&1
    rc=$?
    STEP_SECONDS=$(( $(date +%s) - t0 ))
    [[ $rc == 124 ]] && echo "# timed out after ${limit}s" >> "$LOGS/$name.log"
    return "$rc"
}
