"""Integrity-guard overhead: a loop-heavy naive conv with and without cnnlab.grading.guarded (ratios printed)."""
import time, sys, numpy as np
from cnnlab import grading as G

def naive_conv(x, w, b, stride=1, pad=0):
    N, C, H, W = x.shape; F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho = (H + 2 * pad - KH) // stride + 1; Wo = (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    win = xp[n, :, i*stride:i*stride+KH, j*stride:j*stride+KW]
                    out[n, f, i, j] = np.sum(win * w[f]) + b[f]
    return out, None

g = G.rng(0)
x = g.standard_normal((2, 3, 16, 16)); w = g.standard_normal((8, 3, 3, 3)); b = g.standard_normal(8)
def t(fn, reps=5):
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t0)
    return best
# count python-level numpy calls: 2*8*16*16 = 4096 windows, each np.sum -> ~3 frames
plain = t(lambda: naive_conv(x, w, b, 1, 1))
guard = t(lambda: G.guarded(naive_conv, x, w, b, 1, 1, exercise="conv"))
noguard = t(lambda: G.guarded(naive_conv, x, w, b, 1, 1, exercise="conv", forbid=()))
ncalls = [0]
def counter(frame, event, arg):
    if event in ("call", "c_call"): ncalls[0] += 1
sys.setprofile(counter); naive_conv(x, w, b, 1, 1); sys.setprofile(None)
print(f"events(call+c_call)={ncalls[0]}  plain={plain*1e3:.1f} ms  guarded={guard*1e3:.1f} ms  guarded(forbid=())={noguard*1e3:.1f} ms  overhead={100*(guard/plain-1):.0f}%")
prof = t(lambda: G.guarded(naive_conv, x, w, b, 1, 1, exercise="conv", guard_mode="profile"))
print(f"profile mode: {prof*1e3:.1f} ms overhead={100*(prof/plain-1):.0f}%")
import cnnlab.numpy_ref, scipy.signal, scipy.ndimage, torch, cnnlab.torch_ref
def tiny(x): return x + 1
base = t(lambda: tiny(x), 20)
g1 = t(lambda: G.guarded(tiny, x, exercise="tiny"), 20)
from cnnlab.grading.guard import _forbidden_functions, _prefixes, DEFAULT_FORBID
print(f"per-call fixed cost with numpy_ref+torch_ref+scipy.signal/ndimage+torch imported: {(g1-base)*1e3:.2f} ms; trapped functions: {len(_forbidden_functions(tuple(m for m in _prefixes(tuple(sorted(DEFAULT_FORBID)))[1] if m!='torch'), ()))}")
plain2 = t(lambda: naive_conv(x, w, b, 1, 1)); guard2 = t(lambda: G.guarded(naive_conv, x, w, b, 1, 1, exercise="conv"))
print(f"with torch imported: plain={plain2*1e3:.1f} guarded={guard2*1e3:.1f} overhead={100*(guard2/plain2-1):.0f}%")
