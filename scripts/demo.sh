#!/usr/bin/env bash
# The main job: installs what is missing, builds, then validates the shipped
# example themes, renders their flows and prints a summary of each theme.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target onestop-cli
bin=build/release/tools/onestop/onestop
out=build/demo
mkdir -p "$out"
status=0
for theme in examples/*/; do
  name=$(basename "$theme")
  echo "=== ${name} ==="
  "$bin" validate "$theme" || status=1
  "$bin" graph "$theme" --format svg -o "$out/${name}.svg" && echo "flow graph: $out/${name}.svg"
  "$bin" summary "$theme" || status=1
  echo
done
exit $status
