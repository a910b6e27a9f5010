#!/usr/bin/env bash
# Installs what groupcast's tests need beside the Rust toolchain, idempotently and pinned:
# the Python peers (moto server, botocore, cargo-lambda + zig) in .venv, and the Node harness's
# packages. Debian packages (none are required by the tests) are .ci/run's business.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Re-install only when the pins changed since the last install.
if ! cmp -s tests/requirements.txt .venv/.installed-requirements 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt .venv/.installed-requirements
fi

# Every package directory with a lockfile gets exactly its locked packages.
for dir in tests; do
  if [ -f "$dir/package-lock.json" ]; then
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json" 2>/dev/null; then
      npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    fi
  fi
done
