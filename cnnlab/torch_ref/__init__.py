"""PyTorch twins of the NumPy reference layers, LeNet-5, and a training loop.

- Functional twins (``conv_forward``, ``max_pool``, ``batchnorm``, ...) accept NumPy arrays
  (computed on the CPU in float64, or float32 when the inputs are float32; NumPy comes back) or
  tensors (tensors come back, autograd works). They are the independent oracle the checks use.
- ``LeNet5``: classic and modern variants, weights exchangeable with ``cnnlab.numpy_ref.lenet``.
- ``train``, ``evaluate``, ``predict``, ``confusion_matrix``: on ``device()`` (CUDA, then MPS,
  then CPU) unless told otherwise.
"""

from .functional import (
    affine,
    avg_pool,
    avg_pool_backward,
    batchnorm,
    conv2d_true,
    conv_backward,
    conv_forward,
    corr2d,
    device,
    flatten,
    global_avg_pool,
    groupnorm,
    instancenorm,
    layernorm,
    max_pool,
    max_pool_backward,
    pad,
    relu,
    softmax_loss,
    tanh,
    vjp,
)
from .models import LeNet5
from .training import confusion_matrix, evaluate, predict, train

__all__ = [
    "affine",
    "avg_pool",
    "avg_pool_backward",
    "batchnorm",
    "conv2d_true",
    "conv_backward",
    "conv_forward",
    "corr2d",
    "device",
    "flatten",
    "global_avg_pool",
    "groupnorm",
    "instancenorm",
    "layernorm",
    "max_pool",
    "max_pool_backward",
    "pad",
    "relu",
    "softmax_loss",
    "tanh",
    "vjp",
    "LeNet5",
    "confusion_matrix",
    "evaluate",
    "predict",
    "train",
]
