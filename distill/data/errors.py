"""Errors of the data stages."""


class CorpusError(RuntimeError):
    """The corpus on disk is missing or has faults; the message names the files and the fix."""
