"""The outputs of docs/troubleshooting.md (see shown_outputs.py)

Each scenario of the page runs in sandboxes of its own, through the real
``experimaestro run-experiment``, on the shipped sample. The runs mostly wait
(experimaestro's start, its lock, its scheduler), so the first output asked
for runs every scenario at once, in threads (two to three minutes in all,
on two shared cores); the others take what their scenario returned. The
full-disk scenario mounts a tmpfs: root only (test_data_faults.small_disk).
"""

import functools
import gzip
import shutil
import signal
import sys
from concurrent.futures import Future, ThreadPoolExecutor

import yaml
from conftest import (
    REPO,
    SAMPLE,
    SAMPLE_YAML,
    Sandbox,
    kill_at_first_checkpoint,
    processes_of,
    stop,
)
from shown_outputs import ROOT, Runs, lines_with, missing, output
from test_data_faults import (
    FULL_DISK_YAML,
    flip_a_byte,
    prepare,
    read_only,
    small_disk,
)
from test_failures import FAILING_YAML
from test_tracebacks import ctrl_c_while_learning

DEBUG = REPO / "debug.yaml"
PROGRESS = r"\d+%\|[^|]*\| *\d+/\d+ \[[^\]]*\]"
"""A tqdm progress bar (its position and speed change from run to run)"""


def at_once(calls: dict) -> dict[object, Future]:
    """Calls each function of ``calls`` (by key, none taking an argument) in
    a thread of its own, all at once; their futures, once all have ended"""
    with ThreadPoolExecutor(len(calls)) as pool:
        return {key: pool.submit(call) for key, call in calls.items()}


def both(process) -> str:
    return process.stdout + process.stderr


def message(process) -> str:
    """The line ``Experiment failed: ...`` and those after it (a message
    may hold several lines)"""
    text = process.stderr
    start = text.rindex("Experiment failed: ")
    return text[start:]


def experiments(sandbox: Sandbox, cases: dict[str, tuple]) -> dict[str, object]:
    """Runs ``sandbox.experiment(*args)`` for every case at once (each case
    has an experiment id of its own, so none waits for the lock of another)"""
    futures = at_once(
        {
            name: functools.partial(sandbox.experiment, *args, check=False)
            for name, args in cases.items()
        }
    )
    return {name: future.result() for name, future in futures.items()}


def bad_yaml(sandbox: Sandbox, name: str, lines: str):
    """A YAML file importing debug.yaml with ``lines`` added"""
    path = sandbox.home.parent / f"{name}.yaml"
    path.write_text(f"imports: [{DEBUG}]\nid: MNIST_{name}\n{lines}\n")
    return path


# --- The scenarios


def failing_point(runs: Runs):
    """tests/failing.yaml: one of its two points runs out of memory"""
    sandbox = runs.sandbox("troubleshooting-failing")
    return sandbox.experiment(FAILING_YAML, check=False)


def bad_input(runs: Runs) -> dict[str, object]:
    """The mistakes of the YAML files, each run once in one sandbox"""
    sandbox = runs.sandbox("troubleshooting-bad-input")
    root = sandbox.home.parent
    # params.yaml with hidden_dims: for hidden_dim (its pythonpath "." is
    # the repository: given in full, the file being elsewhere)
    params = [
        line.replace("hidden_dim:", "hidden_dims:", 1)
        for line in (REPO / "params.yaml").read_text().splitlines()
        if not line.startswith("pythonpath:")
    ]
    misspelled = root / "params.yaml"
    misspelled.write_text("\n".join(params) + f"\npythonpath: [{REPO}]\n")
    syntax = root / "syntax.yaml"
    syntax.write_text(f"imports: [{DEBUG}]\nid: MNIST_syntax\nhidden_dim: [8\n")
    cases = {
        "misspelled": (misspelled,),
        "syntax": (syntax,),
        "nothere": (root / "nothere.yaml",),
    }
    for name, lines in {
        "type": "epochs: five",
        "kernel": "kernel_size: [4]",
        "memory": 'launcher: "gpu(mem=4)"',
        "duration": 'launcher: "duration=0h & cpu(cores=2)"',
        "validation": "n_validation: 4990",
    }.items():
        cases[name] = (bad_yaml(sandbox, name, lines),)
    done = experiments(sandbox, cases)
    assert not (sandbox.workspace / "jobs").exists(), "a job was submitted"
    return done


