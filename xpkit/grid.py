"""The grid of an experiment: the values to try for each key of the
configuration declared ``GridSearch[int]`` or ``GridSearch[float]``.

A key takes one value (``lr: 1e-3``), a list (``seed: [0, 1]``), a range
of integers, end excluded (``batch_size: {range: [32, 129, 32]}``), or a
geometric series (``lr: {range_mult: [1e-4, 3, 10]}``: start, count, factor).
experimaestro 2.7's ``GridSearch`` reads these forms; its ``generate_grid`` is
not used, for its defects in 2.7.0 (a one-element list becomes ``None``, a
scalar stays a string, ``-c`` drops the tag, ``range_mult`` on an integer key
truncates): here every value is converted and checked, and the experiment
tags what it needs itself. Delete :func:`read_grid`'s conversions and call
``generate_grid`` once those are fixed upstream. See ``docs/troubleshooting.md``.
"""

import contextlib
import itertools
import math
from typing import Annotated, Union, get_args, get_origin

import attr
import yaml
from experimaestro.experiments.grid import GenericParams

from .checks import ConfigurationError


def grid_keys(cfg) -> dict[str, type]:
    """The keys declared ``GridSearch[T]`` in the configuration's class, with T"""
    keys = {}
    for field in attr.fields(type(cfg)):
        if get_origin(field.type) is Annotated:
            union = get_args(field.type)[0]
            if get_origin(union) is Union and GenericParams in get_args(union):
                [kind] = [t for t in get_args(union) if t is not GenericParams]
                keys[field.name] = kind
    return keys


def convert(key: str, value, kind: type, form: str):
    """``value`` as a ``kind`` (int or float), or a ConfigurationError"""
    number = value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value) if kind is float else int(value)
    wrong = isinstance(number, bool) or not isinstance(number, (int, float))
    if not wrong and kind is int and isinstance(number, float):
        wrong = not number.is_integer()  # e.g. range_mult: [16, 3, 1.5]
    if wrong or not math.isfinite(number):
        what = "an integer" if kind is int else "a number"
        raise ConfigurationError(
            f"{key}: {value!r} is not allowed ({what}; given as {form})"
        )
    return kind(number)


def read_list(key: str, text: str):
    """A list given on the command line (``-c key=[1,2]``), read as YAML"""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not valid YAML"
    # Raised outside `except`: experimaestro 2.7 would print the YAML error
    raise ConfigurationError(
        f"{key}: {text!r} is not allowed ({problem}; e.g. -c '{key}=[1, 2]')"
    )


def values_of(key: str, raw, kind: type) -> list:
    """The checked values of one key, whatever the form it was given in"""
    if not isinstance(raw, GenericParams):
        raw = GenericParams.from_any(raw)
    if isinstance(raw.value, str) and raw.value.strip().startswith("["):
        raw = GenericParams.from_any(read_list(key, raw.value))  # -c key=[1,2]
    if raw.values_list is not None:
        form, values = f"the list {raw.values_list}", list(raw.values_list)
    elif raw.values_range is not None:
        form = f"range: {list(raw.values_range)}"
        values = [convert(key, v, int, form) for v in raw.values_range]
        if not 1 <= len(values) <= 3 or (len(values) == 3 and values[2] == 0):
            raise ConfigurationError(
                f"{key}: {form} is not allowed (give [start, stop, step], step not 0)"
            )
        values = list(range(*values))
    elif raw.values_mult is not None:
        form = f"range_mult: {list(raw.values_mult)}"
        if len(raw.values_mult) != 3:
            raise ConfigurationError(
                f"{key}: {form} is not allowed (give [start, count, factor])"
            )
        start, count, factor = (convert(key, v, float, form) for v in raw.values_mult)
        count = convert(key, count, int, form)
        values = [start * factor**i for i in range(count)]
    else:
        form, values = "a single value", [raw.value]
    if not values:
        raise ConfigurationError(
            f"{key}: {form} gives no value (give a non-empty list of values)"
        )
    values = [convert(key, value, kind, form) for value in values]
    for value in values:
        if values.count(value) > 1:
            raise ConfigurationError(f"{key}: {value!r} is given twice ({form})")
    return values


def read_grid(cfg) -> dict[str, list]:
    """The values to try for each grid key; also sets each key of ``cfg`` to
    its list of values, for :func:`~xpkit.checks.check_configuration`

    :raises ConfigurationError: naming the key and the value that is not allowed
    """
    grid = {}
    for key, kind in grid_keys(cfg).items():
        grid[key] = values_of(key, getattr(cfg, key), kind)
        setattr(cfg, key, grid[key])
    return grid


def combinations(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, one dict each"""
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
