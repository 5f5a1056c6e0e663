"""NumPy reference layers: the course's ground truth.

Every layer has ``*_forward(x, ...) -> (out, cache)`` and ``*_backward(dout, cache) -> grads``;
tensors are NCHW, conv weights (F, C, KH, KW), FC weights (D, M). Exact in float64 and correct in
float32 (a float32 input gives a float32 output). Bad input raises ``ValueError`` naming the problem.

Modules, one concept each:

- ``corr``     ``corr2d`` (cross-correlation) and ``conv2d_true`` (flipped kernel), one channel
- ``padding``  ``pad`` with zero, constant, reflect and replicate modes
- ``conv``     ``conv_forward_naive`` (loops), ``conv_forward`` (im2col + one matrix product),
               ``conv_backward`` (and a loop version, ``conv_backward_naive``)
- ``pool``     max, average and global average pooling
- ``norm``     batch norm (FC and spatial), layer norm, group norm, instance norm
- ``fold``     ``fold_batchnorm``: test-time batch norm merged into the layer before it
- ``layers``   affine, ReLU, tanh, flatten, softmax cross-entropy
- ``lenet``    LeNet-5 built from these layers; ``optim``: SGD (with momentum) and a training loop

Importing this package applies ``cnnlab._runtime`` once: glibc's allocator keeps large freed blocks
(no page faults on every training step), NumPy's BLAS gets one thread, and the layers share their
large products and copies out over the cores themselves, with threads that sleep while idle (so
PyTorch in the same process is not slowed down). ``CNNLAB_RUNTIME=0`` turns it off.
"""

from .. import _runtime
from .conv import conv_backward, conv_backward_naive, conv_forward, conv_forward_naive
from .corr import conv2d_true, corr2d
from .fold import fold_batchnorm
from .layers import (
    affine_backward,
    affine_forward,
    flatten_backward,
    flatten_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    tanh_backward,
    tanh_forward,
)
from .norm import (
    batchnorm_backward,
    batchnorm_forward,
    groupnorm_backward,
    groupnorm_forward,
    instancenorm_backward,
    instancenorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from .padding import PAD_MODES, pad
from .pool import (
    avg_pool_backward,
    avg_pool_forward,
    global_avg_pool_backward,
    global_avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)

# lenet.py and optim.py are H3's (imported last: they build on the layers above)
from .lenet import LENET_VARIANTS, lenet_features, lenet_init, lenet_loss
from .optim import lenet_predict, sgd, sgd_momentum, train_numpy

_runtime.apply()  # allocator and BLAS thread settings for training (see cnnlab._runtime)

__all__ = [
    "LENET_VARIANTS",
    "lenet_features",
    "lenet_init",
    "lenet_loss",
    "lenet_predict",
    "sgd",
    "sgd_momentum",
    "train_numpy",
    "PAD_MODES",
    "affine_backward",
    "affine_forward",
    "avg_pool_backward",
    "avg_pool_forward",
    "batchnorm_backward",
    "batchnorm_forward",
    "conv2d_true",
    "conv_backward",
    "conv_backward_naive",
    "conv_forward",
    "conv_forward_naive",
    "corr2d",
    "flatten_backward",
    "flatten_forward",
    "fold_batchnorm",
    "global_avg_pool_backward",
    "global_avg_pool_forward",
    "groupnorm_backward",
    "groupnorm_forward",
    "instancenorm_backward",
    "instancenorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "max_pool_backward",
    "max_pool_forward",
    "pad",
    "relu_backward",
    "relu_forward",
    "softmax_loss",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "tanh_backward",
    "tanh_forward",
]