def slurm_without_setup(runs: Runs):
    """XPKIT_LAUNCHER=slurm, ~/.config/experimaestro/launchers.py missing"""
    sandbox = runs.sandbox("troubleshooting-slurm-setup")
    (sandbox.home / ".config" / "experimaestro" / "launchers.py").unlink()
    sandbox.env["XPKIT_LAUNCHER"] = "slurm"
    return sandbox.experiment(DEBUG, check=False)


def damaged_mirror(sandbox: Sandbox, damage: str):
    """debug.yaml with MNIST_XP_MIRROR a copy of the sample, damaged"""
    root = sandbox.home.parent
    mirror = root / "mirror"
    shutil.copytree(SAMPLE, mirror)
    sandbox.env["MNIST_XP_MIRROR"] = str(mirror)
    images = mirror / "train-images-idx3-ubyte.gz"
    if damage == "nowhere":
        sandbox.env["MNIST_XP_MIRROR"] = str(root / "nowhere")
    elif damage == "missing file":
        (mirror / "t10k-labels-idx1-ubyte.gz").unlink()
    elif damage == "truncated gz":
        images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    elif damage == "not gzipped":  # a web server's error page, saved as the file
        images.write_text("<html><body>404 Not Found</body></html>\n")
    elif damage == "truncated content":  # gzipped whole, of half the images
        content = gzip.decompress(images.read_bytes())
        images.write_bytes(gzip.compress(content[: len(content) // 2]))
    elif damage == "no network":  # every download through a proxy that is not
        del sandbox.env["MNIST_XP_MIRROR"]
        sandbox.env.update(
            http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9"
        )
    return sandbox.experiment(DEBUG, check=False)


DAMAGES = (
    "nowhere",
    "missing file",
    "truncated gz",
    "not gzipped",
    "truncated content",
    "no network",
)


def mirror_faults(runs: Runs) -> dict[str, object]:
    """Every damage of DAMAGES, each in a sandbox of its own"""
    sandboxes = {
        damage: runs.sandbox(f"troubleshooting-mirror-{damage.replace(' ', '-')}")
        for damage in DAMAGES
    }
    futures = at_once(
        {
            damage: functools.partial(damaged_mirror, sandbox, damage)
            for damage, sandbox in sandboxes.items()
        }
    )
    return {damage: future.result() for damage, future in futures.items()}


def damaged_copy(runs: Runs) -> dict[str, object]:
    """datamaestro's copy of MNIST damaged: a run that cannot fetch the file
    again, one that repairs it, and a job that finds it damaged after the
    experiment checked it"""
    sandbox = runs.sandbox("troubleshooting-damaged-copy")
    raw = prepare(sandbox)
    flip_a_byte(raw / "train-images-idx3-ubyte")
    sandbox.env["MNIST_XP_MIRROR"] = str(sandbox.home.parent / "nowhere")
    done = {"not fetched": sandbox.experiment(SAMPLE_YAML, check=False)}
    sandbox.env["MNIST_XP_MIRROR"] = str(SAMPLE)
    # Repaired, and the jobs written without being started; the file is then
    # damaged, and the Learn job started by its own script, as a launcher would
    done["repaired"] = sandbox.experiment(SAMPLE_YAML, "--run-mode", "generate_only")
    flip_a_byte(raw / "train-images-idx3-ubyte")
    [job] = sandbox.jobs("learn")
    done["job"] = sandbox.run([sys.executable, job / "learn.py"], cwd=job, check=False)
    return done


def full_disk(runs: Runs) -> dict[str, str]:
    """tests/resume.yaml with its job folders on a 1 MiB tmpfs, 320 KiB
    free: the experiment's output and the job's log"""
    sandbox = runs.sandbox("troubleshooting-full-disk")
    path = sandbox.home.parent / "full_disk.yaml"
    path.write_text(FULL_DISK_YAML.format(resume=REPO / "tests" / "resume.yaml"))
    with small_disk(sandbox.workspace / "jobs", "1m") as jobs:
        ballast = jobs / "ballast"
        ballast.write_bytes(bytes(shutil.disk_usage(jobs).free - (320 << 10)))
        process = sandbox.experiment(path, check=False)
        [job] = sandbox.jobs("learn")
        return {"experiment": both(process), "log": (job / "learn.err").read_text()}


def damaged_checkpoint(runs: Runs) -> str:
    """tests/resume.yaml: its Learn job killed (-9) at its first checkpoint,
    the checkpoint then cut short; the job's log, once run again"""
    sandbox = runs.sandbox("troubleshooting-damaged-checkpoint")
    resume = REPO / "tests" / "resume.yaml"
    with sandbox.background_experiment(resume) as experiment:
        job = kill_at_first_checkpoint(sandbox, experiment, signal.SIGKILL)
        experiment.wait(timeout=120)
    checkpoint = job / "checkpoint.pth"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    sandbox.experiment(resume)
    return (job / "learn.err").read_text()


def damaged_job_files(runs: Runs) -> dict[str, object]:
    """The sample's jobs done, then: parameters.pth of the Learn job deleted
    (the rerun stops; the command it gives redoes the job), results.json of
    the Evaluate job damaged (the analysis and the rerun name it), and a run
    refused by the checks (the analysis passes over it)"""
    sandbox = runs.sandbox("troubleshooting-job-files")
    sandbox.experiment(SAMPLE_YAML)
    [learn], [evaluate] = sandbox.jobs("learn"), sandbox.jobs("evaluate")
    (learn / "parameters.pth").unlink()
    done = {"parameters": sandbox.experiment(SAMPLE_YAML, check=False)}
    sandbox.run(f"rm {learn / 'learn.done'}")
    sandbox.experiment(SAMPLE_YAML)
    (evaluate / "results.json").write_text('{"loss": 0.1, "accur')
    analyze = "python -m xpkit.analyze --experiment MNIST_sample"
    done["analysis"] = sandbox.run(analyze, check=False)
    shutil.rmtree(evaluate)
    sandbox.experiment(SAMPLE_YAML)
    sandbox.experiment(SAMPLE_YAML, "-c", "lr=0", check=False)
    done["passed over"] = sandbox.run(analyze)
    return done


def data_folder(runs: Runs) -> dict[str, object]:
    """datamaestro's folder read-only (root only: a read-only mount), or a
    file named by DATAMAESTRO_DIR"""
    done = {}
    sandbox = runs.sandbox("troubleshooting-data-folder-file")
    file = sandbox.home.parent / "datamaestro"
    file.write_text("not a folder\n")
    sandbox.env["DATAMAESTRO_DIR"] = str(file)
    done["a file"] = sandbox.experiment(DEBUG, check=False)
    if not missing([ROOT]):
        sandbox = runs.sandbox("troubleshooting-data-folder-read-only")
        with read_only(sandbox.home / "datamaestro"):
            done["read-only"] = sandbox.experiment(DEBUG, check=False)
    return done


def ctrl_c(runs: Runs) -> str:
    """Ctrl+C (SIGINT to the process group) while the Learn job of
    tests/long.yaml trains; the job is then killed (it would go on)"""
    sandbox = runs.sandbox("troubleshooting-ctrl-c")
    log = sandbox.home.parent / "experiment.log"
    ctrl_c_while_learning(sandbox, log)
    stop(processes_of(sandbox))
    return log.read_text()


def full_disk_results(runs: Runs) -> str:
    """python -m xpkit.analyze --output on a 1 MiB tmpfs with 4 KiB free"""
    sandbox = runs.sandbox("troubleshooting-results-disk")
    sandbox.experiment(SAMPLE_YAML)
    with small_disk(sandbox.home.parent / "disk", "1m") as disk:
        ballast = disk / "ballast"
        ballast.write_bytes(bytes(shutil.disk_usage(disk).free - (4 << 10)))
        analyze = [sys.executable, "-m", "xpkit.analyze", "--output"]
        return sandbox.run([*analyze, disk / "results"], check=False).stderr


def own_workspace(runs: Runs):
    """A workspace of one's own listed first in settings.yaml, and an
    experiment whose id does not start with MNIST_"""
    sandbox = runs.sandbox("troubleshooting-own-workspace")
    settings_file = sandbox.home / ".config" / "experimaestro" / "settings.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    mine = {"id": "mine", "path": str(sandbox.home.parent / "mine")}
    settings["workspaces"].insert(0, mine)
    settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    path = sandbox.home.parent / "mnist_debug.yaml"
    path.write_text(f"imports: [{DEBUG}]\nid: mnist_debug\n")
    return sandbox.experiment(path)


SCENARIOS = (
    failing_point,
    bad_input,
    slurm_without_setup,
    mirror_faults,
    damaged_copy,
    *([] if missing([ROOT]) else [full_disk]),
    damaged_checkpoint,
    damaged_job_files,
    own_workspace,
    data_folder,
    ctrl_c,
    *([] if missing([ROOT]) else [full_disk_results]),
)


def every_scenario(runs: Runs) -> dict[object, Future]:
    """Every scenario, run at once (their runs wait more than they compute);
    returns when all have ended, so that none outlives the sandboxes' folder"""
    return at_once(
        {scenario: functools.partial(scenario, runs) for scenario in SCENARIOS}
    )


def ran(runs: Runs, scenario):
    """What ``scenario`` returned (every scenario is run the first time)"""
    return runs.once(every_scenario)[scenario].result()


# --- The outputs, in the order of the page


@output("troubleshooting-failed-points")
def failed_points(runs: Runs) -> str:
    """The last lines of the experiment: the failed points"""
    process = ran(runs, failing_point)
    assert process.returncode == 1
    return runs.tidy(lines_with(process.stderr, "grid points failed:", ": learn FAIL"))


@output("troubleshooting-unknown-key")
def unknown_key(runs: Runs) -> str:
    return runs.tidy(ran(runs, bad_input)["misspelled"].stderr)


@output("troubleshooting-wrong-type")
def wrong_type(runs: Runs) -> str:
    """From the key's line on (before it: Error in configuration, and the
    count of errors)"""
    text = ran(runs, bad_input)["type"].stderr
    return runs.tidy(text[text.index("epochs\n") :])


@output("troubleshooting-impossible-value")
def impossible_value(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, bad_input)["kernel"]))


@output("troubleshooting-unparsable-requirement")
def unparsable_requirement(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, bad_input)["memory"]))


