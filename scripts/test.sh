#!/usr/bin/env bash
# Runs every test: the no_std build check, unit, simulation, interop and network-namespace
# tests. The namespace tests need root (they create and delete their own namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== no_std build check (ferrowg-proto without std, panic=abort staticlib)"
cargo build --release --manifest-path nostd-check/Cargo.toml

echo "== all workspace tests (benches run once each, in test mode)"
cargo test --workspace --all-targets

echo "== the hub's store and API tests again, on PostgreSQL (a private server per test process)"
FERROWG_TEST_DATABASE=postgres cargo test -p ferrowg-hub-store -p ferrowg-hub
