"""Errors whose one-line messages name the problem and the fix; the CLIs print them and exit 2."""


class ConfigError(ValueError):
    """A config value that cannot work. The message names field, value and allowed values."""


def fail(field: str, value, allowed: str):
    raise ConfigError(f"config.{field}={value!r} is invalid: {allowed}")


def check_positive_int(section, name: str, prefix: str, allow_zero: bool = False) -> None:
    value = section[name]
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        fail(f"{prefix}.{name}", value, f"must be a {kind} integer")


def check_positive_ints(section, name: str, prefix: str, allow_empty: bool = False) -> None:
    value = tuple(section[name])
    if (not value and not allow_empty) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        fail(f"{prefix}.{name}", section[name], "must be a tuple of positive integers")


def check_choice(section, name: str, prefix: str, options) -> None:
    if section[name] not in options:
        fail(f"{prefix}.{name}", section[name], f"choose one of {sorted(options)}")