@output("troubleshooting-zero-duration")
def zero_duration(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, bad_input)["duration"]))


@output("troubleshooting-validation-too-large")
def validation_too_large(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, bad_input)["validation"]))


@output("troubleshooting-slurm-without-setup")
def slurm_setup(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, slurm_without_setup)))


def mirror_message(runs: Runs, damage: str) -> str:
    return runs.tidy(message(ran(runs, mirror_faults)[damage]))


@output("troubleshooting-mirror-not-a-folder")
def mirror_not_a_folder(runs: Runs) -> str:
    return mirror_message(runs, "nowhere")


@output("troubleshooting-mirror-missing-file")
def mirror_missing_file(runs: Runs) -> str:
    return mirror_message(runs, "missing file")


@output("troubleshooting-mirror-truncated-gz")
def mirror_truncated_gz(runs: Runs) -> str:
    return mirror_message(runs, "truncated gz")


@output("troubleshooting-mirror-not-gzipped")
def mirror_not_gzipped(runs: Runs) -> str:
    return mirror_message(runs, "not gzipped")


@output("troubleshooting-no-network")
def no_network(runs: Runs) -> str:
    return mirror_message(runs, "no network")


@output("troubleshooting-wrong-checksum")
def wrong_checksum(runs: Runs) -> str:
    return mirror_message(runs, "truncated content")


