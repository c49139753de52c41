"""The one error type of satalab-lm: bad input, reported as one line, exit code 2."""


class LmError(Exception):
    """Bad input (a missing corpus, a checkpoint of another configuration, a
    capture of another model, an index out of range, an existing output).

    The command-line entry point prints ``satalab-lm: <message>`` on one line and
    exits with code 2 before anything is written."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))  # one line
