#!/usr/bin/env bash
# Install the peer of `openledger bench chain`: Hardhat's node (npm `hardhat`,
# its Rust EDR engine) into bench/.peers/hardhat (git-ignored), with a
# hardhat.config.js matching our dev chain. Idempotent: does nothing when the
# pinned version is already there. Never a dependency of the product.
#
#   bash bench/peers/install.sh [TARGET_DIR]
#
# The config reads OL_BENCH_MINING (instant | interval) and OL_BENCH_INTERVAL_MS
# (default 1000), which `openledger bench chain` sets for each run.
set -euo pipefail

HARDHAT_VERSION="2.29.1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-$here/../.peers/hardhat}"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install.sh: '$tool' not found: install Node.js 18 or newer (with npm) to benchmark against Hardhat" >&2
    exit 1
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 18 ]; then
  echo "install.sh: Node.js $(node --version) is too old for hardhat@$HARDHAT_VERSION (need 18 or newer)" >&2
  exit 1
fi

mkdir -p "$target"
target="$(cd "$target" && pwd)"
cd "$target"

installed="$(node -p "try { require('./node_modules/hardhat/package.json').version } catch (e) { '' }" 2>/dev/null || true)"
if [ "$installed" != "$HARDHAT_VERSION" ]; then
  if [ ! -f package.json ]; then
    cat > package.json <<'JSON'
{
  "name": "openledger-bench-peer-hardhat",
  "private": true,
  "description": "Peer for `openledger bench chain`; installed by bench/peers/install.sh, git-ignored."
}
JSON
  fi
  echo "install.sh: npm install hardhat@$HARDHAT_VERSION into $target" >&2
  if ! npm install --no-audit --no-fund --save-exact "hardhat@$HARDHAT_VERSION" >&2; then
    echo "install.sh: npm install failed (no network or registry access?)" >&2
    exit 1
  fi
else
  echo "install.sh: hardhat@$HARDHAT_VERSION already installed in $target" >&2
fi

# Written every time so that a change here reaches old installs.
cat > hardhat.config.js <<'JS'
// Written by bench/peers/install.sh for `openledger bench chain`.
// The same dev chain as `openledger up`: chain id 31337, the ten accounts of
// the standard test mnemonic (m/44'/60'/0'/0/i), 10,000 ETH each (Hardhat's
// default balance), initial base fee left at Hardhat's default (1 gwei).
const mode = process.env.OL_BENCH_MINING || "instant";
const interval = parseInt(process.env.OL_BENCH_INTERVAL_MS || "1000", 10);
if (mode !== "instant" && mode !== "interval") {
  throw new Error(`OL_BENCH_MINING must be instant or interval, not ${mode}`);
}

module.exports = {
  networks: {
    hardhat: {
      chainId: 31337,
      accounts: {
        mnemonic: "test test test test test test test test test test test junk",
        count: 10,
      },
      mining: mode === "interval" ? { auto: false, interval } : { auto: true, interval: 0 },
    },
  },
};
JS

echo "install.sh: ready: $target (hardhat $HARDHAT_VERSION)" >&2
