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
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install_anvil.sh: '$tool' not found: install Node.js 20 or newer (with npm) to benchmark against Anvil" >&2
    exit 1
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "install_anvil.sh: Node.js $(node --version) is too old for $PACKAGE@$ANVIL_VERSION (need 20 or newer)" >&2
  exit 1
fi

mkdir -p "$target"
target="$(cd "$target" && pwd)"
cd "$target"

installed="$(node -p "try { require('./node_modules/$PACKAGE/package.json').version } catch (e) { '' }" 2>/dev/null || true)"
if [ "$installed" != "$ANVIL_VERSION" ]; then
  if [ ! -f package.json ]; then
    cat > package.json <<'JSON'
{
  "name": "openledger-bench-peer-anvil",
  "private": true,
  "description": "Peer for `openledger bench chain`; installed by bench/peers/install_anvil.sh, git-ignored."
}
JSON
  fi
  echo "install_anvil.sh: npm install $PACKAGE@$ANVIL_VERSION into $target" >&2
  if ! npm install --no-audit --no-fund --save-exact "$PACKAGE@$ANVIL_VERSION" >&2; then
    echo "install_anvil.sh: npm install failed (no network or registry access?)" >&2
    exit 1
  fi
else
  echo "install_anvil.sh: $PACKAGE@$ANVIL_VERSION already installed in $target" >&2
fi

bin="$target/node_modules/$PACKAGE/bin/anvil"
chmod +x "$bin" 2>/dev/null || true
if ! "$bin" --version >&2; then
  echo "install_anvil.sh: $bin does not run" >&2
  exit 1
fi
echo "install_anvil.sh: ready: $bin" >&2
