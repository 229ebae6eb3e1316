"""Checks of the experiment's configuration, before any job is submitted.

experimaestro 2.7 checks the types of the YAML values but accepts unknown
keys silently (a typo such as ``hidden_dims`` would run the default grid) and
any number: here every key and value is checked, and a bad one stops the
experiment with one message naming the key, the value and what is allowed.
The allowed values of each setting are stated here, and only here.
"""

import math
from pathlib import Path

import attr
from arpeggio import NoMatch
from experimaestro.exceptions import HandledException
from experimaestro.launcherfinder.parser import parse


def positive_integer(value) -> bool:
    return value >= 1


def positive_number(value) -> bool:
    return math.isfinite(value) and value > 0


RULES = {
    "n_layers": (lambda v: 1 <= v <= 4, "1 to 4: each block halves the 28-pixel side"),
    "hidden_dim": (positive_integer, "a positive number of channels"),
    "kernel_size": (
        lambda v: v % 2 == 1 and 1 <= v <= 27,
        "an odd number of pixels, 1 to 27",
    ),
    "epochs": (positive_integer, "a positive integer"),
    "batch_size": (positive_integer, "a positive integer"),
    "n_val": (positive_integer, "a positive integer"),
    "n_validation": (positive_integer, "a positive integer"),
    "checkpoint_every": (positive_integer, "a positive integer"),
    "lr": (positive_number, "a positive number"),
    "time_margin": (positive_number, "a positive number"),
}
"""For each key: a test that its value (each value, for a list) must pass,
and what is allowed, in words"""


class ConfigurationError(HandledException):
    """A value of the YAML configuration is missing, unknown or not allowed"""


def check_configuration(cfg, grid: tuple[str, ...]):
    """Stops with one clear message if a key or a value is not allowed

    :param cfg: the experiment's configuration, as experimaestro read it
    :param grid: the keys that hold lists of values to sweep
    :raises ConfigurationError: naming the key, its value and what is allowed
    """
    allowed = {field.name for field in attr.fields(type(cfg))}
    for key in sorted((given_keys() or set()) - allowed):
        raise ConfigurationError(
            f"{key}: unknown key. Allowed keys: {', '.join(sorted(allowed))}"
        )

    def fail(key, value, allowed):
        raise ConfigurationError(f"{key}: {value!r} is not allowed ({allowed})")

    for key in grid:
        if not getattr(cfg, key):
            fail(key, getattr(cfg, key), "give a non-empty list of values")
    for key, (test, words) in RULES.items():
        values = getattr(cfg, key)
        for value in values if key in grid else [values]:
            if not test(value):
                fail(key, value, words)
    if problem := requirement_problem(cfg.launcher):
        fail("launcher", cfg.launcher, f"{problem}; e.g. 'duration=2h & cpu(cores=2)'")


def requirement_problem(requirement: str) -> str | None:
    """Why experimaestro cannot parse a requirement string (None if it can)"""
    try:
        parse(requirement)
    except (NoMatch, ValueError) as error:  # bad syntax, memory without unit
        return str(error)
    return None


def given_keys() -> set[str] | None:
    """The keys of the configuration as the user wrote them (YAML files and
    ``-c`` options), read again with experimaestro's own loader, since it
    drops unknown keys; None outside ``experimaestro run-experiment``

    Workaround for experimaestro 2.7.0, which accepts unknown keys silently:
    delete once ``run-experiment`` refuses them itself.
    """
    import click
    from experimaestro.experiments.cli import ConfigurationLoader
    from experimaestro.utils.config import from_dotlist

    context = click.get_current_context(silent=True)
    if context is None or "yaml_file" not in context.params:
        return None
    loader = ConfigurationLoader()
    for path in (
        *context.params["pre_yaml"],
        context.params["yaml_file"],
        *context.params["post_yaml"],
    ):
        loader.load(Path(path))
    keys = {key for content in loader.yamls for key in content}
    return keys | set(from_dotlist(context.params["extra_conf"]))
