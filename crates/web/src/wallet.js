// The web app's wallet: how a page's writes are signed. Hand-written, no
// library, served by the node at /assets/wallet.js.
//
// A write is a transaction the server encoded (a <button> carrying data-to,
// data-data, data-value) that the chosen EIP-1193 provider signs and sends:
// the browser wallet (window.ethereum, e.g. MetaMask) or, on a dev chain, a
// dev account (the node's /web/dev-wallet signs with the public dev keys).
// Uploads use the node's signed requests (X-OpenLedger-Auth v2), signed with
// personal_sign by the same provider; the body's BLAKE3 is computed here.
// The server checks everything again: nothing here is trusted.
"use strict";

(function () {
  // ---- BLAKE3 (hash mode, 32-byte output), the full tree ----
  const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const PERM = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
  const CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8;
  const CHUNK = 1024, BLOCK = 64;

  function g(s, a, b, c, d, x, y) {
    s[a] = (s[a] + s[b] + x) | 0; s[d] ^= s[a]; s[d] = (s[d] >>> 16) | (s[d] << 16);
    s[c] = (s[c] + s[d]) | 0; s[b] ^= s[c]; s[b] = (s[b] >>> 12) | (s[b] << 20);
    s[a] = (s[a] + s[b] + y) | 0; s[d] ^= s[a]; s[d] = (s[d] >>> 8) | (s[d] << 24);
    s[c] = (s[c] + s[d]) | 0; s[b] ^= s[c]; s[b] = (s[b] >>> 7) | (s[b] << 25);
  }

  // The first 8 words of the compression of one block: a chaining value.
  function compress(cv, m, counter, len, flags) {
    const s = [cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7], IV[0], IV[1], IV[2], IV[3],
      counter >>> 0, Math.floor(counter / 0x100000000) >>> 0, len, flags];
    let w = m.slice();
    for (let r = 0; r < 7; r++) {
      g(s, 0, 4, 8, 12, w[0], w[1]); g(s, 1, 5, 9, 13, w[2], w[3]);
      g(s, 2, 6, 10, 14, w[4], w[5]); g(s, 3, 7, 11, 15, w[6], w[7]);
      g(s, 0, 5, 10, 15, w[8], w[9]); g(s, 1, 6, 11, 12, w[10], w[11]);
      g(s, 2, 7, 8, 13, w[12], w[13]); g(s, 3, 4, 9, 14, w[14], w[15]);
      w = PERM.map((i) => w[i]);
    }
    const out = new Array(8);
    for (let i = 0; i < 8; i++) out[i] = (s[i] ^ s[i + 8]) >>> 0;
    return out;
  }

  // Bytes start..end (at most one block) as 16 little-endian words, zero padded.
  function words(bytes, start, end) {
    const w = new Array(16).fill(0);
    for (let i = start; i < end; i++) w[(i - start) >> 2] |= bytes[i] << (8 * ((i - start) & 3));
    return w;
  }

  function chunkCv(bytes, index, rootFlag) {
    const start = index * CHUNK, end = Math.min(bytes.length, start + CHUNK);
    const blocks = Math.max(1, Math.ceil((end - start) / BLOCK));
    let cv = IV;
    for (let b = 0; b < blocks; b++) {
      const s = start + b * BLOCK, e = Math.min(end, s + BLOCK);
      const flags = (b === 0 ? CHUNK_START : 0) | (b === blocks - 1 ? CHUNK_END | rootFlag : 0);
      cv = compress(cv, words(bytes, s, e), index, e - s, flags);
    }
    return cv;
  }

  function parentCv(left, right, rootFlag) {
    return compress(IV, left.concat(right), 0, BLOCK, PARENT | rootFlag);
  }

  /** BLAKE3 of `bytes` (a Uint8Array), as 64 lowercase hex digits. */
  function blake3(bytes) {
    const chunks = Math.max(1, Math.ceil(bytes.length / CHUNK));
    let cv;
    if (chunks === 1) {
      cv = chunkCv(bytes, 0, ROOT);
    } else {
      // Completed subtrees, merged as soon as their sizes pair up (the left
      // subtree is always the largest power of two of chunks).
      const stack = [];
      for (let i = 0; i < chunks - 1; i++) {
        let c = chunkCv(bytes, i, 0);
        for (let total = i + 1; (total & 1) === 0; total >>= 1) c = parentCv(stack.pop(), c, 0);
        stack.push(c);
      }
      cv = chunkCv(bytes, chunks - 1, 0);
      while (stack.length > 1) cv = parentCv(stack.pop(), cv, 0);
      cv = parentCv(stack.pop(), cv, ROOT);
    }
    let hex = "";
    for (const w of cv) for (let k = 0; k < 4; k++) hex += ((w >>> (8 * k)) & 0xff).toString(16).padStart(2, "0");
    return hex;
  }

  if (typeof document === "undefined") {
    // Loaded outside a browser (node, to check the hash): the hash only.
    if (typeof module !== "undefined") module.exports = { blake3 };
    return;
  }

  // ---- the account selector and the provider ----
  const BROWSER = "browser";
  const DEV_PREFIX = "dev:";

  function select() {
    return document.getElementById("wallet-account");
  }

  function setStatus(text) {
    const s = document.getElementById("wallet-status");
    if (s) s.textContent = text;
  }

  // The "Browser wallet" option, added when window.ethereum appears (a wallet
  // may inject it after the page loaded) and chosen unless the user chose.
  function refresh() {
    const sel = select();
    if (!sel) return;
    const has = !!sel.querySelector('option[value="' + BROWSER + '"]');
    if (window.ethereum && !has) {
      const o = document.createElement("option");
      o.value = BROWSER;
      o.textContent = "Browser wallet";
      sel.insertBefore(o, sel.firstChild);
      if (!sel.dataset.chosen) sel.value = BROWSER;
    }
    if (!sel.options.length) {
      setStatus("No wallet: install a browser wallet (EIP-1193, such as MetaMask) to sign.");
    } else {
      const o = sel.options[sel.selectedIndex];
      setStatus("Signing with " + (o ? o.textContent : "nothing") + ".");
    }
    curatorNote();
  }

  // A provider over the node's dev wallet (dev chains only): JSON-RPC over POST.
  function devProvider(url) {
    let id = 0;
    return {
      request: async function ({ method, params }) {
        const r = await fetch(url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method: method, params: params || [] }),
        });
        const j = await r.json().catch(() => null);
        if (!j) throw new Error("the dev wallet answered " + r.status);
        if (j.error) throw new Error(j.error.message || "the dev wallet refused");
        return j.result;
      },
    };
  }

  /** The chosen EIP-1193 provider (a browser wallet injected since the last look is offered first). */
  function provider() {
    refresh();
    const sel = select();
    const v = sel ? sel.value : "";
    if (v === BROWSER || (!v && window.ethereum)) {
      if (!window.ethereum) throw new Error("the browser wallet is gone; choose another account");
      return window.ethereum;
    }
    if (v.startsWith(DEV_PREFIX) && sel.dataset.devWallet) return devProvider(sel.dataset.devWallet);
    throw new Error("no wallet: install a browser wallet (such as MetaMask) to sign");
  }

  /** The address that signs: the chosen dev account, or the browser wallet's first account. */
  async function account() {
    const sel = select();
    const v = sel ? sel.value : "";
    if (v.startsWith(DEV_PREFIX)) return v.slice(DEV_PREFIX.length);
    const accounts = await provider().request({ method: "eth_requestAccounts", params: [] });
    if (!accounts || !accounts.length) throw new Error("the browser wallet shares no account");
    return accounts[0];
  }

  function quantity(v) {
    return "0x" + BigInt(v || "0").toString(16);
  }

  function readable(e) {
    return (e && (e.message || (e.data && e.data.message))) || String(e);
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /**
   * Send {to, data, value (decimal or 0x)} from the chosen account; the
   * receipt once mined (at most ~2 minutes). Rejects with a readable error,
   * also when the transaction reverted (status 0).
   */
  async function send({ to, data, value }) {
    const p = provider();
    const from = await account();
    setStatus("Waiting for " + from + " to sign…");
    let hash;
    try {
      hash = await p.request({ method: "eth_sendTransaction", params: [{ from: from, to: to, data: data, value: quantity(value) }] });
    } catch (e) {
      setStatus("Not sent.");
      throw new Error("not sent: " + readable(e));
    }
    setStatus("Sent " + hash + "; waiting for a block…");
    for (let i = 0; i < 240; i++) {
      const r = await p.request({ method: "eth_getTransactionReceipt", params: [hash] });
      if (r) {
        if (r.status === "0x0" || r.status === 0) {
          setStatus("Reverted.");
          const why = r.revertReason ? ": " + r.revertReason : "";
          const err = new Error("transaction " + hash + " reverted in block " + parseInt(r.blockNumber, 16) + why);
          err.receipt = r;
          throw err;
        }
        setStatus("Mined in block " + parseInt(r.blockNumber, 16) + ".");
        return r;
      }
      await sleep(500);
    }
    setStatus("Not mined yet.");
    throw new Error("transaction " + hash + " was not mined within 2 minutes");
  }

  function hexOf(bytes) {
    let h = "";
    for (const b of bytes) h += b.toString(16).padStart(2, "0");
    return h;
  }

  /**
   * `fetch` with the node's signed-request header (X-OpenLedger-Auth v2),
   * signed with personal_sign by the chosen account over the body's BLAKE3.
   */
  async function signedFetch(method, path, bodyBytes, extraHeaders) {
    const body = bodyBytes || new Uint8Array(0);
    const aud = await (await fetch("/v1/node/auth")).json();
    const from = (await account()).toLowerCase();
    const now = Math.floor(Date.now() / 1000);
    const nonce = hexOf(crypto.getRandomValues(new Uint8Array(16)));
    const hash = blake3(body);
    const node = String(aud.node).toLowerCase();
    const message = ["OpenLedger request v2", String(aud.chainId), node, method + " " + path, String(now), nonce, hash].join("\n");
    const sig = await provider().request({ method: "personal_sign", params: ["0x" + hexOf(new TextEncoder().encode(message)), from] });
    const headers = Object.assign({}, extraHeaders || {}, {
      "X-OpenLedger-Auth": ["v2", from, aud.chainId, node, now, nonce, hash, sig].join(":"),
    });
    return fetch(path, { method: method, headers: headers, body: method === "GET" ? undefined : body });
  }

  // ---- the upload page: check a file, show the findings, then sign and bond ----

  const ONE_OPEN = 10n ** 18n;

  // Base units (decimal string) as exact OPEN.
  function open(units) {
    const v = BigInt(units || "0");
    const frac = (v % ONE_OPEN).toString().padStart(18, "0").replace(/0+$/, "");
    return (v / ONE_OPEN).toString() + (frac ? "." + frac : "");
  }

  // An element with text (never HTML).
  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  // The multipart body the CLI sends: one field "file".
  function multipart(name, content) {
    const boundary = "openledger-" + hexOf(crypto.getRandomValues(new Uint8Array(8)));
    const enc = new TextEncoder();
    const head = "--" + boundary + '\r\nContent-Disposition: form-data; name="file"; filename="' +
      name.replace(/["\r\n]/g, "") + '"\r\nContent-Type: application/octet-stream\r\n\r\n';
    return { type: "multipart/form-data; boundary=" + boundary,
      body: concat([enc.encode(head), content, enc.encode("\r\n--" + boundary + "--\r\n")]) };
  }

  const MAX_ROWS_SHOWN = 500;

  function renderFindings(out, answer) {
    const r = answer.report || {};
    out.replaceChildren();
    out.appendChild(el("h2", "Findings"));
    const dl = el("dl", null, { class: "summary" });
    const pairs = [["File", r.fileName], ["Rows", r.rowCount], ["Quality", (Number(r.qualityBps) / 100).toFixed(2) + " %"],
      ["Exact duplicates", r.exactDuplicates], ["Near duplicates", r.nearDuplicates], ["Scorer", "v" + r.scorerVersion],
      ["Bond", open(answer.value) + " OPEN"]];
    for (const [k, v] of pairs) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
    out.appendChild(dl);
    const rows = r.rows || [];
    const wrap = el("div", null, { class: "scroll" });
    const t = el("table");
    t.appendChild(el("caption", "Findings per row", { class: "visually-hidden" }));
    const head = el("tr");
    for (const c of ["Row", "Status", "Score", "Duplicate of"]) head.appendChild(el("th", c, { scope: "col" }));
    t.appendChild(el("thead")).appendChild(head);
    const body = t.appendChild(el("tbody"));
    for (const row of rows.slice(0, MAX_ROWS_SHOWN)) {
      const tr = el("tr", null, { "data-row": row.index });
      const reasons = row.reasons || [];
      tr.appendChild(el("td", row.index));
      tr.appendChild(el("td", reasons.length ? "⚠ " + reasons.join("; ") : "✓ ok", { class: reasons.length ? "failed" : "ok" }));
      tr.appendChild(el("td", (Number(row.scoreBps) / 100).toFixed(2) + " %", { class: "num" }));
      tr.appendChild(el("td", row.duplicateOf ? row.duplicateOf + " (" + (row.duplicateKind || "") + ")" : "—"));
      body.appendChild(tr);
    }
    wrap.appendChild(t);
    out.appendChild(wrap);
    if (rows.length > MAX_ROWS_SHOWN) out.appendChild(el("p", "The first " + MAX_ROWS_SHOWN + " of " + rows.length + " rows.", { class: "muted" }));
  }

  async function checkUpload() {
    const form = document.getElementById("upload-form");
    const input = document.getElementById("upload-file");
    const status = document.getElementById("upload-status");
    const submit = document.getElementById("upload-submit");
    const out = document.getElementById("upload-findings");
    submit.hidden = true;
    delete submit.dataset.to;
    out.replaceChildren();
    const file = input.files && input.files[0];
    if (!file) { status.textContent = "Choose a file first."; input.focus(); return; }
    status.textContent = "Checking " + file.name + "…";
    try {
      const m = multipart(file.name, new Uint8Array(await file.arrayBuffer()));
      const r = await signedFetch("POST", form.dataset.path, m.body, { "Content-Type": m.type });
      const j = await r.json().catch(() => null);
      if (!r.ok || !j) {
        const why = j && j.error ? j.error.message || String(j.error) : "status " + r.status;
        status.textContent = "The ingest service refused the file: " + why;
        return;
      }
      renderFindings(out, j);
      submit.dataset.to = j.to;
      submit.dataset.data = j.calldata;
      submit.dataset.value = j.value;
      submit.textContent = "Sign and bond " + open(j.value) + " OPEN";
      submit.hidden = false;
      status.textContent = "Checked: " + (j.report ? j.report.rowCount : 0) + " rows. Review the findings, then sign.";
    } catch (e) {
      status.textContent = "Not checked: " + readable(e);
    }
  }

  // ---- the curation queue: say when the chosen account is not a curator ----

  async function curatorNote() {
    const note = document.getElementById("curator-note");
    if (!note) return;
    try {
      const sel = select();
      let a = sel && sel.value.startsWith(DEV_PREFIX) ? sel.value.slice(DEV_PREFIX.length) : null;
      if (!a && window.ethereum) {
        const accounts = await window.ethereum.request({ method: "eth_accounts", params: [] });
        a = accounts && accounts[0];
      }
      const curators = (note.dataset.curators || "").split(",");
      const is = a && curators.includes(String(a).toLowerCase());
      note.hidden = !a || is;
      note.textContent = a && !is ? a + " is not a curator of this Datanet: the chain will refuse its decisions." : "";
    } catch (e) {
      note.hidden = true;
    }
  }

  // ---- buttons that send server-encoded transactions ----

  // The id a receipt's log carries: the log of `address` whose first topic is
  // `topic0`, its topic `index` as a decimal string.
  function eventId(receipt, address, topic0, index) {
    for (const l of receipt.logs || []) {
      if (String(l.address).toLowerCase() === address.toLowerCase() && l.topics && l.topics[0] === topic0) {
        return BigInt(l.topics[index]).toString();
      }
    }
    return null;
  }

  // A result line: plain text, then an optional link (text only, never HTML).
  function show(out, text, href, linkText) {
    out.textContent = text;
    if (href) {
      out.appendChild(document.createTextNode(" "));
      const a = document.createElement("a");
      a.href = href;
      a.textContent = linkText;
      out.appendChild(a);
    }
  }

  // <button data-to data-data data-value [data-result] [data-event-topic
  // data-event-index data-link]>: send, then say what happened.
  async function sendButton(button) {
    const out = document.getElementById(button.dataset.result || "tx-result");
    button.disabled = true;
    try {
      const r = await send({ to: button.dataset.to, data: button.dataset.data, value: button.dataset.value });
      let href = null, linkText = null;
      if (button.dataset.eventTopic && button.dataset.link) {
        const id = eventId(r, button.dataset.to, button.dataset.eventTopic, Number(button.dataset.eventIndex || 1));
        if (id !== null) {
          href = button.dataset.link.replace("{id}", id);
          linkText = button.dataset.linkText ? button.dataset.linkText.replace("{id}", id) : href;
        }
      }
      if (out) show(out, (button.dataset.done || "Done") + " (transaction " + r.transactionHash + ").", href, linkText);
      if (button.dataset.reload) setTimeout(() => location.reload(), 1500);
    } catch (e) {
      if (out) show(out, "Failed: " + readable(e));
      button.disabled = false;
    }
  }

  document.addEventListener("click", (ev) => {
    if (ev.target && ev.target.id === "upload-check") {
      ev.preventDefault();
      checkUpload();
      return;
    }
    const b = ev.target.closest && ev.target.closest("button[data-to]");
    if (b) {
      ev.preventDefault();
      sendButton(b);
    }
  });
  document.addEventListener("change", (ev) => {
    if (ev.target && ev.target.id === "wallet-account") {
      ev.target.dataset.chosen = "1";
      refresh();
    }
  });
  window.addEventListener("ethereum#initialized", refresh);
  document.addEventListener("DOMContentLoaded", refresh);

  window.OpenLedgerWallet = { blake3, provider, account, send, signedFetch, refresh, sendButton, checkUpload };
})();
