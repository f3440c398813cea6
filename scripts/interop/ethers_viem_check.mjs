// Drive an OpenLedger dev node with ethers v6 and viem v2, unchanged, as a dapp would.
//
// Run by hand (the libraries are not dependencies of the product):
//   mkdir -p /tmp/ethers-check && cd /tmp/ethers-check && npm init -y && npm install ethers@6 viem@2
//   openledger up --instant --reset &
//   NODE_PATH=/tmp/ethers-check/node_modules node scripts/interop/ethers_viem_check.mjs [http://127.0.0.1:8545]
// Exits non-zero on the first mismatch.
import { createRequire } from "node:module";
const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + "/" : import.meta.url);
const { ethers } = require("ethers");
const viem = require("viem");
const { privateKeyToAccount } = require("viem/accounts");

const url = process.argv[2] || "http://127.0.0.1:8545";
const fail = (m) => { console.error("FAIL:", m); process.exit(1); };
const KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const BANK = "0x0000000000000000000000000000000000001001";
const PARAMS = "0x0000000000000000000000000000000000001002";

// ethers: provider, wallet, transfer with fees filled by the library, contract call, events, custom error.
// cacheTimeout -1: ethers caches identical requests for 250 ms by default, which returns a stale
// pending nonce when blocks come faster than that (as with Hardhat automine).
const provider = new ethers.JsonRpcProvider(url, undefined, { staticNetwork: true, cacheTimeout: -1 });
const net = await provider.getNetwork();
if (net.chainId !== 31337n) fail(`chain id ${net.chainId}`);
const wallet = new ethers.Wallet(KEY0, provider);
const before = await provider.getBalance(B, await provider.getBlockNumber());
const tx = await wallet.sendTransaction({ to: B, value: ethers.parseEther("1") });
const rcpt = await tx.wait();
if (rcpt.status !== 1) fail("transfer status");
if ((await provider.getBalance(B, rcpt.blockNumber)) !== before + ethers.parseEther("1")) fail("balance after transfer");
console.log("ethers: transfer ok in block", rcpt.blockNumber);
const bank = new ethers.Contract(BANK, [
  "function symbol() view returns (string)",
  "function balanceOf(address) view returns (uint256)",
  "function transfer(address to, uint256 amount) returns (bool)",
  "event Transfer(address indexed from, address indexed to, uint256 value)",
], wallet);
if ((await bank.symbol()) !== "OPEN") fail("symbol");
const t = await bank.transfer(B, 777n);
const r2 = await t.wait();
const ev = r2.logs.map((l) => bank.interface.parseLog(l)).find((e) => e && e.name === "Transfer");
if (!ev || ev.args.value !== 777n) fail("Transfer event");
const found = await bank.queryFilter(bank.filters.Transfer(wallet.address), 0, "latest");
if (!found.some((e) => e.transactionHash === r2.hash)) fail("queryFilter");
console.log("ethers: bank.transfer ok, event found with queryFilter");
const params = new ethers.Contract(PARAMS, [
  "function set(string name, uint256 value)",
  "error Unauthorized(address caller)",
], wallet);
try {
  await params.set.staticCall("fee.treasury_bps", 1n);
  fail("set by a non-governance caller did not revert");
} catch (e) {
  if (e.revert?.name !== "Unauthorized") fail(`expected Unauthorized, got ${e.shortMessage || e}`);
  console.log("ethers: custom error decoded:", e.revert.name, e.revert.args[0]);
}
try {
  await wallet.sendTransaction({ to: B, value: 1n, nonce: 0 });
  fail("reused nonce accepted");
} catch (e) {
  if (e.code !== "NONCE_EXPIRED") fail(`expected NONCE_EXPIRED, got ${e.code}: ${e.shortMessage}`);
  console.log("ethers: nonce too low mapped to", e.code);
}

// viem: public and wallet clients.
const chain = viem.defineChain({ id: 31337, name: "OpenLedger dev", nativeCurrency: { name: "OPEN", symbol: "OPEN", decimals: 18 }, rpcUrls: { default: { http: [url] } } });
const pub = viem.createPublicClient({ chain, transport: viem.http(url) });
const wc = viem.createWalletClient({ chain, transport: viem.http(url), account: privateKeyToAccount(KEY1) });
const h = await wc.sendTransaction({ to: B, value: viem.parseEther("0.5") });
const vr = await pub.waitForTransactionReceipt({ hash: h });
if (vr.status !== "success") fail("viem transfer status");
const bal = await pub.readContract({ address: BANK, abi: viem.parseAbi(["function balanceOf(address) view returns (uint256)"]), functionName: "balanceOf", args: [B] });
if (bal !== (await pub.getBalance({ address: B }))) fail("viem readContract");
const block = await pub.getBlock({ blockNumber: vr.blockNumber, includeTransactions: true });
if (!block.transactions.some((x) => x.hash === h)) fail("viem getBlock");
const fees = await pub.estimateFeesPerGas();
console.log("viem: transfer, readContract, getBlock ok; fees", fees.maxFeePerGas, fees.maxPriorityFeePerGas);
console.log("ethers + viem interop: all checks passed");
