#!/usr/bin/env python3
"""Peer of `openledger bench generate --peer llama-cpp`: llama.cpp on the same GGUF file (issue 23).

`bench/peers/llama_cpp_setup` builds llama.cpp from the source `llama-cpp-python` vendors (into the
git-ignored bench/.llama/) and installs the `llama_cpp` package into bench/.venv without a second
native build; this script points the package at that build (LLAMA_CPP_LIB_PATH), so the Python API
and `llama-server` run the same compiled library. `openledger bench generate` writes spec.json
(the GGUF path, the prompts as token ids, the batch sizes, new tokens, threads) and runs
    bench/.venv/bin/python bench/peers/llama_cpp_peer.py --spec WORKDIR/spec.json
which prints one JSON line:
    {"system": "llama.cpp", "runs": [{"batch": B, "mode": "python-api" | "llama-server",
     "totalS": ..., "prefillS": ..., "stepS": [...], "tokens": [[...], ...],
     "vmRssBytes": ..., "vmHwmBytes": ...}, ...], "versions": {...}}
`--versions` prints the versions as JSON and exits.

What runs:
- batch 1, the Python API: `Llama(model_path, n_ctx, n_threads=T, n_threads_batch=T, logits_all=False)`;
  `llm.eval(prompt)` (the prefill, one llama_decode of the whole prompt), then argmax of
  `llama_get_logits_ith(ctx, -1)` (numpy, first maximum, as ours), then `llm.eval([token])` and
  argmax per step: exactly `new_tokens` tokens, EOS never consulted. One untimed warm-up of 4 tokens.
  The first mark (prompt eval + first argmax) is the prefill, every later eval + argmax a step.
  `vmRssBytes` / `vmHwmBytes`: this process's /proc/self/status after the run (interpreter and numpy
  included; the weights are mmapped from the GGUF file, counted once resident).
- batch B > 1, `llama-server -m GGUF --parallel B -t T --threads-batch T` on 127.0.0.1 (a fresh
  server per run, KV for B × (prompt + new) positions), one untimed warm-up request, then B
  concurrent `POST /completion` {prompt: token ids (no BOS is added to ids), n_predict: new,
  ignore_eos, temperature 0 (greedy), cache_prompt false, return_tokens}; totalS = first send to
  last reply; stepS = each request's `timings.predicted_per_token_ms` (its decode step time while
  the others decode alongside); prefillS = the median `timings.prompt_ms`; vmRssBytes / vmHwmBytes
  of the server process after the run.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

BUILD = Path(__file__).resolve().parent.parent / ".llama" / "build" / "bin"
os.environ.setdefault("LLAMA_CPP_LIB_PATH", str(BUILD))


def proc_status(pid="self"):
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def versions():
    import llama_cpp

    root = Path(__file__).resolve().parent.parent / ".llama" / "VERSIONS"
    out = {"llama_cpp_python": llama_cpp.__version__, "python": sys.version.split()[0], "lib": str(BUILD)}
    if root.is_file():
        for line in root.read_text().splitlines():
            if line.startswith("llama.cpp "):
                out["llama_cpp_commit"] = line.split()[1]
    out["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    return out


def open_llama(gguf, threads, positions):
    """The Python API on `gguf` for sequences of up to `positions` tokens, and a function giving
    the last position's logits (a view of llama.cpp's buffer)."""
    import numpy as np
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=gguf,
        n_ctx=((positions + 8 + 255) // 256) * 256,
        n_batch=max(512, positions),
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=False,
        verbose=False,
    )
    ctx = llm._ctx.ctx
    n_vocab = llm.n_vocab()

    def last_logits():
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))

    return llm, last_logits


def python_api(spec, gguf, threads, new):
    """Batch 1 through the Python API: a run of prompt 0."""
    import numpy as np

    prompt = [int(t) for t in spec["prompts"][0]]
    llm, last_logits = open_llama(gguf, threads, len(prompt) + new)

    def generate(n, marks=None):
        llm.reset()
        out = []
        inputs = prompt
        for _ in range(n):
            llm.eval(inputs)
            t = int(np.argmax(last_logits()))
            out.append(t)
            inputs = [t]
            if marks is not None:
                marks.append(time.perf_counter())
        return out

    generate(4)
    marks = []
    t0 = time.perf_counter()
    tokens = generate(new, marks)
    t1 = time.perf_counter()
    rss, hwm = proc_status()
    run = {
        "batch": 1,
        "mode": "python-api",
        "totalS": t1 - t0,
        "prefillS": marks[0] - t0,
        "stepS": [marks[i] - marks[i - 1] for i in range(1, len(marks))],
        "tokens": [tokens],
        "vmRssBytes": rss,
        "vmHwmBytes": hwm,
    }
    return run


def write_logits(spec, gguf, threads):
    """The logits check's side: the last logits after each of `logit_prompts`' prefill (a fresh
    context per prompt, as ours), written as little-endian f32 rows to `logits_out`, once (the first
    round's process; every round's are the same weights and prompts). After the runs, so their
    memory figures do not include it."""
    import numpy as np

    prompts = [[int(t) for t in p] for p in spec.get("logit_prompts") or []]
    out = spec.get("logits_out")
    if not prompts or not out or Path(out).exists():
        return
    llm, last_logits = open_llama(gguf, threads, max(len(p) for p in prompts))
    rows = []
    for p in prompts:
        llm.reset()
        llm.eval(p)
        rows.append(last_logits().astype("<f4"))
    tmp = out + ".part"
    np.concatenate(rows).tofile(tmp)
    os.replace(tmp, out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def server_run(spec, gguf, threads, new, b):
    """B concurrent requests to a fresh `llama-server --parallel B`."""
    prompts = [[int(t) for t in p] for p in spec["prompts"][:b]]
    per_slot = max(len(p) for p in prompts) + new + 8
    port = free_port()
    cmd = [
        str(BUILD / "llama-server"),
        "-m", gguf,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--parallel", str(b),
        "-t", str(threads),
        "--threads-batch", str(threads),
        "-c", str(b * per_slot),
    ]
    log = open(os.devnull, "w")
    srv = subprocess.Popen(cmd, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if srv.poll() is not None:
                raise RuntimeError(f"llama-server exited ({srv.returncode}): {' '.join(cmd)}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if time.time() > deadline:
                raise RuntimeError("llama-server did not become healthy within 120 s")
            time.sleep(0.2)

        def body(p, n):
            return {
                "prompt": p,
                "n_predict": n,
                "ignore_eos": True,
                "temperature": 0.0,
                "cache_prompt": False,
                "return_tokens": True,
                "stream": False,
            }

        post(base + "/completion", body(prompts[0], 4), 600)
        replies = [None] * b
        errors = []

        def one(i):
            try:
                replies[i] = post(base + "/completion", body(prompts[i], new), 3600)
            except Exception as e:  # reported below
                errors.append(f"request {i}: {e}")

        ths = [threading.Thread(target=one, args=(i,)) for i in range(b)]
        t0 = time.perf_counter()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        t1 = time.perf_counter()
        if errors:
            raise RuntimeError("; ".join(errors))
        rss, hwm = proc_status(srv.pid)
        step = [r["timings"]["predicted_per_token_ms"] / 1e3 for r in replies]
        prompt_ms = sorted(r["timings"]["prompt_ms"] for r in replies)
        return {
            "batch": b,
            "mode": "llama-server",
            "totalS": t1 - t0,
            "prefillS": prompt_ms[len(prompt_ms) // 2] / 1e3,
            "stepS": step,
            "tokens": [r["tokens"] for r in replies],
            "vmRssBytes": rss,
            "vmHwmBytes": hwm,
        }
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def main():
    ap = argparse.ArgumentParser(description="llama.cpp side of `openledger bench generate --peer llama-cpp`.")
    ap.add_argument("--spec", help="spec.json written by openledger bench generate")
    ap.add_argument("--versions", action="store_true", help="print the installed versions as JSON and exit")
    args = ap.parse_args()
    if args.versions:
        print(json.dumps(versions()))
        return 0
    if not args.spec:
        ap.error("--spec is required")
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    gguf = spec["gguf"]
    threads = int(spec["threads"])
    new = int(spec["new_tokens"])
    runs = []
    for b in spec["batches"]:
        if b == 1:
            runs.append(python_api(spec, gguf, threads, new))
        else:
            runs.append(server_run(spec, gguf, threads, new, b))
    write_logits(spec, gguf, threads)
    print(json.dumps({"system": "llama.cpp", "runs": runs, "versions": versions(), "threads": threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
