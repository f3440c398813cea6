#!/usr/bin/env python3
"""Peer of `openledger bench generate`: greedy decoding with PyTorch + Hugging Face transformers on the CPU.

`openledger bench generate` writes a work directory (a Hugging Face model folder with seeded random
weights and spec.json with the prompts) and runs
    bench/.venv/bin/python bench/peers/generate_peer.py --spec WORKDIR/spec.json
which decodes exactly what our side decodes and prints one JSON line:
    {"system": "pytorch", "runs": [{"batch": B, "totalS": ..., "prefillS": ..., "stepS": [...],
     "tokens": [[...], ...]}, ...], "versions": {...}, "threads": ..., "attnImplementation": ...}
`--versions` prints the installed versions as JSON and exits (the bench's check that the peer works).

The bench creates the git-ignored virtual environment itself when it is missing:
    python3 -m venv bench/.venv && bench/.venv/bin/pip install torch transformers safetensors
Never a dependency of the product. Tested with torch 2.15.0, transformers 5.24.0.

What runs:
- `AutoModelForCausalLM.from_pretrained(model_dir, dtype=float32)` (default attention: sdpa), eval mode,
  `torch.set_num_threads(threads)`, `torch.inference_mode()`;
- per batch size B: the first B prompts of the spec (all of the same length, so no padding), one
  untimed warm-up `generate` of 4 tokens, then `model.generate(input_ids, attention_mask,
  max_new_tokens=N, min_new_tokens=N, do_sample=False)` (EOS disabled: exactly N tokens each);
- a stopping criterion records the time after every generated token: the first mark is the
  prefill (the prompt's forward and the first token), the differences after it the decode steps.
"""
import json
import sys
import time

from hf_common import quiet_torch, read_spec, versions


def main():
    spec = read_spec("PyTorch + transformers side of `openledger bench generate`.", "spec.json written by openledger bench generate", ())
    if spec is None:
        return 0
    torch = quiet_torch(spec["threads"])
    from transformers import AutoModelForCausalLM, StoppingCriteria, StoppingCriteriaList

    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    model.eval()
    new = int(spec["new_tokens"])

    class Marks(StoppingCriteria):
        """Never stops; records when each token was generated."""

        def __init__(self):
            self.t = []

        def __call__(self, input_ids, scores, **kwargs):
            self.t.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    def gen(ids, n, marks=None):
        kw = dict(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )
        if marks is not None:
            kw["stopping_criteria"] = StoppingCriteriaList([marks])
        return model.generate(**kw)

    runs = []
    with torch.inference_mode():
        for b in spec["batches"]:
            ids = torch.tensor(spec["prompts"][:b], dtype=torch.long)
            gen(ids, 4)
            marks = Marks()
            t0 = time.perf_counter()
            out = gen(ids, new, marks)
            t1 = time.perf_counter()
            t = marks.t
            runs.append(
                {
                    "batch": b,
                    "totalS": t1 - t0,
                    "prefillS": t[0] - t0,
                    "stepS": [t[i] - t[i - 1] for i in range(1, len(t))],
                    "tokens": out[:, ids.shape[1] :].tolist(),
                }
            )
    print(
        json.dumps(
            {
                "system": "pytorch",
                "runs": runs,
                "versions": versions(),
                "threads": torch.get_num_threads(),
                "attnImplementation": getattr(model.config, "_attn_implementation", None),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
