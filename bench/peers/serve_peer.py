#!/usr/bin/env python3
"""Peer of `openledger bench serve`: Hugging Face transformers + PEFT on the CPU, one adapter per request.

`openledger bench serve` writes a work directory (a Hugging Face model folder with seeded random weights,
the LoRA adapters in the PEFT layout, and one spec file per adapter count N) and runs
    bench/.venv/bin/python bench/peers/serve_peer.py --spec WORKDIR/peer-N10.json
which serves exactly the requests our engine serves and prints one JSON line:
    {"system": "hf-peft", "tokensPerS": ..., "requestP50S": ..., "requestP99S": ..., "requestS": [...],
     "ttftS": [...], "tokens": [[...], ...], "baseLoadS": ..., "adapterLoadS": [...], "versions": {...}, ...}
`--versions` prints the installed versions as JSON and exits (the bench's check that the peer works).

The bench creates the git-ignored virtual environment itself when it is missing:
    python3 -m venv bench/.venv && bench/.venv/bin/pip install torch transformers peft safetensors
Never a dependency of the product. Tested with torch 2.15.0, transformers 5.24.0, peft 0.21.2.

What runs (the usual way to serve many LoRA adapters with PEFT):
- `AutoModelForCausalLM.from_pretrained(model_dir, dtype=float32)` (default attention: sdpa), eval mode,
  `torch.set_num_threads(threads)`; EOS disabled so that every request generates exactly max_new_tokens,
  as on our side;
- `PeftModel.from_pretrained(base, adapter_dirs[0], adapter_name="a0")`, then
  `model.load_adapter(adapter_dirs[i], adapter_name=f"a{i}")` for the others (each load timed);
- one untimed warm-up generation; then, for every request in order (batch 1, sequentially):
  `model.set_adapter(name)` and `model.generate(input_ids, max_new_tokens, do_sample=False)`;
- tokens/s = generated tokens / the wall time of the request loop; request latency = set_adapter +
  generate; time to first token = a streamer's first callback after the prompt.
"""
import json
import sys
import time

from hf_common import quiet_torch, read_spec, versions


def pct(xs, p):
    """Nearest-rank percentile, as the bench computes it."""
    if not xs:
        return None
    v = sorted(xs)
    import math

    rank = math.ceil(p / 100.0 * len(v))
    return v[min(max(rank - 1, 0), len(v) - 1)]


def main():
    spec = read_spec("HF transformers + PEFT side of `openledger bench serve`.", "peer-N<n>.json written by openledger bench serve", ("peft",))
    if spec is None:
        return 0
    torch = quiet_torch(spec["threads"])
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    new_tokens = int(spec["max_new_tokens"])
    adapter_dirs = list(spec["adapter_dirs"])
    requests = list(spec["requests"])
    if not adapter_dirs:
        raise SystemExit("serve_peer: no adapters in the spec")

    t0 = time.perf_counter()
    base = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    base.eval()
    gc = base.generation_config
    gc.eos_token_id = None
    gc.bos_token_id = None
    gc.pad_token_id = 0
    base_load_s = time.perf_counter() - t0

    names = []
    adapter_load_s = []
    model = None
    for i, d in enumerate(adapter_dirs):
        name = f"a{i}"
        t = time.perf_counter()
        if model is None:
            model = PeftModel.from_pretrained(base, d, adapter_name=name, is_trainable=False)
        else:
            model.load_adapter(d, adapter_name=name, is_trainable=False)
        adapter_load_s.append(time.perf_counter() - t)
        names.append(name)
    model.eval()

    class FirstToken:
        """A streamer that notes when the first generated token arrives (the prompt comes first)."""

        def __init__(self):
            self.calls = 0
            self.first = None

        def put(self, value):
            self.calls += 1
            if self.calls == 2 and self.first is None:
                self.first = time.perf_counter()

        def end(self):
            pass

    def gen(prompt, streamer=None):
        ids = torch.tensor([prompt], dtype=torch.long)
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
            streamer=streamer,
        )
        return out[0, ids.shape[1]:].tolist()

    with torch.inference_mode():
        # Warm-up, untimed: first-call allocations and kernel selection.
        model.set_adapter(names[0])
        tw = time.perf_counter()
        gen(requests[0]["prompt"])
        warmup_s = time.perf_counter() - tw

        request_s, ttft_s, tokens = [], [], []
        loop0 = time.perf_counter()
        for r in requests:
            t = time.perf_counter()
            model.set_adapter(names[int(r["adapter"])])
            st = FirstToken()
            toks = gen(r["prompt"], st)
            end = time.perf_counter()
            request_s.append(end - t)
            ttft_s.append((st.first - t) if st.first is not None else None)
            if len(toks) != new_tokens:
                raise SystemExit(f"serve_peer: a request generated {len(toks)} tokens, not {new_tokens}")
            tokens.append(toks)
        wall = time.perf_counter() - loop0

    generated = sum(len(t) for t in tokens)
    ttft_ok = [x for x in ttft_s if x is not None]
    print(
        json.dumps(
            {
                "system": "hf-peft",
                "requests": len(requests),
                "adapters": len(names),
                "generatedTokens": generated,
                "wallS": wall,
                "tokensPerS": generated / wall if wall > 0 else None,
                "requestP50S": pct(request_s, 50),
                "requestP99S": pct(request_s, 99),
                "ttftP50S": pct(ttft_ok, 50),
                "ttftP99S": pct(ttft_ok, 99),
                "requestS": request_s,
                "ttftS": ttft_s,
                "tokens": tokens,
                "baseLoadS": base_load_s,
                "adapterLoadS": adapter_load_s,
                "warmupS": warmup_s,
                "threads": torch.get_num_threads(),
                "attnImplementation": getattr(base.config, "_attn_implementation", None),
                "versions": versions("peft"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
