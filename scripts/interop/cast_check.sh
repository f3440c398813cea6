#!/usr/bin/env bash
# Deploy and use TestToken (contracts/out/TestToken.json) with Foundry's `cast`, as a
# developer would from a shell, against any dev node with the Hardhat/Anvil keys.
#
# Install cast (the npm package ships the binary; nothing goes into the repository):
#   mkdir -p /tmp/anvil && cd /tmp/anvil && npm init -y && npm install @foundry-rs/cast-linux-amd64@1.7.1
#   export CAST=/tmp/anvil/node_modules/@foundry-rs/cast-linux-amd64/bin/cast
#   (or `npm install @foundry-rs/cast`, whose bin/cast picks the platform's package)
#
# Run by hand:
#   openledger up --instant --reset &
#   scripts/interop/cast_check.sh [http://127.0.0.1:8545]
#
# Validated against Anvil:
#   mkdir -p /tmp/anvil && cd /tmp/anvil && npm install @foundry-rs/anvil-linux-amd64@1.7.1 @foundry-rs/cast-linux-amd64@1.7.1
#   /tmp/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --host 127.0.0.1 --port 18545 --chain-id 31337 &
#   CAST=/tmp/anvil/node_modules/@foundry-rs/cast-linux-amd64/bin/cast scripts/interop/cast_check.sh http://127.0.0.1:18545
#   kill <anvil's pid>
#
# Prints one line per passed step; exits non-zero with a message on the first mismatch.
set -euo pipefail

URL="${1:-http://127.0.0.1:8545}"
CAST="${CAST:-cast}"
KEY0=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
A=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
B=0x70997970C51812dc3A010C7d01b50e0d17dc79C8
ARTIFACT="$(dirname "$0")/../../contracts/out/TestToken.json"

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
command -v "$CAST" >/dev/null || fail "cast not found (set CAST=/path/to/cast; see the header of $0)"
[ -f "$ARTIFACT" ] || fail "$ARTIFACT missing (cd contracts && npm ci && node build.mjs)"
# The artifact's top-level "bytecode" and "deployedBytecode" lines (build.mjs writes one key a line).
field() { sed -n "s/^  \"$1\": \"\(0x[0-9a-fA-F]*\)\",\{0,1\}\$/\1/p" "$ARTIFACT"; }
BYTECODE="$(field bytecode)"
RUNTIME="$(field deployedBytecode)"
[ -n "$BYTECODE" ] && [ -n "$RUNTIME" ] || fail "no bytecode in $ARTIFACT"
# cast prints a uint as "1000 [1e3]": keep the number.
num() { awk '{print $1}'; }
# A receipt's status is "true" (cast 1.x) or "1 (success)" (older casts).
succeeded() { case "$("$CAST" receipt --rpc-url "$URL" "$1" status)" in true | 1* | 0x1) return 0 ;; *) return 1 ;; esac; }

[ "$("$CAST" chain-id --rpc-url "$URL")" = 31337 ] || fail "chain id is not 31337"
ok "connected to $URL ($("$CAST" rpc --rpc-url "$URL" web3_clientVersion))"

SUPPLY=1000000000000000000000000 # 1,000,000 tokens of 18 decimals
ARGS="$("$CAST" abi-encode "constructor(string,string,uint256)" "Cast Token" CT "$SUPPLY")"
TX="$("$CAST" send --rpc-url "$URL" --private-key "$KEY0" --async --create "${BYTECODE}${ARGS#0x}")"
succeeded "$TX" || fail "deployment $TX did not succeed"
TOKEN="$("$CAST" receipt --rpc-url "$URL" "$TX" contractAddress)"
[ -n "$TOKEN" ] || fail "deployment receipt has no contractAddress"
[ "$("$CAST" code --rpc-url "$URL" "$TOKEN")" = "$RUNTIME" ] || fail "eth_getCode($TOKEN) differs from deployedBytecode"
ok "cast send --create: TestToken at $TOKEN (receipt status and contractAddress), code = deployedBytecode"

[ "$("$CAST" call --rpc-url "$URL" "$TOKEN" "symbol()(string)")" = '"CT"' ] || fail "symbol()"
[ "$("$CAST" call --rpc-url "$URL" "$TOKEN" "balanceOf(address)(uint256)" "$A" | num)" = "$SUPPLY" ] || fail "balanceOf(deployer) != supply"
# OpenZeppelin 5 ERC20 keeps _totalSupply in slot 2.
[ "$("$CAST" to-dec "$("$CAST" storage --rpc-url "$URL" "$TOKEN" 2)")" = "$SUPPLY" ] || fail "storage slot 2 != totalSupply"
ok "cast call: symbol CT, balanceOf(deployer) = supply; cast storage slot 2 = totalSupply"

TX="$("$CAST" send --rpc-url "$URL" --private-key "$KEY0" --async "$TOKEN" "transfer(address,uint256)" "$B" 250)"
succeeded "$TX" || fail "transfer $TX did not succeed"
[ "$("$CAST" call --rpc-url "$URL" "$TOKEN" "balanceOf(address)(uint256)" "$B" | num)" = 250 ] || fail "balanceOf(B) != 250"
[ "$("$CAST" call --rpc-url "$URL" "$TOKEN" "balanceOf(address)(uint256)" "$A" | num)" = 999999999999999999999750 ] || fail "balanceOf(A) after transfer"
TOPIC="$("$CAST" keccak "Transfer(address,address,uint256)")"
"$CAST" receipt --rpc-url "$URL" "$TX" logs | grep -qi "${TOPIC}" || fail "no Transfer log in the transfer's receipt"
ok "cast send transfer: status 1, balances moved by 250, Transfer log in the receipt"
echo "all cast checks passed"
