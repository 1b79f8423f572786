#!/usr/bin/env bash
# Build antispoof_ros with colcon in a throw-away workspace against the ROS 2 wheels in .venv,
# as on the rig, then `colcon test` (CMakeLists.txt: a quick pytest subset run against the
# install tree, ament_flake8, ament_pep257) and `colcon test-result --verbose`.
# Fails when the build fails, when any test fails, or when no test ran.
# Usage: tools/colcon_check.sh   (after tools/setup_venv.sh; `make test` runs both)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
ws="$(mktemp -d "${TMPDIR:-/tmp}/antispoof-colcon.XXXXXX")"
trap 'rm -rf "$ws"' EXIT
log() { printf '[colcon] %s\n' "$*"; }

# The venv is the underlay: its share/ holds the ament CMake packages of the wheels.
export PATH="$venv/bin:$PATH"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
# colcon (and the tests it runs) never see this user's or this shell's colcon defaults.
export COLCON_HOME="$ws/colcon_home"
unset COLCON_DEFAULTS_FILE
colcon=(colcon --log-base "$ws/log")
bases=(--build-base "$ws/build" --install-base "$ws/install")

# The package is seen through a link: CMake refuses exported include paths under the source
# folder, and .venv (numpy's headers) lies under the real one.
mkdir "$ws/src"
ln -s "$root" "$ws/src/antispoof_ros"

start=$(date +%s)
# output goes to files, shown on failure (colcon warns that the venv has no local_setup.*)
"${colcon[@]}" build --base-paths "$ws/src" "${bases[@]}" \
  --cmake-args -G Ninja -Wno-dev -DPython3_EXECUTABLE="$venv/bin/python" \
  -DBUILD_TESTING=ON > "$ws/build.txt" 2>&1 \
  || { tail -n 40 "$ws/build.txt"; log "colcon build failed"; exit 1; }
built=$(date +%s)
log "built in $(( built - start )) s"

"${colcon[@]}" test --base-paths "$ws/src" "${bases[@]}" \
  > "$ws/test.txt" 2>&1 \
  || { tail -n 40 "$ws/test.txt"; log "colcon test failed to run"; exit 1; }
log "tested in $(( $(date +%s) - built )) s"
# ctest's line per test (name, result, seconds), for where the time goes
grep -E '^ *[0-9]+/[0-9]+ Test' "$ws/test.txt" || true

# test-result exits 1 on any failure or error; its last line is the summary
"${colcon[@]}" test-result --test-result-base "$ws/build" --verbose | tee "$ws/result.txt" \
  || { log "colcon test failed"; exit 1; }
summary=$(tail -n 1 "$ws/result.txt")
if [[ ! "$summary" =~ ^Summary:\ ([0-9]+)\ tests ]] || (( BASH_REMATCH[1] == 0 )); then
  log "colcon test ran no test ($summary)"
  exit 1
fi
log "ok in $(( $(date +%s) - start )) s"
