"""cnnlab.numpy_ref's fast paths compute what the plain versions compute; cnnlab._runtime is safe."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from cnnlab import _runtime
from cnnlab import numpy_ref as nr
from cnnlab.numpy_ref import _parallel, lenet
from cnnlab.numpy_ref.conv import _matmul, _matmul_nt

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _layer_by_layer(params: dict, X: np.ndarray, y: np.ndarray | None, variant: str):
    """lenet_loss without its fast path: the public layers one after the other."""
    scores, c = lenet._forward(params, X, variant)
    if y is None:
        return scores, c["features"]
    act_b = nr.relu_backward if variant == "modern" else nr.tanh_backward
    pool_b = nr.max_pool_backward if variant == "modern" else nr.avg_pool_backward
    loss, d = nr.softmax_loss(scores, y)
    g = {}
    d, g["W5"], g["b5"] = nr.affine_backward(d, c["fc3"])
    d = act_b(d, c["act4"])
    d, g["W4"], g["b4"] = nr.affine_backward(d, c["fc2"])
    d = act_b(d, c["act3"])
    d, g["W3"], g["b3"] = nr.affine_backward(d, c["fc1"])
    d = pool_b(nr.flatten_backward(d, c["flat"]), c["pool2"])
    d, g["W2"], g["b2"] = nr.conv_backward(act_b(d, c["act2"]), c["conv2"])
    d = act_b(pool_b(d, c["pool1"]), c["act1"])
    _, g["W1"], g["b1"] = nr.conv_backward(d, c["conv1"])
    return loss, g


@pytest.mark.parametrize("variant", ["modern", "classic"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_lenet_equals_layer_by_layer(variant: str, dtype) -> None:
    rng = np.random.default_rng(3)
    params = {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(dtype) for k, v in nr.lenet_init(variant, 3, 7, seed=1).items()}
    X = rng.standard_normal((5, 3, 32, 32)).astype(dtype)
    X[0, :, :8] = 0.0  # flat regions: ties in max pooling, zeros at the ReLU
    y = np.array([0, 6, 3, 3, 1])
    assert lenet._fast_inputs(params, X, variant) is not None
    tol = 1e-12 if dtype == np.float64 else 2e-4
    loss, grads = nr.lenet_loss(params, X, y, variant=variant)
    loss_ref, grads_ref = _layer_by_layer(params, X, y, variant)
    assert abs(loss - loss_ref) <= tol * abs(loss_ref)
    for k in grads_ref:
        assert grads[k].dtype == dtype and grads[k].shape == grads_ref[k].shape, k
        np.testing.assert_allclose(grads[k], grads_ref[k], rtol=tol, atol=tol * np.abs(grads_ref[k]).max(), err_msg=k)
    feats, feats_ref = nr.lenet_features(params, X, variant), _layer_by_layer(params, X, None, variant)[1]
    assert feats.keys() == feats_ref.keys()
    for k in feats_ref:
        assert feats[k].shape == feats_ref[k].shape and feats[k].flags.c_contiguous, k
        np.testing.assert_allclose(feats[k], feats_ref[k], rtol=tol, atol=tol, err_msg=k)


def test_unusual_lenet_inputs_take_the_layer_path_and_its_errors() -> None:
    p = nr.lenet_init()
    bad = dict(p, W3=p["W3"][:-1])
    assert lenet._fast_inputs(bad, np.zeros((2, 1, 32, 32)), "modern") is None
    with pytest.raises(ValueError, match="x has D=400 features per sample"):
        nr.lenet_loss(bad, np.zeros((2, 1, 32, 32)))
    nan = dict(p, W2=p["W2"].copy())
    nan["W2"][0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"w contains non-finite values \(1 NaN, 0 inf\)"):
        nr.lenet_loss(nan, np.zeros((2, 1, 32, 32)))
    with pytest.raises(ValueError, match=r"x contains non-finite values"):
        nr.lenet_loss(p, np.full((2, 1, 32, 32), np.inf))
    # integer images count as float64, like the layers do
    scores = nr.lenet_loss(p, np.ones((2, 1, 32, 32), dtype=np.int64))
    assert scores.dtype == np.float64


def test_check_finite_fast_path_catches_overflowing_but_finite_sums() -> None:
    from cnnlab.numpy_ref._validate import check_finite

    big = np.full(4, np.finfo(np.float32).max, dtype=np.float32)  # the sum overflows, the values are finite
    check_finite(big, "x")
    with pytest.raises(ValueError, match=r"x contains non-finite values \(1 NaN, 1 inf\)"):
        check_finite(np.array([np.inf, 1.0, np.nan]), "x")
    with pytest.raises(ValueError, match=r"\(0 NaN, 2 inf\)"):
        check_finite(np.array([np.inf, -np.inf]), "x")  # inf + (-inf) is NaN: still caught
    check_finite(np.zeros(0), "x")
    check_finite(np.arange(5), "x")


@pytest.mark.parametrize("shape", [(6, 25, 100_000), (16, 150, 12_800), (3, 7, 1)])
def test_blocked_matmuls_equal_plain_products(shape: tuple[int, int, int]) -> None:
    f, k, m = shape
    rng = np.random.default_rng(0)
    a, b, d = rng.standard_normal((f, k)), rng.standard_normal((k, m)), rng.standard_normal((f, m))
    np.testing.assert_allclose(_matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_matmul_nt(d, b), d @ b.T, rtol=1e-10, atol=1e-10)
    assert _matmul_nt(d, b).flags.c_contiguous


def test_parallel_run_keeps_order_propagates_errors_and_survives_nesting() -> None:
    assert _parallel.run([lambda i=i: i * i for i in range(50)]) == [i * i for i in range(50)]
    assert _parallel.run([]) == []
    names = set(_parallel.run([lambda: threading.current_thread().name for _ in range(20)]))
    assert names  # runs on the caller and possibly pool threads

    def boom() -> None:
        raise KeyError("task 3")

    with pytest.raises(KeyError, match="task 3"):
        _parallel.run([lambda: 1, lambda: 2, boom, lambda: 4])
    nested = _parallel.run([lambda j=j: sum(_parallel.run([lambda i=i: i + j for i in range(5)])) for j in range(6)])
    assert nested == [sum(i + j for i in range(5)) for j in range(6)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_parallel_run_works_in_a_forked_child() -> None:
    _parallel.run([lambda: 1, lambda: 2])  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # child: must not wait for the parent's (absent) threads
        try:
            ok = _parallel.run([lambda i=i: i for i in range(8)]) == list(range(8))
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_runtime_is_applied_once_and_described() -> None:
    first = _runtime.apply()
    assert _runtime.apply() is first
    assert {"malloc", "blas"} <= set(first)  # "torch" too once cnnlab.torch_ref is imported
    assert "NumPy BLAS" in _runtime.describe() and _runtime.numpy_threads() >= 1


def _fresh(env: dict[str, str], code: str) -> str:
    full = dict(os.environ, PYTHONPATH=REPO, **env)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "CNNLAB_RUNTIME",
                "NBGRADER_EXECUTION", "CNNLAB_NUMPY_THREADS", "CNNLAB_TORCH_THREADS", "CNNLAB_BLAS_THREADS"):
        if var not in env:
            full.pop(var, None)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True, timeout=120).stdout


@pytest.mark.slow   # five fresh Python processes
def test_runtime_in_fresh_processes_respects_the_environment() -> None:
    code = "import cnnlab.numpy_ref, cnnlab._runtime as r; print(r.apply()); print(r.numpy_threads())"
    out = _fresh({}, code)
    if sys.platform.startswith("linux") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        assert "mmap threshold 32 MiB" in out
    out = _fresh({"CNNLAB_RUNTIME": "0"}, code)
    assert "CNNLAB_RUNTIME=0: left alone" in out and out.strip().endswith("1")
    out = _fresh({"OPENBLAS_NUM_THREADS": "2"}, code)
    assert "OPENBLAS_NUM_THREADS=2 in the environment: left alone" in out and out.strip().endswith("1")
    out = _fresh({"MALLOC_TRIM_THRESHOLD_": "1000000"}, code)
    assert "set by the environment: left alone" in out or "not glibc" in out
    out = _fresh({"CNNLAB_NUMPY_THREADS": "3"}, code)
    assert out.strip().endswith("3")


@pytest.mark.slow   # fresh Python processes that import PyTorch
def test_grading_kernels_compute_on_one_thread() -> None:
    code = (
        "import torch, cnnlab.torch_ref, cnnlab._runtime as r; "
        "print(r.numpy_threads(), torch.get_num_threads(), r.apply()['torch'])"
    )
    assert _fresh({"NBGRADER_EXECUTION": "1"}, code).split()[:2] == ["1", "1"]
    assert _fresh({"NBGRADER_EXECUTION": "1", "CNNLAB_TORCH_THREADS": "2"}, code).split()[1] == "2"
    assert "not grading" in _fresh({}, code)


def test_runtime_steps_are_skipped_off_glibc_and_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _runtime._glibc_version() is None
    assert _runtime._set_malloc() == "not glibc: left alone"
    assert _runtime._set_openblas_directly(1) is False  # then threadpoolctl is asked
    monkeypatch.setattr(sys, "platform", "linux")

    def musl(name: str) -> str:
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(os, "confstr", musl)
    assert _runtime._set_malloc() == "not glibc: left alone"


@pytest.mark.slow   # a fresh Python process that imports PyTorch
def test_grading_sets_torch_threads_when_numpy_ref_comes_after_torch() -> None:
    code = "import torch; import cnnlab.numpy_ref; print(torch.get_num_threads())"
    assert _fresh({"NBGRADER_EXECUTION": "1"}, code).strip() == "1"
