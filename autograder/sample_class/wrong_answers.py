"""Realistic wrong answers per exercise: ``WRONG[assignment][grade_id] = [(description, code)]``.

``code`` replaces the whole solution cell.  The sample class uses the first entry of each
exercise; tests/test_notebooks.py checks that each entry loses exactly that exercise's points.
Exercises not listed get a generic wrong answer (the function returns its first argument).
"""

WRONG: dict[str, dict[str, list[tuple[str, str]]]] = {
    "00_toy": {
        "ex_scale": [("adds instead of multiplying", "def scale(x, a):\n    return x + a")],
        "ex_corr1d": [("one output too few", "def corr1d(x, k):\n"
                       "    return np.array([float(np.dot(x[i:i + len(k)], k)) for i in range(len(x) - len(k))])")],
    },
}

_CONV_BACKWARD_HEAD = ('def conv_backward(dout, cache):\n'
                       '    x, w, stride, pad = cache["x"], cache["w"], cache["stride"], cache["pad"]\n')

WRONG.update({
    "01_history": {
        "fc_params": [("forgot the biases", "def fc_params(n_in, n_out, bias=True):\n    return n_in * n_out")],
        "conv_params": [("filters without depth (c_in ignored)",
                         "def conv_params(c_in, c_out, kh, kw=None, bias=True):\n    kw = kh if kw is None else kw\n"
                         "    return (kh * kw + (1 if bias else 0)) * c_out")],
        "shift_image": [("np.roll wraps pixels around instead of filling zeros",
                         "def shift_image(img, dx, dy):\n"
                         "    return np.roll(np.roll(img, dy, axis=0), dx, axis=1).astype(float)")],
        "response_change": [("absolute instead of relative change",
                             "def response_change(before, after):\n"
                             "    return float(np.linalg.norm(after - before))")],
    },
    "02_filters": {
        "corr2d_loops": [("output one row and one column too small",
                          "def corr2d_loops(x, k):\n    kh, kw = k.shape\n"
                          "    out = np.zeros((x.shape[0] - kh, x.shape[1] - kw))\n"
                          "    for i in range(out.shape[0]):\n        for j in range(out.shape[1]):\n"
                          "            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)\n    return out")],
        "conv2d_true": [("kernel not flipped", "def conv2d_true(x, k):\n    return corr2d(x, k)")],
        "kernel_grad": [("sum instead of mean over the error entries",
                         "def kernel_grad(X, Y, k):\n    errors = np.stack([corr2d(x, k) for x in X]) - Y\n"
                         "    return 2.0 * sum(corr2d(x, e) for x, e in zip(X, errors))",
                         # learn_kernel descends with the student's own kernel_grad
                         ["test_kernel_grad_public", "test_kernel_grad_hidden",
                          "test_learn_kernel_public", "test_learn_kernel_hidden"])],
        "learn_kernel": [("records the loss after the update",
                          "from cnnlab.checks.nb02 import kernel_loss\n\n"
                          "def learn_kernel(X, Y, shape=(3, 3), lr=0.1, steps=100):\n    k = np.zeros(shape)\n"
                          "    losses = []\n    for _ in range(steps):\n        k = k - lr * kernel_grad(X, Y, k)\n"
                          "        losses.append(kernel_loss(X, Y, k))\n    return k, losses")],
    },
    "03_padding_stride": {
        "zero_pad": [("pads only the top and left",
                      "def zero_pad(x, p):\n    H, W = x.shape[-2:]\n"
                      "    out = np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p), dtype=x.dtype)\n"
                      "    out[..., 2 * p:, 2 * p:] = x\n    return out")],
        "pad": [("reflect repeats the border pixel",
                 "def pad(x, p, mode='zero', value=0.0):\n"
                 "    modes = {'zero': 'constant', 'constant': 'constant', 'reflect': 'symmetric', 'replicate': 'edge'}\n"
                 "    width = [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)]\n"
                 "    if mode == 'constant':\n        return np.pad(x, width, mode='constant', constant_values=value)\n"
                 "    return np.pad(x, width, mode=modes[mode])")],
        "conv_output_size": [("forgot the + 1",
                              "def conv_output_size(n, f, pad=0, stride=1, strict=True):\n"
                              "    return (n + 2 * pad - f) // stride")],
        "receptive_field": [("ignores the strides of earlier layers",
                             "def receptive_field(layers):\n    r = 1\n    for k, s in layers:\n"
                             "        r += k - 1\n    return r")],
    },
    "04_volumes": {
        "conv_forward_naive": [("forgot the bias",
                                "def conv_forward_naive(x, w, b, stride=1, pad=0):\n    N, C, H, W = x.shape\n"
                                "    F_, _, KH, KW = w.shape\n"
                                "    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n"
                                "    Ho = (H + 2 * pad - KH) // stride + 1\n    Wo = (W + 2 * pad - KW) // stride + 1\n"
                                "    out = np.zeros((N, F_, Ho, Wo))\n    for n in range(N):\n"
                                "        for f in range(F_):\n            for i in range(Ho):\n"
                                "                for j in range(Wo):\n"
                                "                    win = xp[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]\n"
                                "                    out[n, f, i, j] = np.sum(win * w[f])\n"
                                "    cache = {'x': x, 'w': w, 'b': b, 'stride': stride, 'pad': pad}\n"
                                "    return out, cache")],
        "count_conv_params": [("forgot the input depth",
                               "def count_conv_params(c_in, c_out, kh, kw, bias=True):\n"
                               "    return (kh * kw + (1 if bias else 0)) * c_out")],
        "count_conv_macs": [("counted over the input size instead of the output size",
                             "def count_conv_macs(in_shape, c_out, kh, kw, stride=1, pad=0):\n"
                             "    c, h, w = in_shape\n    return c * kh * kw * c_out * h * w")],
        "conv_backward": [("db not summed over the batch",
                           _CONV_BACKWARD_HEAD +
                           "    N, C, H, W = x.shape\n    KH, KW = w.shape[2:]\n    Ho, Wo = dout.shape[2:]\n"
                           "    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n"
                           "    dxp = np.zeros(xp.shape)\n    dw = np.zeros(w.shape)\n"
                           "    db = dout.sum(axis=(2, 3))[0]\n"
                           "    for i in range(Ho):\n        for j in range(Wo):\n"
                           "            rows = slice(i * stride, i * stride + KH)\n"
                           "            cols = slice(j * stride, j * stride + KW)\n            g = dout[:, :, i, j]\n"
                           "            dw += np.tensordot(g, xp[:, :, rows, cols], axes=(0, 0))\n"
                           "            dxp[:, :, rows, cols] += np.tensordot(g, w, axes=(1, 0))\n"
                           "    dx = dxp[:, :, pad:pad + H, pad:pad + W]\n    return dx, dw, db",
                           ["test_conv_backward_db_public", "test_conv_backward_db_hidden"])],
    },
})
