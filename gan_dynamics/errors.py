"""The project's one exception for what a user can fix (config, data, checkpoint, workdir).

Entry points print its message alone (no traceback) and exit with status 2.
"""


class UserError(Exception):
    """A problem the user can fix; the message says what was wrong and how to fix it."""