@output("troubleshooting-repaired")
def repaired(runs: Runs) -> str:
    """The line that says which file was repaired"""
    return runs.tidy(lines_with(ran(runs, damaged_copy)["repaired"].stderr, "Repaired"))


@output("troubleshooting-not-fetched-again")
def not_fetched_again(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, damaged_copy)["not fetched"]))


@output("troubleshooting-job-finds-damage")
def job_finds_damage(runs: Runs) -> str:
    """The last line of the job's traceback"""
    text = both(ran(runs, damaged_copy)["job"])
    return runs.tidy(lines_with(text, r"^mnist_xp\.mnist_files\.DatasetError: "))


@output(
    "troubleshooting-full-disk-log",
    needs=[ROOT],
    volatile=[PROGRESS, r"(?<=ERROR:)\d+"],
)
def full_disk_log(runs: Runs) -> str:
    """The line of the job's log that says the disk is full, after the
    progress bar it follows"""
    log = ran(runs, full_disk)["log"]
    [line] = [line for line in log.split("\n") if "No space left" in line]
    return runs.tidy(line.split("\r")[-1] + "\n")


@output("troubleshooting-full-disk-experiment", needs=[ROOT])
def full_disk_experiment(runs: Runs) -> str:
    """experimaestro's lines about the failed job"""
    text = ran(runs, full_disk)["experiment"]
    return runs.tidy(
        lines_with(text, r"ended with code", r"cannot start", r"ERROR +xpm\.")
    )


