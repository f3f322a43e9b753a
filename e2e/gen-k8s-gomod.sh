#!/usr/bin/env bash
# Regenerates e2e/k8s-bins/go.mod for K8S_VERSION: k8s.io/kubernetes cannot be required as is
# because its go.mod replaces the staging modules with local paths; we point each at its
# published v0.X.Y instead. Run after changing K8S_VERSION in lib.sh, then commit the result.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
goline=$(grep -m1 '^go ' "$mod")
cd "$E2E_DIR/k8s-bins"
{
  echo "module kstreams.dev/e2e/k8s-bins"
  echo
  echo "$goline"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$STAGING_VERSION"'#p' "$mod"
  echo ")"
} >go.mod
go mod tidy
echo "generated $(pwd)/go.mod ($(grep -c '=>' go.mod) staging replaces)"
