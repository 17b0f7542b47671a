# Helpers for the CI legs (sourced).
# BTM_CI_LOCK=/path/to/lockfile: run the CPU-heavy steps (builds, tests) under `flock` on it, for a
# machine shared with other jobs; unset in CI.
# The seconds spent waiting for the lock are added up in $_lock_waits (a file) and reported by lock_waits.
_lock_waits=$(mktemp "${TMPDIR:-/tmp}/btm-ci-waits.XXXXXX")
locked() {
  if [ -z "${BTM_CI_LOCK:-}" ]; then "$@"; return; fi
  local t0; t0=$(date +%s)
  flock "$BTM_CI_LOCK" bash -c 'w=$(( $(date +%s) - $1 )); echo "$w" >>"$2"; echo "    (waited $w s for the CPU lock)"; shift 2; exec "$@"' _ "$t0" "$_lock_waits" "$@"
}
lock_waits() {
  [ -n "${BTM_CI_LOCK:-}" ] || return 0
  echo " (of which $(awk '{ s += $1 } END { print s + 0 }' "$_lock_waits") s waiting for the CPU lock $BTM_CI_LOCK)"
  rm -f "$_lock_waits"
}

# step NAME: prints a header and the time since the previous step.
_step_t0=$(date +%s)
_step_name=""
step() {
  local now; now=$(date +%s)
  [ -z "$_step_name" ] || echo "    ($_step_name: $(( now - _step_t0 )) s)"
  _step_name="$1"; _step_t0=$now
  echo "::: $1"
}
step_end() { step "done"; }