@output("troubleshooting-yaml-syntax")
def yaml_syntax(runs: Runs) -> str:
    """The last lines of the traceback (the parser's message)"""
    text = ran(runs, bad_input)["syntax"].stderr
    return runs.tidy(text[text.index("yaml.parser.ParserError") :])


@output("troubleshooting-yaml-missing")
def yaml_missing(runs: Runs) -> str:
    """The last line of the traceback"""
    return runs.tidy(
        lines_with(ran(runs, bad_input)["nothere"].stderr, "^FileNotFound")
    )


@output("troubleshooting-own-workspace")
def workspace_chosen(runs: Runs) -> str:
    """The two lines that name the workspace"""
    text = ran(runs, own_workspace).stderr
    return runs.tidy(lines_with(text, r"workspace mine", r"Running experiment"))


@output("troubleshooting-damaged-checkpoint", volatile=[r"(?<=WARNING:)\d+"])
def checkpoint_set_aside(runs: Runs) -> str:
    """The line of the job's log that sets the checkpoint aside"""
    return runs.tidy(lines_with(ran(runs, damaged_checkpoint), "set aside as"))


@output("troubleshooting-parameters-gone")
def parameters_gone(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, damaged_job_files)["parameters"]))


@output("troubleshooting-damaged-results")
def damaged_results(runs: Runs) -> str:
    return runs.tidy(ran(runs, damaged_job_files)["analysis"].stderr)


@output("troubleshooting-run-passed-over")
def run_passed_over(runs: Runs) -> str:
    """The first two lines of the analysis: which run it reads, and why"""
    text = ran(runs, damaged_job_files)["passed over"].stdout
    return runs.tidy("\n".join(text.splitlines()[:2]))


@output("troubleshooting-data-folder-read-only", needs=[ROOT])
def data_folder_read_only(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, data_folder)["read-only"]))


@output("troubleshooting-data-folder-a-file")
def data_folder_a_file(runs: Runs) -> str:
    return runs.tidy(message(ran(runs, data_folder)["a file"]))


@output("troubleshooting-ctrl-c")
def ctrl_c_message(runs: Runs) -> str:
    """The line the experiment ends with"""
    return runs.tidy(lines_with(ran(runs, ctrl_c), "^Experiment failed: Stopped"))


@output("troubleshooting-full-disk-results", needs=[ROOT], volatile=[r"\d+(?= KiB)"])
def full_disk_results_line(runs: Runs) -> str:
    return runs.tidy(ran(runs, full_disk_results))
