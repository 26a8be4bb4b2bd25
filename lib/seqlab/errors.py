"""The one exception type that the CLI turns into a one-line message."""


class SeqlabError(ValueError):
    """Bad input or configuration, worded for the user: what was wrong and what is expected."""
