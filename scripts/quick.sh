#!/usr/bin/env bash
# The seconds-long checks a change wants before `make test`: no containers, no engine, no images.
#   scripts/quick.sh lint   yamllint, ansible-lint (production profile), ruff
#   scripts/quick.sh unit   the unit tests of the planners, modules, filters, scripts and docs (pytest tests/unit)
# `make test` runs both again, with everything else.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv
activate
case "${1:-}" in
  lint)
    yamllint --strict .
    rm -rf .ansible/collections/ansible_collections/onmetal
    ansible-lint --offline -q
    ruff check .
    ruff format --check .
    ;;
  unit)
    pytest -p no:cacheprovider -o console_output_style=classic tests/unit
    ;;
  *)
    echo "usage: scripts/quick.sh lint|unit" >&2
    exit 2
    ;;
esac
