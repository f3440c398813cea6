#!/usr/bin/env python3
"""Peer of `openledger bench attribution`: infini-gram's suffix-array index and its maximal-span query.

`openledger bench attribution` writes, for each corpus size, a directory in infini-gram's own
on-disk layout (version 4, u16 tokens), holding exactly the tokens our index gets:
    tokenized.0   every document as 0xFF 0xFF followed by its token ids (u16 little-endian)
    offset.0      the byte offset of each document in tokenized.0 (u64 little-endian)
    bow_ids.txt   the token ids that begin a word, one per line (for enforce_bow)
and runs
    bench/.venv/bin/python bench/peers/attribution_peer.py --serve
which answers one JSON command per line on stdin with one JSON line on stdout:
    {"cmd": "build", "dir": D, "cpus": 2, "memGib": 8}
        -> {"buildS": ..., "bytes": ...}   infini_gram.indexing.build_sa on D (its Rust
           `rust_indexing` make-part / merge / concat), timed from the token file to the table;
           table.0 is removed first, so every build is a fresh one
    {"cmd": "load", "dir": D, "loadToRam": true}
        -> {"loadS": ...}                  InfiniGramEngine(D, load_to_ram=..., bow_ids_path=D/bow_ids.txt)
    {"cmd": "trace", "responses": [[ids...], ...], "minLen": 8, "maxCnt": 1000000}
        -> {"times": [s, ...], "spans": [[[l, r, count], ...], ...]}
           engine.attribute(ids, delim_ids=[], min_len, max_cnt, enforce_bow=True) per response,
           each call timed with perf_counter
    {"cmd": "quit"}
`--versions` prints the installed versions as JSON and exits (the bench's check that the peer works).

The bench creates the git-ignored virtual environment when infini-gram is missing:
    python3 -m venv bench/.venv && bench/.venv/bin/pip install infini-gram
infini-gram's licence is unclear (the package metadata says Apache-2.0, the repository's licence is
the UW academic, non-commercial one): we measure against it and never depend on it.
"""
import argparse
import contextlib
import json
import os
import sys
import time
import types


def versions():
    import importlib.metadata

    import infini_gram.engine  # noqa: F401  (the check that it imports)

    return {
        "infini-gram": importlib.metadata.version("infini-gram"),
        "python": sys.version.split()[0],
    }


def dir_bytes(d):
    names = ("tokenized.0", "table.0", "offset.0")
    return sum(os.path.getsize(os.path.join(d, n)) for n in names if os.path.exists(os.path.join(d, n)))


def build(cmd):
    from infini_gram import indexing

    d = os.path.abspath(cmd["dir"])
    table = os.path.join(d, "table.0")
    if os.path.exists(table):
        os.remove(table)
    args = types.SimpleNamespace(
        save_dir=d,
        temp_dir=d,
        worker_id=0,
        workers=1,
        shards=1,
        cpus=int(cmd.get("cpus", os.cpu_count() or 1)),
        mem=int(cmd.get("memGib", 8)),
        token_width=2,
    )
    cwd = os.getcwd()
    t = time.perf_counter()
    # build_sa prints progress on stdout, which is our answer channel.
    with contextlib.redirect_stdout(sys.stderr):
        indexing.build_sa(args)
    s = time.perf_counter() - t
    os.chdir(cwd)  # build_sa changes into the package directory
    if not os.path.exists(table):
        raise RuntimeError("build_sa did not write table.0")
    return {"buildS": s, "bytes": dir_bytes(d)}


ENGINE = None


def load(cmd):
    global ENGINE
    from infini_gram.engine import InfiniGramEngine

    d = os.path.abspath(cmd["dir"])
    ENGINE = None
    t = time.perf_counter()
    ENGINE = InfiniGramEngine(
        index_dir=d,
        eos_token_id=0,
        load_to_ram=bool(cmd.get("loadToRam", True)),
        bow_ids_path=os.path.join(d, "bow_ids.txt"),
    )
    return {"loadS": time.perf_counter() - t}


def trace(cmd):
    if ENGINE is None:
        raise RuntimeError("trace before load")
    times, spans = [], []
    for ids in cmd["responses"]:
        t = time.perf_counter()
        r = ENGINE.attribute(
            input_ids=ids, delim_ids=[], min_len=int(cmd["minLen"]), max_cnt=int(cmd["maxCnt"]), enforce_bow=True
        )
        times.append(time.perf_counter() - t)
        if "error" in r:
            raise RuntimeError(r["error"])
        spans.append([[s["l"], s["r"], s["count"]] for s in r["spans"]])
    return {"times": times, "spans": spans}


def serve():
    handlers = {"build": build, "load": load, "trace": trace}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        try:
            out = handlers[cmd["cmd"]](cmd)
        except Exception as e:  # reported to the bench, which stops
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description="infini-gram side of `openledger bench attribution`.")
    ap.add_argument("--versions", action="store_true", help="print the installed versions as JSON and exit")
    ap.add_argument("--serve", action="store_true", help="answer JSON commands on stdin (see the module doc)")
    args = ap.parse_args()
    if args.versions:
        print(json.dumps(versions()))
        return 0
    if args.serve:
        return serve()
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
