"""The course on JupyterHub (issue 17): student workspaces, Unix accounts from the roster, and the
hub service that grades each submission as it arrives and hands its feedback back.

- :mod:`autograder.hub.workspace`: a student's own folder, never the release folder;
- :mod:`autograder.hub.accounts`: Unix accounts for the roster (``scripts/hub.sh add-users``);
- :mod:`autograder.hub.queue`: the one fair queue of the feedback service (pure logic);
- :mod:`autograder.hub.service`: the feedback service (``python -m autograder.hub.service``),
  started by JupyterHub with the hub (``jupyter/hub/jupyterhub_config.py``);
- :mod:`autograder.hub.settings`: which assignments get feedback on submit, and how many times
  (``python -m autograder.hub.settings``, run by the instructor).
"""
