"""cnnlab: reference implementations, checks and data for a course on convolutional networks.

Modules (import the one you need; nothing heavy is imported here):

- ``cnnlab.shapes``     size arithmetic: output sizes, padding, parameter and multiply-add counts
- ``cnnlab.numpy_ref``  NumPy reference layers, the course's ground truth
- ``cnnlab.torch_ref``  the same operations and LeNet-5 on PyTorch (GPU when present)
- ``cnnlab.grading``    closeness checks, gradient checks, case generators, integrity guard
- ``cnnlab.checks``     one check per notebook exercise (public and hidden tiers)
- ``cnnlab.data``       embedded digits, a sample photograph, synthetic images, an MNIST loader
- ``cnnlab.viz``        matplotlib figures;  ``cnnlab.widgets``: ipywidgets explorers
"""

__version__ = "0.1.0"
