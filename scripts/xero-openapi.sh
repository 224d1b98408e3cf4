#!/usr/bin/env bash
# Xero's official OpenAPI files: where they come from and whether ours are those.
#
# Upstream: https://github.com/XeroAPI/Xero-OpenAPI at commit
# e952d0bda3628facbf7afc5990ad6a0e7e77bd1e (2026-07-13, spec version 16.1.0), MIT licence.
# They are not copied into this repository: tests read them from $XERO_OPENAPI_DIR, which
# defaults to ../shared/xero-openapi beside the checkout.
#
#   scripts/xero-openapi.sh verify   check the files against the pinned checksums
#   scripts/xero-openapi.sh where    print the directory the tests will read
set -euo pipefail
cd "$(dirname "$0")/.."

UPSTREAM_REPO="XeroAPI/Xero-OpenAPI"
UPSTREAM_COMMIT="e952d0bda3628facbf7afc5990ad6a0e7e77bd1e"
dir="${XERO_OPENAPI_DIR:-../shared/xero-openapi}"

case "${1:-verify}" in
  where)
    echo "$dir"
    ;;
  verify)
    if [ ! -d "$dir" ]; then
      echo "Xero's OpenAPI files are not at $dir." >&2
      echo "Fetch $UPSTREAM_REPO at $UPSTREAM_COMMIT and point XERO_OPENAPI_DIR at its root." >&2
      exit 1
    fi
    (cd "$dir" && sha256sum --check --quiet) <<'SUMS'
140f64f8e6bd2d8524b8ffdbffd08589d417efa5466ba57bfa04939a69ff6db8  xero_accounting.yaml
d95f4204d8ec369dac2bb1ee6e6b8cfb88f845a09cbcba630475dd34c73cf2bd  xero-identity.yaml
822244b387a8e26ca948abd338cbee419b6167408ad615582802346587ed7eac  xero-webhooks.yaml
SUMS
    echo "Xero OpenAPI files in $dir match $UPSTREAM_REPO@${UPSTREAM_COMMIT:0:12}"
    ;;
  *)
    echo "usage: scripts/xero-openapi.sh [verify|where]" >&2
    exit 2
    ;;
esac
