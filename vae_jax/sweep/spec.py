"""What a sweep is: axes of values, their product as members, and the members grouped so
that each group trains as one vmapped program.

    axes = parse_axes(["hyper.beta=0.25,0.5,1", "seed=0,1"], config)
    members = expand(config, axes)        # [Member(name, config, values)], the product
    groups = group(members)               # members that differ only in traced values

Traced values are the ones the train step takes as arguments, so one compiled program
serves every value: the `hyper.*` fields (β, ...) and the seed (it sets the initial
params and the batch order and draws, all data). Members that differ in anything else
(a latent size, a net, a learning rate) form groups that run one after another.
"""

from __future__ import annotations

import itertools
import json
from typing import NamedTuple

import ml_collections

from vae_jax.errors import ConfigError
from vae_jax.hyper import Hyper


class Member(NamedTuple):
    name: str  # its subfolder: "beta=0.25_seed=0"
    config: ml_collections.ConfigDict
    values: dict  # the swept field -> this member's value


def traced(field: str) -> bool:
    """Whether sweeping `field` keeps the train step's program (a traced argument): the
    seed, and the `hyper.*` fields that reach the step as Hyper values. Another hyper.*
    field is read when the objective is built, so members differing in it form groups."""
    return field == "seed" or field.removeprefix("hyper.") in Hyper._fields


def _lookup(config, field: str):
    node = config
    for part in field.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise ConfigError(f"--sweep field '{field}' is not a config field")
        node = node[part]
    if isinstance(node, ml_collections.ConfigDict):
        raise ConfigError(f"--sweep field '{field}' is a section; sweep one of its fields")
    return node


def _typed(value: str, like, field: str):
    try:
        if isinstance(like, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if isinstance(like, (int, float, str)):
            return type(like)(value)
        parsed = json.loads(value)  # tuples: "[512,256]"
        if isinstance(like, tuple) and not isinstance(parsed, list):
            raise ValueError(value)
        return parsed
    except ValueError:
        hint = " (give tuples as JSON lists separated by ';': [512,256];[64])" * isinstance(
            like, tuple
        )
        raise ConfigError(
            f"--sweep {field}: cannot read '{value}' as {type(like).__name__}{hint}"
        ) from None


def parse_axes(specs, config) -> list[tuple[str, list]]:
    """['hyper.beta=0.25,0.5', ...] -> [('hyper.beta', [0.25, 0.5]), ...], each value typed
    like the config's field. Tuple values are JSON lists ('model.mlp.hidden_dims=[512],[64]'
    is not splittable by commas: give one --sweep per such value set joined by ';')."""
    axes, seen = [], set()
    for spec in specs:
        field, eq, values = spec.partition("=")
        field = field.strip()
        if not eq or not values.strip():
            raise ConfigError(f"--sweep '{spec}' must look like FIELD=V1,V2,...")
        if field in seen:
            raise ConfigError(f"--sweep field '{field}' is given twice")
        seen.add(field)
        like = _lookup(config, field)
        sep = ";" if ";" in values else ","
        parsed = [_typed(v.strip(), like, field) for v in values.split(sep) if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"--sweep {field}: a value is repeated ({values})")
        axes.append((field, parsed))
    return axes


def _short(field: str) -> str:
    return field.rsplit(".", 1)[-1]


def _member_name(values: dict) -> str:
    parts = []
    for field, value in values.items():
        text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{_short(field)}={text}".replace("/", "_").replace(" ", ""))
    return "_".join(parts)


def expand(config, axes) -> list[Member]:
    """The product of the axes: one Member per combination, in order (the last axis
    fastest). Each member's config is `config` with its values set and no sweep."""
    if not axes:
        raise ConfigError("no sweep: give --sweep FIELD=V1,V2,... or a config with `sweep`")
    shorts = [_short(f) for f, _ in axes]
    if len(set(shorts)) != len(shorts):
        raise ConfigError(f"swept fields must end in different names: {[f for f, _ in axes]}")
    members = []
    for combo in itertools.product(*(values for _, values in axes)):
        values = {field: value for (field, _), value in zip(axes, combo, strict=True)}
        member = ml_collections.ConfigDict(config.to_dict())
        member.sweep = ()
        for field, value in values.items():
            *sections, name = field.split(".")
            node = member
            for section in sections:
                node = node[section]
            node[name] = tuple(value) if isinstance(value, list) else value
        members.append(Member(_member_name(values), member, values))
    return members


def group(members: list[Member]) -> list[list[Member]]:
    """Members that differ only in traced fields, together; groups in first-seen order."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        key = {k: v for k, v in m.values.items() if not traced(k)}
        groups.setdefault(json.dumps(key, sort_keys=True, default=str), []).append(m)
    return list(groups.values())
