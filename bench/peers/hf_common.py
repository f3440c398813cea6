"""What the Hugging Face peers of `openledger bench` (train, generate, serve) share.

Each peer is run as `python bench/peers/<name>_peer.py --spec FILE` (or
`--versions`), so this module is importable from the script's own directory.
"""

import argparse
import importlib
import json
import os
import sys
from pathlib import Path


def versions(*packages):
    """torch's, transformers', the given packages' and safetensors' versions, and Python's."""
    out = {m: importlib.import_module(m).__version__ for m in ("torch", "transformers", *packages, "safetensors")}
    out["python"] = sys.version.split()[0]
    return out


def read_spec(description, spec_help, packages=()):
    """Parse `--spec FILE` / `--versions`. With `--versions`, print the versions as
    JSON and return None; otherwise return the spec (a dict)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--spec", help=spec_help)
    ap.add_argument("--versions", action="store_true", help="print the installed versions as JSON and exit")
    args = ap.parse_args()
    if args.versions:
        print(json.dumps(versions(*packages)))
        return None
    if not args.spec:
        ap.error("--spec is required")
    return json.loads(Path(args.spec).read_text(encoding="utf-8"))


def quiet_torch(threads):
    """Import torch and transformers offline, without warnings or progress bars,
    torch on `threads` threads; returns torch."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(int(threads))
    return torch
