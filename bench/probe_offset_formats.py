"""Issue 23 probe (docs/benchmarks.md, "Found, not fixed"): the activation
rounding error of one real layer product, per weight format, with f32 or f16
activation scales. Run by hand with the bench venv (numpy; gguf-py from the
vendored llama.cpp; the files from llama-quantize as in docs/benchmarks.md).

    bench/.venv/bin/python bench/probe_offset_formats.py FILE.gguf [FILE.gguf ...]
"""
import pathlib, sys, numpy as np
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(next(HERE.glob('.llama/llama_cpp_python-*/vendor/llama.cpp/gguf-py'))))
from gguf import GGUFReader
from gguf.quants import dequantize
def f16(x): return np.float32(np.float16(x))
def q8(xb, f16scales):
    amax = np.abs(xb).max(); d = np.float32(amax/127); idv = np.float32(127/amax) if amax else 0
    q = np.round(xb*idv).astype(np.int32)  # numpy round = half to even
    s = d*q.sum()
    if f16scales: return q, f16(d), f16(s)
    return q, d, np.float32(s)
rng = np.random.default_rng(1)
name = 'blk.3.ffn_up.weight'
for path in sys.argv[1:]:
    r = GGUFReader(path)
    t = [t for t in r.tensors if t.name == name][0]
    w = dequantize(t.data, t.tensor_type).reshape(-1, 576).astype(np.float64)
    # activations: gaussian with a few large channels, as LLM hidden states have
    x = rng.standard_normal((16, 576)); x[:, [7, 100, 301]] *= 30
    exact = x @ w.T
    for f16s in [False, True]:
        errs = []
        for row in x:
            xq = np.zeros(576)
            for b in range(18):
                q, d, s = q8(row[b*32:(b+1)*32].astype(np.float32), f16s)
                xq[b*32:(b+1)*32] = d*q
            errs.append(xq @ w.T - row @ w.T)
        e = np.array(errs)
        print(t.tensor_type.name, 'f16 scales' if f16s else 'f32 scales', 'rms err', np.sqrt((e**2).mean()), 'rms y', np.sqrt((exact**2).mean()))
