"""Data errors whose messages name the file or the fix; the CLI prints them as one line."""


class DataError(RuntimeError):
    """Missing, corrupt or unusable data. The message says what is wrong and how to fix it."""
