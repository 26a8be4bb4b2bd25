"""The errors seqlab words for its users: the CLI prints them in one line, Serve answers them as a 4xx."""


class SeqlabError(ValueError):
    """Bad input or configuration, worded for the user: what was wrong and what is expected."""


class BadInput(Exception):
    """A client error of a served request: its HTTP status and a message naming what was wrong and
    what is expected."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)  # picklable: it crosses from a model replica to the gateway
        self.status, self.message = status, message


class Refused:
    """A :class:`BadInput` handed back as a value from a model replica to the gateway: a client error
    is an answer, so the replica logs no traceback for it."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
