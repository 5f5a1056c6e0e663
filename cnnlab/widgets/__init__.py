"""ipywidgets explorers; each one degrades to a static figure when no front end is attached
(or under nbgrader's ``NBGRADER_EXECUTION``), so grading never hangs on a widget."""

import os


def interactive_available() -> bool:
    """Return True when widgets can be shown: ipywidgets imports and we are not being graded."""
    if os.environ.get("NBGRADER_EXECUTION") or os.environ.get("CNNLAB_STATIC"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
