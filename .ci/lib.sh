# Helpers for the CI legs (sourced).
# BTM_CI_LOCK=/path/to/lockfile: run the CPU-heavy steps (builds, tests) under `flock` on it, for a
# machine shared with other jobs; unset in CI.
locked() {
  if [ -n "${BTM_CI_LOCK:-}" ]; then flock "$BTM_CI_LOCK" "$@"; else "$@"; fi
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
