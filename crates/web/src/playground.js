// The Playground's chat: the one script of the web app, written by hand (no
// toolchain builds it). It streams an answer from the node's OpenAI-compatible
// API with the pasted API key, then inserts the credits the node renders for
// the answer's receipt (GET /playground/answer/{receipt}?fragment=1). It shows
// what the server sends and decides nothing: the node checks the key, the
// payment and who may read a record, as it does for any client.
"use strict";
(function () {
  var form = document.getElementById("chat");
  if (!form) return;
  var KEY = "openledger.playground.apiKey";
  var keyInput = document.getElementById("pg-key");
  var model = document.getElementById("pg-model");
  var prompt = document.getElementById("pg-prompt");
  var maxTokens = document.getElementById("pg-max");
  var temperature = document.getElementById("pg-temperature");
  var datanets = document.getElementById("pg-datanets");
  var publish = document.getElementById("pg-public");
  var send = document.getElementById("pg-send");
  var status = document.getElementById("pg-status");
  var answers = document.getElementById("pg-answers");
  var history = []; // this page's conversation, per model
  var historyModel = null;
  var MAX_TURNS = 6;

  try { keyInput.value = localStorage.getItem(KEY) || ""; } catch (e) { /* storage off: type it each time */ }
  keyInput.addEventListener("change", function () {
    try { localStorage.setItem(KEY, keyInput.value.trim()); } catch (e) { /* ignore */ }
  });

  function headers(extra) {
    var h = extra || {};
    var k = keyInput.value.trim();
    if (k) h["Authorization"] = "Bearer " + k;
    return h;
  }
  function say(text) { status.textContent = text; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The credits of one answer, as the node renders them; asked again while
  // the receipt settles or the record is computed.
  function loadCredits(slot, receipt, tries) {
    fetch("/playground/answer/" + encodeURIComponent(receipt) + "?fragment=1", { headers: headers() })
      .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, status: r.status, text: t }; }); })
      .then(function (r) {
        // Between its answer and its settlement a receipt may be briefly unknown here.
        if (r.status === 404 && tries < 10) {
          setTimeout(function () { loadCredits(slot, receipt, tries + 1); }, 2000);
          return;
        }
        if (!r.ok) {
          slot.textContent = "";
          slot.appendChild(el("p", "error", "The credits of this answer could not be shown (HTTP " + r.status + ")."));
          return;
        }
        slot.innerHTML = r.text; // rendered and escaped by the node
        var section = slot.querySelector("section.answer-credits");
        if (section && section.getAttribute("data-pending") === "true" && tries < 30) {
          setTimeout(function () { loadCredits(slot, receipt, tries + 1); }, 2000);
        }
      })
      .catch(function (e) { slot.textContent = "The credits could not be loaded: " + e; });
  }

  // Verify buttons inside the inserted credits: the node recomputes, the
  // verdict goes under the button.
  answers.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (!f.classList || !f.classList.contains("verify")) return;
    ev.preventDefault();
    var slot = f.parentNode.querySelector(".verdict-slot");
    var button = f.querySelector("button");
    button.disabled = true;
    slot.textContent = "Recomputing the record…";
    fetch(f.getAttribute("action") + "?fragment=1", { method: "POST", headers: headers() })
      .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, status: r.status, text: t }; }); })
      .then(function (r) {
        if (r.ok) {
          slot.innerHTML = r.text;
        } else {
          var doc = new DOMParser().parseFromString(r.text, "text/html");
          var msg = doc.querySelector(".error");
          slot.textContent = "Verification refused (HTTP " + r.status + "): " + (msg ? msg.textContent : "");
        }
      })
      .catch(function (e) { slot.textContent = "Verification failed: " + e; })
      .then(function () { button.disabled = false; });
  });

  prompt.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit(); else send.click();
    }
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = prompt.value.trim();
    if (!text) { say("Write a message first."); prompt.focus(); return; }
    if (!keyInput.value.trim()) { say("Paste an API key first."); keyInput.focus(); return; }
    if (historyModel !== model.value) { history = []; historyModel = model.value; }
    var messages = history.slice(-MAX_TURNS).concat([{ role: "user", content: text }]);
    var empty = document.getElementById("pg-empty");
    if (empty) empty.remove();

    var article = el("article", "exchange");
    article.setAttribute("aria-busy", "true");
    article.appendChild(el("p", "prompt", text));
    var meta = el("p", "muted", model.options[model.selectedIndex].textContent);
    article.appendChild(meta);
    var out = el("div", "answer-text");
    article.appendChild(out);
    var credits = el("div", "credits");
    article.appendChild(credits);
    answers.appendChild(article);

    var body = { model: model.value, messages: messages, stream: true };
    var n = parseInt(maxTokens.value, 10);
    if (n > 0) body.max_tokens = n;
    // 0 is greedy: the same question gets the same answer.
    var t = parseFloat(temperature && temperature.value);
    if (t >= 0) body.temperature = t;
    // Datanet ids as typed; the node checks them (and who may read them).
    var ids = (datanets && datanets.value || "").split(/[\s,]+/).filter(function (x) { return x !== ""; });
    if (ids.length) body.retrieval = { datanets: ids.map(Number), k: 4 };
    var h = headers({ "Content-Type": "application/json" });
    if (publish.checked) h["OpenLedger-Attribution-Public"] = "true";
    send.disabled = true;
    say("Answering…");
    var receipt = null;
    var answer = "";
    var failed = null;

    function handle(data) {
      if (data === "[DONE]") return;
      var v;
      try { v = JSON.parse(data); } catch (e) { return; }
      if (v.error) { failed = v.error.message || "the generation failed"; return; }
      var c = v.choices && v.choices[0];
      if (c && c.delta && typeof c.delta.content === "string") {
        answer += c.delta.content;
        out.textContent = answer;
      }
      if (v.receipt && v.receipt.hash) receipt = v.receipt.hash;
    }

    fetch("/v1/chat/completions", { method: "POST", headers: h, body: JSON.stringify(body) })
      .then(function (r) {
        if (!r.ok) {
          return r.text().then(function (t) {
            var msg = t;
            try { msg = JSON.parse(t).error.message; } catch (e) { /* not JSON */ }
            throw new Error("HTTP " + r.status + ": " + msg);
          });
        }
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buf = "";
        function pump() {
          return reader.read().then(function (x) {
            if (x.done) return;
            buf += decoder.decode(x.value, { stream: true });
            var i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              var event = buf.slice(0, i);
              buf = buf.slice(i + 2);
              event.split("\n").forEach(function (line) {
                if (line.indexOf("data:") === 0) handle(line.slice(5).trim());
              });
            }
            return pump();
          });
        }
        return pump();
      })
      .then(function () {
        if (failed) throw new Error(failed);
        history.push({ role: "user", content: text }, { role: "assistant", content: answer });
        prompt.value = "";
        if (receipt) {
          say("Answered. Receipt " + receipt + ".");
          credits.textContent = "Loading who is credited…";
          loadCredits(credits, receipt, 0);
        } else {
          say("Answered, without a receipt (this node bills nothing for it).");
        }
      })
      .catch(function (e) {
        out.appendChild(el("p", "error", String(e.message || e)));
        say("No answer: " + (e.message || e));
      })
      .then(function () {
        article.setAttribute("aria-busy", "false");
        send.disabled = false;
      });
  });
})();
