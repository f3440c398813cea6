#!/usr/bin/env python3
"""Peer of `openledger bench train`: LoRA fine-tuning with PyTorch + Hugging Face PEFT on the CPU.

`openledger bench train` writes a work directory (a Hugging Face model folder, a token file, the
initial LoRA adapter in the PEFT layout and spec.json with every hyperparameter) and runs
    bench/.venv/bin/python bench/peers/train_peer.py --spec WORKDIR/spec.json
which trains exactly what our side trains and prints one JSON line:
    {"system": "pytorch-peft", "losses": [...], "stepS": [...], "tokensPerS": ..., "peakRssBytes": ...,
     "rssAfterLoadBytes": ..., "loadS": ..., "versions": {...}, "attnImplementation": ..., ...}
`--versions` prints the installed versions as JSON and exits (the bench's check that the peer works).

The bench creates the git-ignored virtual environment itself when it is missing:
    python3 -m venv bench/.venv && bench/.venv/bin/pip install torch transformers peft safetensors
Never a dependency of the product. Tested with torch 2.15.0, transformers 5.24.0, peft 0.21.2.

What runs, matching our `ml::Trainer`:
- `LlamaForCausalLM.from_pretrained(model_dir, dtype=float32)` (default attention: sdpa), train mode;
- `get_peft_model` with `LoraConfig(r, lora_alpha, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)`,
  then lora_A and lora_B overwritten with the tensors of `adapter_init_dir` (our trainer's initial
  adapter: A from our seeded init, B zero), so both sides start from identical weights;
- per step: `model(input_ids=batch, labels=batch)` (mean next-token cross-entropy), backward,
  `clip_grad_norm_(1.0)`, AdamW (no weight decay), cosine schedule without warm-up
  (`get_cosine_schedule_with_warmup(opt, 0, steps)`); step i trains on batch i mod batches;
- tokens/s over the steps after `timing_warmup_steps`; peak RSS from `resource.getrusage`.
"""
import array
import json
import resource
import sys
import time
from pathlib import Path

from hf_common import quiet_torch, read_spec, versions


def peak_rss_bytes():
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def read_tokens(path, rows, seq_len):
    a = array.array("I")
    if a.itemsize != 4:
        a = array.array("L")
        if a.itemsize != 4:
            raise SystemExit("train_peer: no 4-byte unsigned array type on this platform")
    a.frombytes(Path(path).read_bytes())
    if sys.byteorder != "little":
        a.byteswap()
    per = rows * seq_len
    if len(a) == 0 or len(a) % per:
        raise SystemExit(f"train_peer: {len(a)} token ids are not a whole number of {rows}x{seq_len} batches")
    return [list(a[i : i + per]) for i in range(0, len(a), per)]


def main():
    spec = read_spec("PyTorch + PEFT side of `openledger bench train`.", "spec.json written by openledger bench train", ("peft",))
    if spec is None:
        return 0
    torch = quiet_torch(spec["threads"])
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM, get_cosine_schedule_with_warmup

    torch.manual_seed(int(spec["seed"]))

    rows, seq_len, steps = int(spec["rows"]), int(spec["seq_len"]), int(spec["steps"])
    warmup = int(spec["timing_warmup_steps"])
    lora, opt_spec = spec["lora"], spec["optimizer"]

    t0 = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    model.config.use_cache = False
    cfg = LoraConfig(
        r=int(lora["r"]),
        lora_alpha=lora["alpha"],
        target_modules=list(lora["target_modules"]),
        lora_dropout=float(lora["dropout"]),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, cfg)

    # Start from our initial adapter: PEFT names the parameters ...lora_A.default.weight.
    init = load_file(str(Path(spec["adapter_init_dir"]) / "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    trainable = {n: p for n, p in params.items() if p.requires_grad}
    copied = set()
    with torch.no_grad():
        for name, t in init.items():
            pname = name.replace(".lora_A.weight", ".lora_A.default.weight").replace(
                ".lora_B.weight", ".lora_B.default.weight"
            )
            p = trainable.get(pname)
            if p is None:
                raise SystemExit(f"train_peer: initial adapter tensor {name} matches no trainable PEFT parameter")
            if tuple(p.shape) != tuple(t.shape):
                raise SystemExit(f"train_peer: {name} has shape {tuple(t.shape)}, PEFT's is {tuple(p.shape)}")
            p.copy_(t.to(torch.float32))
            copied.add(pname)
    missing = set(trainable) - copied
    if missing:
        raise SystemExit(f"train_peer: trainable parameters not in the initial adapter: {sorted(missing)[:4]}")

    batches = [torch.tensor(b, dtype=torch.long).view(rows, seq_len) for b in read_tokens(spec["tokens_file"], rows, seq_len)]
    plist = list(trainable.values())
    opt = torch.optim.AdamW(
        plist,
        lr=float(opt_spec["lr"]),
        betas=(float(opt_spec["beta1"]), float(opt_spec["beta2"])),
        eps=float(opt_spec["eps"]),
        weight_decay=float(opt_spec["weight_decay"]),
    )
    if opt_spec.get("schedule") != "cosine":
        raise SystemExit(f"train_peer: schedule {opt_spec.get('schedule')!r} is not supported")
    sched = get_cosine_schedule_with_warmup(opt, int(opt_spec["lr_warmup_steps"]), int(opt_spec["total_steps"]))
    max_norm = float(opt_spec["max_grad_norm"])
    load_s = time.perf_counter() - t0
    rss_after_load = peak_rss_bytes()

    model.train()
    losses, step_s = [], []
    for i in range(steps):
        b = batches[i % len(batches)]
        t = time.perf_counter()
        out = model(input_ids=b, labels=b, use_cache=False)
        out.loss.backward()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(plist, max_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss = float(out.loss.detach())
        step_s.append(time.perf_counter() - t)
        losses.append(loss)

    timed = sum(step_s[warmup:])
    n_timed = max(0, steps - warmup)
    print(
        json.dumps(
            {
                "system": "pytorch-peft",
                "losses": losses,
                "stepS": step_s,
                "tokensPerStep": rows * seq_len,
                "timedSteps": n_timed,
                "tokensPerS": (n_timed * rows * seq_len / timed) if timed > 0 else None,
                "peakRssBytes": peak_rss_bytes(),
                "rssAfterLoadBytes": rss_after_load,
                "loadS": load_s,
                "trainableParams": sum(p.numel() for p in plist),
                "threads": torch.get_num_threads(),
                "attnImplementation": getattr(model.config, "_attn_implementation", None),
                "versions": versions("peft"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
