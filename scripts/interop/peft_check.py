#!/usr/bin/env python3
"""Check that a LoRA adapter written by OpenLedger's `ml` crate loads in Hugging Face PEFT, unchanged,
and gives the logits our Rust code computed.

Run by hand (PyTorch, transformers and PEFT are not dependencies of the product, nor run in CI).
Once, from the repository root:
    python3 -m venv bench/.venv        # git-ignored
    bench/.venv/bin/pip install torch transformers peft tokenizers safetensors
Then:
    bench/.venv/bin/python scripts/interop/peft_check.py \\
        --base crates/ml/fixtures/tiny-llama \\
        --adapter DIR_WRITTEN_BY_RUST \\
        --logits LOGITS_DUMPED_BY_RUST.json [--tol 1e-4]

--base     a Hugging Face model folder (config.json + model.safetensors), e.g. the tiny-llama fixture
--adapter  a PEFT adapter folder (adapter_config.json + adapter_model.safetensors); leave it out
           to check the base model alone
--logits   JSON {"tokens": [[id, ...], ...], "logits": [...]}: for each token sequence either the
           logits of every position ([[vocab floats] per position]) or of the last position only
           ([vocab floats])

Loads the base in float32 (eval mode, no cache), the adapter on it with
`PeftModel.from_pretrained`, runs each sequence, prints the max absolute difference per sequence
and overall, and exits 0 when it is within --tol (default 1e-4), 1 when not, 2 on bad input.
Tested with torch 2.15.0, transformers 5.24.0, peft 0.21.2.
"""
import argparse
import json
import sys
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description="Compare our logits with PEFT's for a LoRA adapter.")
    ap.add_argument("--base", required=True, help="Hugging Face model folder")
    ap.add_argument("--adapter", help="PEFT adapter folder (written by our Rust code)")
    ap.add_argument("--logits", required=True, help='JSON {"tokens": [[...]], "logits": [...]}')
    ap.add_argument("--tol", type=float, default=1e-4, help="max absolute difference allowed")
    args = ap.parse_args()

    import os
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(1)
    try:
        data = json.loads(Path(args.logits).read_text(encoding="utf-8"))
        tokens, want = data["tokens"], data["logits"]
        if len(tokens) != len(want) or not tokens:
            raise ValueError(f"{len(tokens)} token sequences but {len(want)} logits entries")
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"peft_check: bad --logits file {args.logits}: {e}", file=sys.stderr)
        return 2

    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
    if args.adapter:
        from peft import PeftModel

        for f in ("adapter_config.json", "adapter_model.safetensors"):
            if not (Path(args.adapter) / f).exists():
                print(f"peft_check: {args.adapter} has no {f}", file=sys.stderr)
                return 2
        model = PeftModel.from_pretrained(model, args.adapter)
    model.eval()

    worst = 0.0
    with torch.no_grad():
        for i, (ids, w) in enumerate(zip(tokens, want)):
            if not ids:
                print(f"peft_check: sequence {i} is empty", file=sys.stderr)
                return 2
            got = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False).logits[0]
            w = torch.tensor(w, dtype=torch.float32)
            if w.dim() == 1:
                got = got[-1]
            if tuple(w.shape) != tuple(got.shape):
                print(
                    f"peft_check: sequence {i}: logits of shape {tuple(w.shape)}, PEFT gives {tuple(got.shape)}",
                    file=sys.stderr,
                )
                return 2
            d = float((got - w).abs().max())
            same_argmax = bool(torch.equal(got.argmax(-1), w.argmax(-1)))
            print(f"sequence {i}: {len(ids)} tokens, max abs diff {d:.3e}, same argmax: {same_argmax}")
            worst = max(worst, d)

    ok = worst <= args.tol
    what = "base + adapter" if args.adapter else "base"
    print(f"max abs diff {worst:.3e} ({what}, tolerance {args.tol:g}): {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
