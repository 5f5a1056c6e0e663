"""``python -m autograder <command>``: see :mod:`autograder.cli`."""

import sys

from .cli import main

sys.exit(main())
