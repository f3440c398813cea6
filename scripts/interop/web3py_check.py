#!/usr/bin/env python3
"""Drive an OpenLedger dev node with web3.py, unchanged, as a dapp would.

Run by hand (web3.py is not a dependency of the product):
    python3 -m venv .venv && .venv/bin/pip install 'web3==7.*'
    openledger up --instant --reset &        # or: cargo run --release -- up --instant --reset
    .venv/bin/python scripts/interop/web3py_check.py [http://127.0.0.1:8545]
Exits non-zero on the first mismatch.
"""
import sys

from web3 import Web3
from web3.exceptions import ContractCustomError, Web3RPCError

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8545"
w3 = Web3(Web3.HTTPProvider(url))
assert w3.is_connected(), f"no node at {url}"
assert w3.eth.chain_id == 31337, w3.eth.chain_id

# The first two accounts of the standard test mnemonic.
a = w3.eth.account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
b = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
print("block", w3.eth.block_number, "balance", w3.from_wei(w3.eth.get_balance(a.address), "ether"), "OPEN")

# 1. A plain EIP-1559 transfer, fees filled by web3.py from eth_feeHistory / eth_maxPriorityFeePerGas.
before = w3.eth.get_balance(b)
tx = {
    "to": b,
    "value": w3.to_wei(1, "ether"),
    "nonce": w3.eth.get_transaction_count(a.address, "pending"),
    "chainId": 31337,
    "gas": 21000,
    "maxFeePerGas": w3.eth.gas_price * 2,
    "maxPriorityFeePerGas": w3.eth.max_priority_fee,
}
h = w3.eth.send_raw_transaction(a.sign_transaction(tx).raw_transaction)
r = w3.eth.wait_for_transaction_receipt(h, timeout=30)
assert r.status == 1, r
assert w3.eth.get_balance(b) == before + w3.to_wei(1, "ether")
block = w3.eth.get_block(r.blockNumber, full_transactions=True)
assert block.transactions[r.transactionIndex]["hash"] == h
print("transfer ok in block", r.blockNumber)

# 2. The bank system contract through its ABI, logs through eth_getLogs.
BANK_ABI = [
    {"type": "function", "name": "balanceOf", "stateMutability": "view", "inputs": [{"name": "account", "type": "address"}], "outputs": [{"type": "uint256"}]},
    {"type": "function", "name": "symbol", "stateMutability": "view", "inputs": [], "outputs": [{"type": "string"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [], "outputs": [{"type": "uint8"}]},
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable", "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}], "outputs": [{"type": "bool"}]},
    {"type": "event", "name": "Transfer", "anonymous": False, "inputs": [{"name": "from", "type": "address", "indexed": True}, {"name": "to", "type": "address", "indexed": True}, {"name": "value", "type": "uint256", "indexed": False}]},
]
bank = w3.eth.contract(address="0x0000000000000000000000000000000000001001", abi=BANK_ABI)
assert bank.functions.symbol().call() == "OPEN"
assert bank.functions.decimals().call() == 18
assert bank.functions.balanceOf(b).call() == w3.eth.get_balance(b)
assert len(w3.eth.get_code(bank.address)) > 0
t = bank.functions.transfer(b, 777).build_transaction({"from": a.address, "nonce": w3.eth.get_transaction_count(a.address, "pending")})
r = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(a.sign_transaction(t).raw_transaction), timeout=30)
assert r.status == 1
events = bank.events.Transfer().process_receipt(r)
assert events[0]["args"]["value"] == 777 and events[0]["args"]["to"] == b
logs = bank.events.Transfer().get_logs(from_block=0, argument_filters={"from": a.address})
assert any(l["transactionHash"] == r.transactionHash for l in logs)
print("bank.transfer ok, Transfer event found by get_logs")

# 3. A custom error: only governance may set parameters.
PARAMS_ABI = [
    {"type": "function", "name": "set", "stateMutability": "nonpayable", "inputs": [{"name": "name", "type": "string"}, {"name": "value", "type": "uint256"}], "outputs": []},
    {"type": "function", "name": "get", "stateMutability": "view", "inputs": [{"name": "name", "type": "string"}], "outputs": [{"type": "uint256"}]},
    {"type": "error", "name": "Unauthorized", "inputs": [{"name": "caller", "type": "address"}]},
]
params = w3.eth.contract(address="0x0000000000000000000000000000000000001002", abi=PARAMS_ABI)
assert params.functions.get("fee.treasury_bps").call() == 2000
try:
    params.functions.set("fee.treasury_bps", 1).call({"from": a.address})
    raise SystemExit("set by a non-governance caller did not revert")
except (ContractCustomError, Web3RPCError) as e:
    print("custom error as expected:", e)

# 4. Refusals come back with go-ethereum's messages.
try:
    w3.eth.send_raw_transaction(a.sign_transaction({**tx, "nonce": 0}).raw_transaction)
    raise SystemExit("a reused nonce was accepted")
except Web3RPCError as e:
    assert "nonce too low" in str(e), e
print("fee history:", w3.eth.fee_history(4, "latest", [50])["baseFeePerGas"])
print("web3.py interop: all checks passed")
