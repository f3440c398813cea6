// Compile contracts/src/*.sol with the pinned solc-js and copy the Uniswap v2
// fixtures from their npm packages, writing small, stable artifacts to out/.
//
//   cd contracts && npm ci && node build.mjs
//
// out/<Name>.json: {abi, bytecode, contractName, deployedBytecode} for every
// deployable contract defined in src/ (no metadata, sources or ASTs; keys
// sorted, so two runs give identical files). out/uniswap/: UniswapV2Factory,
// UniswapV2Pair, UniswapV2Router02 and WETH9 as {abi, bytecode}, unchanged from
// the packages' build/ folders, and INIT_CODE_HASH, the keccak256 of the pair's
// creation code, checked against the hash compiled into the router.
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const { keccak256 } = require("ethers");

const root = dirname(fileURLToPath(import.meta.url));
const srcDir = join(root, "src");
const outDir = join(root, "out");
const nodeModules = join(root, "node_modules");
const die = (msg) => {
  console.error(`build.mjs: ${msg}`);
  process.exit(1);
};

const EXPECTED_SOLC = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).dependencies.solc;
if (!solc.version().startsWith(`${EXPECTED_SOLC}+`)) {
  die(`solc-js is ${solc.version()}, package.json pins ${EXPECTED_SOLC}: run npm ci`);
}

// JSON with object keys sorted at every depth (arrays keep their order).
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  }
  return v;
}
const writeJson = (path, value) => writeFileSync(path, JSON.stringify(sortKeys(value), null, 2) + "\n");
const hex = (s) => (s.startsWith("0x") ? s : `0x${s}`);

// Imports resolve from node_modules only (e.g. "@openzeppelin/contracts/...").
function findImport(path) {
  const file = resolve(nodeModules, path);
  if (!file.startsWith(nodeModules + "/") || !existsSync(file)) return { error: `import not found: ${path}` };
  return { contents: readFileSync(file, "utf8") };
}

function compile() {
  const files = readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort();
  if (files.length === 0) die(`no .sol files in ${srcDir}`);
  const sources = Object.fromEntries(files.map((f) => [`src/${f}`, { content: readFileSync(join(srcDir, f), "utf8") }]));
  const input = {
    language: "Solidity",
    sources,
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 200 },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) console.error(e.formattedMessage || e.message);
  if (errors.length > 0) die(`${errors.length} compile error(s)`);

  const artifacts = new Map();
  for (const [source, contracts] of Object.entries(output.contracts || {})) {
    if (!source.startsWith("src/")) continue;
    for (const [name, c] of Object.entries(contracts)) {
      if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
      if (artifacts.has(name)) die(`contract ${name} is defined twice in src/`);
      artifacts.set(name, {
        contractName: name,
        abi: c.abi,
        bytecode: hex(c.evm.bytecode.object),
        deployedBytecode: hex(c.evm.deployedBytecode.object),
      });
    }
  }
  return artifacts;
}

// The pair's creation code hash the router computes pair addresses with must be
// the hash of the pair we deploy, or every router call hits an empty address.
function copyUniswap() {
  const fixtures = {
    UniswapV2Factory: "@uniswap/v2-core/build/UniswapV2Factory.json",
    UniswapV2Pair: "@uniswap/v2-core/build/UniswapV2Pair.json",
    UniswapV2Router02: "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    WETH9: "@uniswap/v2-periphery/build/WETH9.json",
  };
  const out = {};
  for (const [name, path] of Object.entries(fixtures)) {
    const j = JSON.parse(readFileSync(join(nodeModules, path), "utf8"));
    if (!Array.isArray(j.abi) || typeof j.bytecode !== "string" || j.bytecode.length < 4) die(`${path}: no abi or bytecode`);
    out[name] = { abi: j.abi, bytecode: hex(j.bytecode) };
  }
  const initCodeHash = keccak256(out.UniswapV2Pair.bytecode);
  if (!out.UniswapV2Router02.bytecode.toLowerCase().includes(initCodeHash.slice(2))) {
    die(`UniswapV2Pair init code hash ${initCodeHash} is not the one compiled into UniswapV2Router02`);
  }
  return { out, initCodeHash };
}

const artifacts = compile();
const { out: uniswap, initCodeHash } = copyUniswap();

rmSync(outDir, { recursive: true, force: true });
mkdirSync(join(outDir, "uniswap"), { recursive: true });
for (const [name, a] of [...artifacts].sort(([x], [y]) => x.localeCompare(y))) {
  writeJson(join(outDir, `${name}.json`), a);
  console.log(`out/${name}.json (${(a.deployedBytecode.length - 2) / 2} bytes deployed)`);
}
for (const [name, a] of Object.entries(uniswap)) {
  writeJson(join(outDir, "uniswap", `${name}.json`), a);
  console.log(`out/uniswap/${name}.json`);
}
writeFileSync(join(outDir, "uniswap", "INIT_CODE_HASH"), initCodeHash + "\n");
console.log(`out/uniswap/INIT_CODE_HASH ${initCodeHash} (found in UniswapV2Router02's bytecode)`);
