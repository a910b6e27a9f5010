#!/usr/bin/env bash
# The one command that runs every groupcast test (README: "Run the tests").
# Sets up what is missing (scripts/setup.sh), then runs the Rust tests (unit, wire, SigV4 checked
# by botocore, moto and stub peers, Lambda binaries under an emulated runtime API), the frontend
# channel helper's tests (clients/js, against the Rust rule), the Node isolation harness, and a
# `cargo lambda build` of every function.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup.sh
export PATH="$root/.venv/bin:$PATH"
export GROUPCAST_PYTHON="$root/.venv/bin/python"

echo "== cargo test (workspace) ($(date -u +%T))"
# Build every test and binary first, with the test feature set, so that the tests that render with
# the provisioner (the Node emulator, the JS engine's parity, the VTL differential, the harness)
# use this build instead of starting a `cargo build` with other features from inside a test.
cargo test --workspace --locked --no-run
export GROUPCAST_PROVISIONER="${CARGO_TARGET_DIR:-$root/target}/debug/provisioner"
cargo test --workspace --locked

echo "== frontend channel helper (clients/js) ($(date -u +%T))"
node --test clients/js/

echo "== isolation harness (node) ($(date -u +%T))"
npm test --prefix tests

echo "== cargo lambda build (release, x86_64) ($(date -u +%T))"
cargo lambda build --release --locked -p publisher -p authorizer -p iot-grant -p iot-authorizer
ls -l target/lambda/*/bootstrap
echo "== done ($(date -u +%T))"
