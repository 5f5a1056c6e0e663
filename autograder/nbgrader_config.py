"""nbgrader configuration for the cnnlab course (loaded by autograder.config)."""
c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

# Paths are filled in by autograder.config.course_config(): solutions/ is the source folder,
# notebooks/ the release folder, and an instructor work folder holds the gradebook and the
# submitted / autograded / feedback steps.

c.Execute.timeout = 60                      # per cell, seconds
c.Execute.interrupt_on_timeout = True
c.OverwriteCells.add_missing_cells = True   # a deleted test cell is restored, not "needs manual grade"
c.IgnorePattern.enabled = True              # warnings on stderr must not zero a passing test cell
c.IgnorePattern.pattern = r".*(Warning|warn|DeprecationWarning|UserWarning).*"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60
