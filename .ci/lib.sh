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

# A build that must not use npm's nodedir nor reach any Node download site: the addon is Node-API
# (package.json binary.napi_versions), so cmake-js takes the headers from the node-api-headers
# package. The user npm config (which may set nodedir) is ignored and any HTTP(S) goes nowhere.
nodedir_free() {
  env -u npm_config_nodedir -u NPM_CONFIG_NODEDIR NPM_CONFIG_USERCONFIG=/dev/null \
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
    no_proxy= NO_PROXY= "$@"
}
