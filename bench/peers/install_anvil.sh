#!/usr/bin/env bash
# Install the second peer of `openledger bench chain`: Foundry's Anvil (Rust,
# revm), from npm `@foundry-rs/anvil-linux-amd64` (the package ships the
# binary), into bench/.peers/anvil (git-ignored). Idempotent: does nothing when
# the pinned version is already there. Never a dependency of the product.
#
#   bash bench/peers/install_anvil.sh [TARGET_DIR]
#
# The binary ends up at TARGET_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil;
# the bench starts it with --chain-id 31337 and Anvil's default mnemonic, which
# is Hardhat's and ours ("test test ... junk"), automine or --block-time.
set -euo pipefail

ANVIL_VERSION="1.7.1"
PACKAGE="@foundry-rs/anvil-linux-amd64"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-$here/../.peers/anvil}"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "install_anvil.sh: $PACKAGE is for Linux x86-64, this is $(uname -s)-$(uname -m)" >&2
  exit 1
fi
# shellcheck source=bench/peers/npm_peer.sh
. "$here/npm_peer.sh"
npm_peer_install install_anvil.sh "$PACKAGE" "$ANVIL_VERSION" 20 "$target"
target="$(pwd)"

bin="$target/node_modules/$PACKAGE/bin/anvil"
chmod +x "$bin" 2>/dev/null || true
if ! "$bin" --version >&2; then
  echo "install_anvil.sh: $bin does not run" >&2
  exit 1
fi
echo "install_anvil.sh: ready: $bin" >&2
