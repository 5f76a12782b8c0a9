# shellcheck shell=bash
# The step machinery of the unattended GPU scripts (gpu_beyond_zero.sh, gpu_aha_reflect.sh); sourced, not run.
# The sourcing script sets AZ (the ahazero command, an array), LOG_DIR (where each step's log goes) and STATUS (the
# status file), and may set OTHER_PID (a background lane that a signal stops too).
#   status STEP VERDICT SECONDS [NOTE]   one line in $STATUS (and on stdout)
#   run_step STEP TIMEOUT_S ARGS...      `ahazero ARGS...` under timeout, output appended to $LOG_DIR/STEP.log;
#                                        status ok, TIMEOUT or FAIL (with the log's last line); returns its exit code
#   skip STEP WHY / done_before STEP WHAT   status skip (returns 1) / done
#   is_model DIR                         a saved model folder (a final model/ is renamed into place whole)

status() {
  local line
  line=$(printf '%s %-26s %-8s %5ss %s' "$(date +%H:%M:%S)" "$1" "$2" "$3" "${4:-}")
  echo "$line" >> "$STATUS"
  echo "$line"
}

run_step() {
  local step=$1 limit=$2; shift 2
  local log=$LOG_DIR/$step.log start=$SECONDS rc
  echo "+ ${AZ[*]} $*" >> "$log"
  timeout -k 30 "$limit" "${AZ[@]}" "$@" < /dev/null >> "$log" 2>&1 &
  CHILD=$!   # in the background, so that a signal to this script can stop it (on_signal)
  wait "$CHILD"
  rc=$?
  CHILD=
  local secs=$((SECONDS - start))
  if (( rc == 0 )); then status "$step" ok "$secs"
  elif (( rc == 124 || rc == 137 )); then status "$step" TIMEOUT "$secs" "after ${limit}s, see $log"
  else status "$step" FAIL "$secs" "rc=$rc: $(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-160)"
  fi
  return "$rc"
}

skip() { status "$1" skip 0 "$2"; return 1; }

done_before() { status "$1" done 0 "before: $2"; }

is_model() { [[ -f $1/config.json || -f $1/adapter_config.json ]]; }   # full weights or a LoRA adapter (as is_model_folder)

CHILD= OTHER_PID=
on_signal() {  # stop the running command (and the other lane), then exit
  [[ -n $CHILD ]] && kill -TERM "$CHILD" 2> /dev/null
  [[ -n $OTHER_PID ]] && kill -TERM "$OTHER_PID" 2> /dev/null
  echo "=== interrupted" >> "$STATUS"
  exit 130
}
trap on_signal INT TERM
