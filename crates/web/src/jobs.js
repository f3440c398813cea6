// OpenLedger web app: the job form and the live job page (hand-written, no build step).
// - /models/new: builds the JSON body `openledger train submit` sends, posts it
//   to POST /v1/jobs signed by the wallet, shows the node's refusal as it is.
// - /models/jobs/{id}: while the job runs, fetches its live section again
//   (rendered by the node) every few seconds and swaps it in.
// Buttons that send a transaction the node encoded are wallet.js's.
// The node decides everything; this script only carries bytes.
(function () {
  "use strict";

  function say(el, text, bad) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", !!bad);
  }

  function wallet(out) {
    var w = window.OpenLedgerWallet;
    if (w && typeof w.send === "function" && typeof w.signedFetch === "function") return w;
    say(out, "No wallet is available on this page (window.OpenLedgerWallet is missing: " +
      "/assets/wallet.js did not load). Use the CLI command shown on the page instead.", true);
    return null;
  }

  // The node's error message from a JSON API answer ({"error": {"message": ...}}).
  function apiError(status, text) {
    try {
      var j = JSON.parse(text);
      if (j && j.error && j.error.message) return j.error.message + " (HTTP " + status + ")";
    } catch (e) { /* not JSON */ }
    return "HTTP " + status + ": " + text.slice(0, 300);
  }

  // ---- The job form ----------------------------------------------------

  var form = document.getElementById("job-form");
  if (form) {
    var result = document.getElementById("job-result");
    var start = document.getElementById("job-start");
    var value = function (id) { var e = document.getElementById(id); return e ? e.value.trim() : ""; };
    // wallet.js runs first (both deferred, in order): say now, not after filling the form, if it is missing.
    wallet(result);

    // "d3@v1, 4@2" and the selected options, as [{datanet, version}], or an error.
    var versions = function () {
      var picked = [];
      var select = document.getElementById("job-datanets");
      if (select) {
        for (var i = 0; i < select.options.length; i++) {
          if (select.options[i].selected) picked.push(select.options[i].value);
        }
      }
      var text = value("job-datanets-text");
      if (text) picked = picked.concat(text.split(","));
      var out = [], seen = {};
      for (var k = 0; k < picked.length; k++) {
        var m = /^\s*d?(\d{1,19})@v?(\d{1,19})\s*$/.exec(picked[k]);
        if (!m) return { error: "\"" + picked[k].trim() + "\" is not a Datanet version: write d3@v1" };
        var key = m[1] + "@" + m[2];
        if (!seen[key]) { seen[key] = true; out.push({ datanet: Number(m[1]), version: Number(m[2]) }); }
      }
      if (!out.length) return { error: "Choose at least one Datanet version." };
      return { list: out };
    };

    var number = function (id, label, integer, spec, key) {
      var raw = value(id);
      if (!raw) return null;
      var n = Number(raw);
      if (!isFinite(n) || (integer && !/^\d+$/.test(raw))) return label + " \"" + raw + "\" is not a " + (integer ? "whole number" : "number");
      spec[key] = n;
      return null;
    };

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var w = wallet(result);
      if (!w) return;
      var v = versions();
      if (v.error) { say(result, v.error, true); return; }
      // The fields `train submit` sets from its flags, named as POST /v1/jobs reads them.
      var spec = { datanets: v.list };
      if (value("job-name")) spec.name = value("job-name");
      if (value("job-base")) spec.baseModel = value("job-base");
      var bad = number("job-steps", "Steps", true, spec, "steps") ||
        number("job-lr", "Learning rate", false, spec, "learningRate") ||
        number("job-rank", "LoRA rank", true, spec, "rank") ||
        number("job-alpha", "LoRA alpha", false, spec, "alpha");
      if (bad) { say(result, bad, true); return; }
      var targets = [];
      var boxes = document.querySelectorAll("input.job-target");
      for (var i = 0; i < boxes.length; i++) if (boxes[i].checked) targets.push(boxes[i].value);
      spec.targets = targets;

      var body = new TextEncoder().encode(JSON.stringify(spec));
      start.disabled = true;
      say(result, "Signing the request with your wallet…");
      w.signedFetch("POST", "/v1/jobs", body, { "Content-Type": "application/json" })
        .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, status: r.status, text: t }; }); })
        .then(function (r) {
          if (!r.ok) { say(result, "The node refused the job: " + apiError(r.status, r.text), true); return; }
          var j = JSON.parse(r.text);
          say(result, "Job " + j.id + " queued; opening its page…");
          window.location.assign("/models/jobs/" + encodeURIComponent(j.id));
        })
        .catch(function (e) { say(result, "The job was not sent: " + (e && e.message ? e.message : e), true); })
        .then(function () { start.disabled = false; });
    });
  }

  // ---- The live job section -------------------------------------------

  var poll = function () {
    var live = document.getElementById("job-live");
    if (!live || live.getAttribute("data-live") !== "true") return;
    var seconds = Number(live.getAttribute("data-poll-seconds")) || 2;
    setTimeout(function () {
      fetch(live.getAttribute("data-fragment"), { headers: { Accept: "text/html" } })
        .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, text: t }; }); })
        .then(function (r) {
          if (!r.ok) { poll(); return; }
          var doc = new DOMParser().parseFromString(r.text, "text/html");
          var next = doc.getElementById("job-live");
          if (!next) { poll(); return; }
          // Keep the points table open if the reader opened it.
          var open = live.querySelector("details.loss-points");
          var nextOpen = next.querySelector("details.loss-points");
          if (open && nextOpen && open.open) nextOpen.open = true;
          live.replaceWith(document.importNode(next, true));
          // The job ended: the whole page (evaluation, provenance, proposing) once.
          if (next.getAttribute("data-live") !== "true") window.location.reload();
          else poll();
        })
        .catch(function () { poll(); });
    }, seconds * 1000);
  };
  poll();
})();
