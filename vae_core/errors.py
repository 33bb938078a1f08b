"""Exceptions shared by the vae_core command line tools."""


class CLIError(Exception):
    """A user-facing command line error.

    The message is one human sentence; the CLI prints it (without a traceback) and exits
    with a non-zero status.
    """
