#!/usr/bin/env bash
# Renders the kustomize base and every overlay with the kustomize pinned in
# go.mod (go tool kustomize: no download at run time beyond the module cache),
# and fails on the first error. With OUT_DIR set, writes OUT_DIR/<name>.yaml.
#
#   deploy/render.sh               # check that everything renders
#   OUT_DIR=/tmp/k8s deploy/render.sh
#   go tool kustomize build deploy/k8s/overlays/prod | kubectl apply -f -
set -euo pipefail
cd "$(dirname "$0")/.."

dirs=(deploy/k8s/base deploy/k8s/overlays/*/)
for dir in "${dirs[@]}"; do
  dir=${dir%/}
  name=$(basename "$dir")
  out=$(go tool kustomize build "$dir") || { echo "render: $dir failed" >&2; exit 1; }
  kinds=$(grep -c '^kind: ' <<<"$out" || true)
  if [[ "$kinds" -eq 0 ]]; then
    echo "render: $dir rendered no objects" >&2
    exit 1
  fi
  if [[ -n "${OUT_DIR:-}" ]]; then
    mkdir -p "$OUT_DIR"
    printf '%s\n' "$out" >"$OUT_DIR/$name.yaml"
  fi
  echo "render: $dir: $kinds objects" >&2
done
