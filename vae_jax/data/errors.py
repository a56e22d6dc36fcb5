"""Data errors whose messages name the file or the fix; the CLI prints them as one line."""

from vae_jax.errors import RunError


class DataError(RunError):
    """Missing, corrupt or unusable data. The message says what is wrong and how to fix it."""
