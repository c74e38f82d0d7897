"""The one exception type that launch.py turns into a one-line message and a non-zero exit."""


class UserError(Exception):
  """A problem the user can fix (bad config, missing files, incompatible workdir).

  The message names the problem and the fix; no traceback is shown for it.
  """


class NonFiniteError(UserError):
  """Training produced NaN or inf; the message names the step and the last good checkpoint."""
