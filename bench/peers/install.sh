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

# shellcheck source=bench/peers/npm_peer.sh
. "$here/npm_peer.sh"
npm_peer_install install.sh hardhat "$HARDHAT_VERSION" 18 "$target"
target="$(pwd)"

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
