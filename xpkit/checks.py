"""Checks of the experiment's configuration, before any job is submitted.

experimaestro 2.7 checks the types of the YAML values but accepts unknown
keys silently (a typo such as ``epoch`` for ``epochs`` would run with the
default value) and any number: here every key and value is checked, and a bad
one stops the experiment with one message naming the key, the value and what
is allowed.
The allowed values of each setting are stated once: in the rules the
experiment gives :func:`check_configuration` (a number without a rule must be
positive), :data:`QUANTITIES` (the launcher requirement) and
:func:`check_batch_fits` (a limit that depends on the data).

Importing this module (the experiment does, to call
:func:`check_configuration`) makes ``run-experiment`` check the keys before it
builds the Configuration: see :func:`validate_known_keys`.
"""

import difflib
import math
import re
from pathlib import Path

import attr
from arpeggio import NoMatch
from experimaestro.exceptions import HandledException
from experimaestro.experiments import ConfigurationBase, cli
from experimaestro.launcherfinder.parser import parse
from experimaestro.launcherfinder.registry import LauncherRegistry
from experimaestro.utils.config import validate_attrs

from .launcher_support import (
    LAUNCHER_VARIABLE,
    LauncherError,
    launcher_choice,
    poll_interval,
    report_interval,
)


def positive(value) -> bool:
    """What :func:`check_configuration` asks of a number without a rule"""
    return math.isfinite(value) and value > 0


QUANTITIES = {
    "cores": "a job needs 1 core or more",
    "mem": "give a positive size, e.g. mem=4G, or leave mem out",
    "duration": "give a positive duration, e.g. duration=2h",
    "*": "experimaestro 2.7 would ask for 1 GPU; give *1 or more, or no GPU",
}
"""What is allowed for each quantity of the launcher requirement, which must
not be zero (the parser takes any number of digits)"""


class ConfigurationError(HandledException):
    """A value of the YAML configuration is missing, unknown or not allowed"""


def check_configuration(cfg, grid: tuple[str, ...], rules: dict):
    """Stops with one clear message if a key, a value or a launcher setting
    is not allowed

    :param cfg: the experiment's configuration, as experimaestro read it
    :param grid: the keys that hold lists of values to sweep
    :param rules: for a key, ``(test, allowed)``: a test that each of its
        values must pass, and what is allowed, in words; a number (int or
        float, bool excepted) without a rule must be positive
    :raises ConfigurationError: naming the key, its value and what is allowed
    :raises LauncherError: for a launcher environment variable or set-up that
        cannot work
    """
    check_keys(type(cfg))  # (already done by run-experiment, see below)

    def fail(key, value, allowed):
        raise ConfigurationError(f"{key}: {value!r} is not allowed ({allowed})")

    for key in grid:
        if not getattr(cfg, key):
            fail(key, getattr(cfg, key), "give a non-empty list of values")
    experimaestros = {field.name for field in attr.fields(ConfigurationBase)}
    for field in attr.fields(type(cfg)):
        if field.name in experimaestros:
            continue  # id, title...: experimaestro's own keys
        values = getattr(cfg, field.name)
        for value in values if field.name in grid else [values]:
            test, words = rules.get(field.name, (None, None))
            if test is None and is_number(value):
                test, words = positive, "a positive number"
            if test is not None and not test(value):
                fail(field.name, value, words)
    if problem := requirement_problem(cfg.launcher):
        fail("launcher", cfg.launcher, problem)
    poll_interval()  # XPKIT_SLURM_POLL, even when the jobs run on this machine
    report_interval()  # XPKIT_SLURM_REPORT, likewise
    check_launchers_file()


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_done_jobs(workspace, task: type, *files: str):
    """Stops if a job of ``task`` (a Task class) is marked done in the
    workspace but one of the files it wrote is gone (deleted by hand, by a
    clean-up script...): experimaestro would not run it again, and the jobs
    that read the file would fail on every run

    :param workspace: the experiment's workspace (``helper.xp.workspace``)
    :raises ConfigurationError: naming the job and the command that redoes it
    """
    identifier = str(task.__getxpmtype__().identifier)  # e.g. package.module.learn
    for folder in sorted((workspace.jobspath / identifier).glob("*")):
        done = folder / f"{identifier.rsplit('.', 1)[-1]}.done"
        gone = [name for name in files if not (folder / name).exists()]
        if done.exists() and gone:
            raise ConfigurationError(
                f"{folder} is done but its {', '.join(gone)} is gone: run"
                f" `rm {done}`, then the experiment again, to redo the job"
                " (from its last checkpoint if it has one)"
            )


