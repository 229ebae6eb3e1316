"""The jobs of a run of the experiment, read back with experimaestro's state
provider and grouped into grid points by their tags."""

import json
from pathlib import Path

from experimaestro.scheduler.interfaces import JobFailureStatus


def state_name(job) -> str:
    """A job's state in words, as ``experimaestro jobs list`` prints it:
    ``DONE``, ``RUNNING``, ``WAITING``, ``READY``, ``SCHEDULED``,
    ``UNSCHEDULED``..., and ``FAIL`` for a failed job, with the reason when
    there is one other than the job's own error (e.g. ``FAIL (dependency)``
    for an evaluating job whose learning job failed); ``MISSING`` when there
    is no job"""
    if job is None:
        return "MISSING"
    state = job.state
    if state is None:
        return "UNSCHEDULED"
    if state.is_error():
        reason = getattr(state, "failure_reason", None)
        if reason is None or reason == JobFailureStatus.FAILED:
            return "FAIL"
        return f"FAIL ({reason.name.lower()})"
    return state.name.upper()


def point_label(tags: dict) -> str:
    """``lr=0.001,seed=0``: names a grid point in
    messages, legends and TensorBoard (``/`` is replaced, as it would make a
    sub-folder)"""
    return ",".join(f"{key}={value}" for key, value in tags.items()).replace("/", "_")


def read_json(path: Path | None) -> dict:
    """The content of a JSON file (an object), or ``{}`` when there is no such
    file

    :raises ValueError: naming the file, and the job folder to delete, when
        it is not a JSON object
    """
    if path is None or not Path(path).is_file():
        return {}
    try:
        content = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problem = f"not JSON: {error}"
    else:
        if isinstance(content, dict):
            return content
        problem = f"a {type(content).__name__}, not a JSON object"
    raise ValueError(
        f"{path} is damaged ({problem}): delete its job folder {Path(path).parent}"
        " and run the experiment again, which runs that job again"
    )


def existing_run(
    provider, workspace: Path, experiment_id: str, run_id: str | None
) -> str:
    """The run to read: ``run_id``; when it is None, the current run, or if
    that one has no job (refused by the checks), the latest run that has some

    :raises FileNotFoundError: if the workspace, the experiment or the run
        does not exist (the message lists what does)
    """
    experiments = workspace / "experiments"
    if not experiments.is_dir():
        raise FileNotFoundError(f"{workspace} holds no experiment: not a workspace")
    if run_id is None:
        run_id = provider.get_current_run(experiment_id)
        if run_id and not provider.get_jobs(experiment_id, run_id):
            run_id = latest_run_with_jobs(provider, experiment_id, run_id)
    if run_id and (experiments / experiment_id / run_id).is_dir():
        return run_id
    known = sorted(p.name for p in experiments.iterdir() if p.is_dir())
    if experiment_id not in known:
        raise FileNotFoundError(
            f"No experiment {experiment_id} in {workspace}"
            f" (experiments: {', '.join(known) or 'none'})"
        )
    runs = sorted(
        p.name
        for p in (experiments / experiment_id).iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )
    raise FileNotFoundError(
        f"No run {run_id} of {experiment_id} in {workspace}"
        f" (runs: {', '.join(runs) or 'none'})"
    )


def runs_with_jobs(provider, experiment_id: str) -> list[str]:
    """The runs of an experiment that have jobs, oldest first (a run refused
    by the checks has none)"""
    runs = sorted(run.run_id for run in provider.get_experiment_runs(experiment_id))
    return [run_id for run_id in runs if provider.get_jobs(experiment_id, run_id)]


def latest_run_with_jobs(provider, experiment_id: str, current: str) -> str:
    """The latest run of an experiment that has jobs (``current`` if none has)"""
    return (runs_with_jobs(provider, experiment_id) or [current])[-1]


ROLES = {"summary_path": "learn", "results_path": "evaluate"}
"""How the table tells a job's role from its task's declarations: a task that
learns declares ``summary_path`` (its final validation metrics, JSON), one
that evaluates declares ``results_path`` (its test metrics, JSON)"""


def task_roles(configs: dict) -> dict[str, str]:
    """The role (``learn`` or ``evaluate``) of each task id of a run, read
    from the declarations of the tasks' configurations (see :data:`ROLES`)"""
    roles = {}
    for config in configs.values():
        for name, role in ROLES.items():
            if name in type(config).__xpmtype__.arguments:
                roles[str(type(config).__xpmtype__.identifier)] = role
    return roles


def grid_points(provider, experiment_id: str, run_id: str) -> tuple[list, list]:
    """The jobs of a run grouped into grid points by their tags

    :return: the points, each ``{"tags": {name: value}, "learn": (job,
        configuration), "evaluate": (job, configuration)}`` (a role without a
        job in the run is missing), and the tag names in the order the
        experiment set them
    :raises ValueError: if two jobs of one role have the same tags
    """
    configs = provider.load_xp_info(experiment_id, run_id).jobs
    tags_map = provider.get_tags_map(experiment_id, run_id)
    roles = task_roles(configs)
    points: dict[tuple, dict] = {}
    tag_names: list[str] = []
    for job in provider.get_jobs(experiment_id, run_id):
        role = roles.get(job.task_id)
        if role is None:
            continue  # a task that neither learns nor evaluates
        # None while the experiment has not written it yet (just submitted)
        config = configs.get(job.identifier)
        tags = dict(tags_map.get(job.identifier, {}))
        tag_names += [name for name in tags if name not in tag_names]
        point = points.setdefault(tuple(tags.items()), {"tags": tags})
        if role in point:
            raise ValueError(
                f"Two {role} jobs of {experiment_id}/{run_id} have the tags"
                f" {point_label(tags) or '(none)'}: {point[role][0].path} and"
                f" {job.path}. Tag the parameters that differ between them"
            )
        point[role] = (job, config)
    return list(points.values()), tag_names
