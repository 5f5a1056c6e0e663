"""ipywidgets explorers. A widget cell shows ONE figure: the live widget when a front end that
renders widgets is attached (JupyterLab, Notebook, VS Code, Colab), otherwise a static figure
(headless nbclient/nbconvert runs, nbgrader's ``NBGRADER_EXECUTION``): never both, so a saved or
restarted notebook holds no stale static copy beside the widget, and grading never waits on one.

``CNNLAB_STATIC=1`` forces the static figure; ``CNNLAB_WIDGETS=1`` forces widgets (a front end
this module does not recognise).
"""

import os
import sys


def front_end_attached() -> bool:
    """Return True when the kernel serves a front end that renders widgets.

    A kernel started by a Jupyter server for a notebook session has ``JPY_SESSION_NAME`` set;
    VS Code defines ``__vsc_ipynb_file__`` in the user namespace; Colab imports ``google.colab``.
    Kernels started by nbclient (nbconvert, nbgrader, pytest) have none of these.
    """
    if os.environ.get("CNNLAB_WIDGETS"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    if os.environ.get("JPY_SESSION_NAME") or "google.colab" in sys.modules:
        return True
    return "__vsc_ipynb_file__" in getattr(shell, "user_ns", {})


def interactive_available() -> bool:
    """Return True when widgets should be built: a front end is attached and we are not graded."""
    if os.environ.get("NBGRADER_EXECUTION") or os.environ.get("CNNLAB_STATIC"):
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return front_end_attached()