def check_batch_fits(batch_size: int, n_validation: int, n_images: int):
    """Stops if a batch does not fit in the training examples left once the
    validation examples are held out (no training step would be made)

    :param n_validation: the examples held out (0 when none are)
    :param n_images: the number of training examples of the dataset
    :raises ConfigurationError: naming ``batch_size`` or ``n_validation``
    """
    batch, held_out = batch_size, n_validation
    if batch <= n_images - held_out:
        return
    # Blame the value that is out of the ordinary: most held out, or the batch
    if batch < n_images and (held_out >= n_images or held_out > n_images // 2):
        allowed = (
            f"the held-out images must leave one batch (batch_size={batch}) of"
            f" the {n_images:,} training images: at most {n_images - batch:,}"
        )
        key, value = "n_validation", held_out
    elif held_out == 0:
        allowed = f"a batch must fit in the {n_images:,} training images"
        key, value = "batch_size", batch
    else:
        left = n_images - held_out
        allowed = (
            f"a batch must fit in the training images left once n_validation="
            f"{held_out} are held out of {n_images:,}"
            + (f": at most {left:,}" if left >= 1 else "")
        )
        key, value = "batch_size", batch
    raise ConfigurationError(f"{key}: {value!r} is not allowed ({allowed})")


def requirement_problem(requirement: str) -> str | None:
    """Why a requirement string cannot work (None if it can): experimaestro
    cannot parse it, or a quantity is zero"""
    try:
        parse(requirement)
    except (NoMatch, ValueError) as error:  # bad syntax, memory without unit
        return f"{error}; e.g. 'duration=2h & cpu(cores=2)'"
    # The parsed requirement holds 0 for "not given" as for "0", and "*0"
    # gives one GPU: the quantities are read from the string (its syntax is
    # right: each is digits, after "cores=", "mem=", "duration=" or "*")
    quantity = r"(cores|mem|duration)\s*=\s*(\d+)[A-Za-z]*|(\*)\s*(\d+)"
    for match in re.finditer(quantity, requirement):
        name, digits = (match[1], match[2]) if match[1] else (match[3], match[4])
        if int(digits) == 0:
            return f"{match[0]} is zero: {QUANTITIES[name]}"
    return None


def check_launchers_file():
    """With ``XPKIT_LAUNCHER=slurm``, stops unless experimaestro uses xpkit's
    ``find_launcher`` (or one whose module imports xpkit's
    :func:`~xpkit.launcher_support.launcher_choice`, which reads the
    variable): any other, or none, would run the jobs on this machine without
    a word

    :raises LauncherError: saying which file experimaestro reads, and what to run
    """
    if launcher_choice() != "slurm":
        return
    registry = LauncherRegistry.instance()  # what find_launcher() will use
    path = LauncherRegistry.CURRENT_CONFIG_DIR / "launchers.py"
    function = registry.find_launcher_fn
    if function is not None and (
        launcher_choice in getattr(function, "__globals__", {}).values()
    ):
        return
    if not path.is_file():
        found = f"there is no {path}"
    elif function is None:
        found = f"{path} has no find_launcher function"
    else:
        found = f"{path} does not use xpkit's find_launcher"
    yours = (
        " (it keeps a file of yours: add `from xpkit.launchers import"
        " find_launcher` to it, or move it away first)"
        if path.exists()
        else ""
    )
    raise LauncherError(
        f"{LAUNCHER_VARIABLE}=slurm, but {found}: experimaestro would run the"
        f" jobs on this machine. Run `python -m xpkit.configure --workspace"
        f" FOLDER` to set it up{yours}"
    )


def check_keys(schema):
    """Stops if the user wrote a key that ``schema`` (the Configuration class)
    does not have, suggesting the closest one

    :raises ConfigurationError: naming the first unknown key
    """
    allowed = {field.name for field in attr.fields(schema)}
    for key in sorted((given_keys() or set()) - allowed):
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigurationError(
            f"{key}: unknown key{hint}. Allowed keys: {', '.join(sorted(allowed))}"
        )


def given_keys() -> set[str] | None:
    """The keys of the configuration as the user wrote them (YAML files and
    ``-c`` options), read again with experimaestro's own loader, since it
    drops unknown keys; None outside ``experimaestro run-experiment``

    :raises ConfigurationError: for a ``-c`` option without ``=``

    Workaround for experimaestro 2.7.0, which accepts unknown keys silently:
    delete once ``run-experiment`` refuses them itself.
    """
    import click
    from experimaestro.utils.config import from_dotlist

    context = click.get_current_context(silent=True)
    if context is None or "yaml_file" not in context.params:
        return None
    loader = cli.ConfigurationLoader()
    for path in (
        *context.params["pre_yaml"],
        context.params["yaml_file"],
        *context.params["post_yaml"],
    ):
        loader.load(Path(path))
    keys = {key for content in loader.yamls for key in content}
    for item in context.params["extra_conf"]:
        if "=" not in item:  # experimaestro would only warn, and ignore it
            raise ConfigurationError(f"-c {item}: give key=value, e.g. -c epochs=2")
    return keys | set(from_dotlist(context.params["extra_conf"]))


EXPERIMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What an experiment id may be: it names the folder ``experiments/<id>``"""


def check_experiment_id(experiment_id):
    """Stops unless the id names one folder inside ``experiments/``

    :raises ConfigurationError: naming the id and what is allowed
    """
    if not isinstance(experiment_id, str) or not EXPERIMENT_ID.fullmatch(experiment_id):
        raise ConfigurationError(
            f"id: {experiment_id!r} is not allowed (letters, digits, '_', '-' and"
            " '.', not '.' first: it names the folder experiments/<id> of the"
            " workspace)"
        )


def check_numbers_given_as_numbers(schema, configuration: dict):
    """Stops if a number was given as ``true`` or ``false`` (pydantic, under
    experimaestro 2.7, would read ``epochs: true`` as 1)

    :raises ConfigurationError: naming the key
    """
    for field in attr.fields(schema):
        value = configuration.get(field.name)
        if isinstance(value, bool) and field.type in (int, float):
            raise ConfigurationError(
                f"{field.name}: {str(value).lower()} is not allowed (a number, not true"
                " or false)"
            )


def validate_known_keys(schema, configuration: dict):
    """experimaestro's ``validate_attrs``, after :func:`check_keys` and
    :func:`check_experiment_id`

    Workaround for experimaestro 2.7.0, whose ``run-experiment`` builds the
    Configuration (``cli.validate_attrs``) before making the experiment's
    folders and calling ``run()``: a misspelled required key (``lrs`` for
    ``lr``) gave pydantic's "lr Field required" only, never naming the typo,
    and an id such as ``../x`` wrote the run outside the workspace. It prints
    our message after "Error in configuration:". Delete this function and the
    line below it once ``run-experiment`` refuses unknown keys and such ids.
    """
    check_keys(schema)
    check_numbers_given_as_numbers(schema, configuration)
    if configuration.get("id") is not None:  # (a missing id: "Field required")
        check_experiment_id(configuration["id"])
    return validate_attrs(schema, configuration)


cli.validate_attrs = validate_known_keys  # (the name run-experiment calls)
