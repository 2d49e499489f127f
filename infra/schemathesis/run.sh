#!/usr/bin/env bash
# make schemathesis: fuzz the local stack against openapi.yaml with schemathesis (.venv).
#
#   infra/schemathesis/run.sh [driver flags] [-- schemathesis run flags]
#
# DynamoDB Local and the SES emulator come from `go run ./infra/local testenv` (in memory, free
# ports); the driver (infra/schemathesis/main.go) serves the gateway on a free port against
# them, seeds it with the staff token below, runs schemathesis and exits with its status.
# Driver flags: -max-examples N (default 30), -seed N, -checks LIST, -report-dir DIR,
# -fail-on-error-logs=false, -v (log every request). Exit status: non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
SCHEMATHESIS=${SCHEMATHESIS:-.venv/bin/schemathesis}
if [[ ! -x $SCHEMATHESIS ]]; then
  echo "run.sh: $SCHEMATHESIS is missing; run make deps (infra/requirements.txt pins it)" >&2
  exit 1
fi

# Build the driver first, so its compile time does not count against the services' start-up.
bin=$(mktemp -d "${TMPDIR:-/tmp}/rollcall-schemathesis-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
"$GO" build -o "$bin/driver" ./infra/schemathesis

TOKEN=$("$GO" run ./infra/local token staff --admin)

"$GO" run ./infra/local testenv -- "$bin/driver" -schemathesis "$SCHEMATHESIS" -token "$TOKEN" "$@"
