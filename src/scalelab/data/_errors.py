"""The one error of the data side (no numpy: the CLI and the spec import it)."""


class DataError(ValueError):
    """A data file or data set that cannot be used; the message says how to fix it."""
