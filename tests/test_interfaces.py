"""The terminal and web interfaces of experimaestro, and TensorBoard, used as a
person would (docs/monitoring.md, "Watching live"): the terminal interface
runs in a tmux session of 200 x 50 characters (the keys are sent to it, its
screen is read back), the web interface is loaded in headless Chromium
(driven over its DevTools protocol: pages, clicks, a screenshot), TensorBoard
is read through its HTTP API. Every server listens on 127.0.0.1 only, and
every process a test starts (tmux, the interfaces, Chromium, TensorBoard, the
experiments and their jobs) is stopped at its end.

``MNIST_XP_WRITE_FIGURES=1`` makes the web monitor's test save its screenshot
as docs/figures/web-ui.png (the README shows it)."""

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import (
    REPO,
    SAMPLE_YAML,
    Sandbox,
    free_port,
    processes_of,
    started,
    stop,
    wait_for,
)
from websockets.sync.client import connect

LONG_YAML = REPO / "tests" / "long.yaml"
FAILING_YAML = REPO / "tests" / "failing.yaml"
FIGURE = REPO / "docs" / "figures" / "web-ui.png"
CHROMIUM = "chromium-headless-shell"
HAS_SERVICE = (REPO / "xpkit" / "tensorboard_service.py").exists()
"""Whether the experiment has its TensorBoard service (xpkit/tensorboard_service.py)"""
HAS_ACTION = (REPO / "xpkit" / "export_action.py").exists()
"""Whether the experiment has its export action (xpkit/export_action.py)"""

pytestmark = [
    pytest.mark.skipif(
        not shutil.which("tmux"), reason="needs tmux (.ci/run installs it)"
    ),
    pytest.mark.skipif(
        not shutil.which(CHROMIUM), reason=f"needs {CHROMIUM} (.ci/run installs it)"
    ),
]

# The commands, as docs/monitoring.md and the README give them
MONITOR_CONSOLE = "experimaestro experiments --workspace mnist-xp monitor --console"
MONITOR_WEB = "experimaestro experiments --workspace mnist-xp monitor"
RUN_CONSOLE = "experimaestro run-experiment --console params.yaml"
RUN_WEB = "experimaestro run-experiment --web"  # + a YAML file
LIST = "experimaestro jobs --workspace mnist-xp list --tags --experiment MNIST_train"
LOG = "experimaestro jobs --workspace mnist-xp log {job}"
KILL_PERFORM = (
    "experimaestro jobs --workspace mnist-xp kill --experiment MNIST_train --perform"
)
LOG_FOLLOW = "experimaestro jobs --workspace mnist-xp log -f {job}"
ANALYZE = "python -m xpkit.analyze"
TENSORBOARD = "tensorboard --logdir ~/experiments/mnist-xp/experiments/MNIST_train/current/results/tensorboard"

JOB_ROW = re.compile(
    r"^ (?P<id>[0-9a-f]{7})  (?P<task>mnist_xp\.learn\.\w+) +(?P<state>\S+(?: \d+%)?)"
    r" +(?P<tags>n_layers=.*?)  +\d{4}-\d\d-\d\d",
    re.MULTILINE,
)
"""A row of the terminal interface's jobs table"""


def job_rows(screen: str) -> list[dict]:
    return [match.groupdict() for match in JOB_ROW.finditer(screen)]


# --- Processes


def with_descendants(pid: int) -> list[psutil.Process]:
    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@contextlib.contextmanager
def cleaned_up(sandbox: Sandbox):
    """Yields a list; on leaving, stops whatever still runs with the
    sandbox's HOME, and puts their command lines in the list (empty when the
    test stopped everything it started)"""
    left = []
    try:
        yield left
    finally:
        left += stop(processes_of(sandbox))


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port (the web
    interface logs its address a moment before it does)"""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def default_sandbox(root: Path) -> Sandbox:
    """A sandbox whose workspace is also at ``~/experiments/mnist-xp`` (the
    default of ``python -m xpkit.configure``), as the commands say"""
    sandbox = Sandbox(root)
    (sandbox.home / "experiments").mkdir()
    (sandbox.home / "experiments" / "mnist-xp").symlink_to(sandbox.workspace)
    return sandbox


# --- A terminal: tmux


class Terminal:
    """A tmux session of 200 x 50 characters (a server of its own, on its own
    socket) that runs one command with the sandbox's environment (``-e``);
    the pane stays once the command is over, to read its last screen, and
    the command's exit status goes to a file"""

    def __init__(self, sandbox: Sandbox, command: str, cwd: Path = REPO):
        name = f"tmux-{next(Terminal.count)}"
        self.socket = sandbox.home.parent / f"{name}.sock"
        self.status = sandbox.home.parent / f"{name}.status"
        """Where the exit status of the command goes"""
        self.env = sandbox.env
        environment = [f"-e{key}={value}" for key, value in sandbox.env.items()]
        self.tmux(
            *("start-server", ";", "set-option", "-g", "remain-on-exit", "on", ";"),
            *("new-session", "-d", "-s", "xp", "-x", "200", "-y", "50"),
            *("-c", str(cwd), *environment),
            f"{command}; echo $? > {self.status}.new && mv {self.status}.new {self.status}",
        )
        self.server = int(self.tmux("display-message", "-p", "#{pid}"))

    count = itertools.count()

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def keys(self, *keys: str):
        """Types keys, one at a time (tmux's names: Tab, Enter, Escape, Down,
        Right, C-c...), then pauses: the interface takes a key, and the focus
        changes it asks for (on its next turn), before the next key"""
        for key in keys:
            self.tmux("send-keys", "-t", "xp", key)
            time.sleep(0.5)

    def click(self, label: str):
        """Clicks (a mouse press and release, as the terminal sends them) on
        the first place of the screen that shows ``label``"""
        for row, line in enumerate(self.screen().splitlines(), start=1):
            if label in line:
                column = len(line[: line.index(label)]) + 2
                for event in "Mm":  # press, release (SGR encoding)
                    self.tmux(
                        "send-keys", "-t", "xp", "-l", f"\x1b[<0;{column};{row}{event}"
                    )
                time.sleep(0.5)
                return
        raise AssertionError(f"{label!r} is not on the screen:\n{self.screen()}")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "xp")

    def exit_status(self) -> int | None:
        """The command's exit status once it is over, else None"""
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(self.status.read_text())
        return None

    def wait(self, pattern: str, what: str, timeout: float = 120) -> str:
        """The screen, once ``pattern`` (a regular expression) is on it"""
        last = ""

        def shown():
            nonlocal last
            last = self.screen()
            if re.search(pattern, last, re.MULTILINE):
                return last
            if self.exit_status() is not None:
                raise AssertionError(f"the command ended before {what}:\n{last}")
            return None

        try:
            return wait_for(shown, what, timeout=timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- the screen:\n{last}") from None

    def wait_until(self, check, what: str, timeout: float = 60) -> str:
        """The screen, once ``check(screen)`` is true"""
        last = ""

        def shown():
            nonlocal last
            last = self.screen()
            return check(last) and last

        try:
            return wait_for(shown, what, timeout=timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- the screen:\n{last}") from None

    def wait_gone(self, pattern: str, what: str, timeout: float = 60) -> str:
        """The screen, once ``pattern`` is no longer on it"""

        def gone():
            screen = self.screen()
            return None if re.search(pattern, screen) else screen

        return wait_for(gone, what, timeout=timeout)

    def wait_exit(self, timeout: float = 120) -> int:
        return wait_for(
            lambda: (status := self.exit_status()) is not None and (status,),
            "the command to end",
            timeout=timeout,
        )[0]

    def close(self):
        """Ends the session, what runs in it and the tmux server"""
        processes = with_descendants(self.server)
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"],
            env=self.env,
            capture_output=True,
            check=False,
        )
        stop(psutil.wait_procs(processes, timeout=10)[1])


@contextlib.contextmanager
def terminal(sandbox: Sandbox, command: str, cwd: Path = REPO):
    term = Terminal(sandbox, command, cwd)
    try:
        yield term
    finally:
        term.close()


def quit_tui(term: Terminal) -> str:
    """The keys that quit experimaestro's terminal interface: q opens the
    "Quit Experimaestro?" dialog, whose Cancel button has the focus (Enter
    would cancel), Tab moves to Quit, Enter presses it; returns the dialog"""
    term.keys("q")
    dialog = term.wait("Quit Experimaestro\\?", "the quit dialog")
    term.keys("Tab", "Enter")
    return dialog


# --- A browser: headless Chromium over the DevTools protocol


class Browser:
    """Headless Chromium with a page, driven over the DevTools protocol (on
    127.0.0.1)"""

    def __init__(self, sandbox: Sandbox, folder: Path, size=(1280, 500)):
        folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--no-sandbox",  # (as root)
                "--disable-gpu",
                f"--user-data-dir={folder}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--window-size={size[0]},{size[1]}",
                "about:blank",
            ],
            env=sandbox.env,
            stdout=subprocess.DEVNULL,
            stderr=(folder / "chromium.log").open("w"),
            start_new_session=True,
        )
        active = folder / "DevToolsActivePort"  # written once it listens
        port = wait_for(
            lambda: active.exists() and active.read_text().split("\n")[0],
            "Chromium's DevTools port",
            self.process,
            timeout=60,
        )
        [page] = [
            target
            for target in get_json(f"http://127.0.0.1:{port}/json/list")
            if target["type"] == "page"
        ]
        self.connection = contextlib.ExitStack()
        self.socket = self.connection.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None)
        )
        self.ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        """Calls a DevTools method, and returns its result"""
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:  # (events come in between: not asked for, none)
            message = json.loads(self.socket.recv(60))
            if message.get("id") == number:
                assert "error" not in message, message
                return message["result"]

    def js(self, expression: str):
        """The value of a JavaScript expression in the page"""
        answer = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        assert "exceptionDetails" not in answer, answer
        return answer["result"].get("value")

    def open(self, url: str):
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        return self.js("document.body ? document.body.innerText : ''")

    def wait_text(self, pattern: str, what: str, timeout: float = 60) -> str:
        """The page's text, once ``pattern`` is in it"""
        last = ""

        def shown():
            nonlocal last
            last = self.text()
            return re.search(pattern, last) and last

        try:
            return wait_for(shown, what, timeout=timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- the page:\n{last}") from None

    def click(self, selector: str, text: str = ""):
        """Clicks the first element matching the CSS selector whose text
        holds ``text``"""
        found = self.js(
            f"(() => {{ const element = [...document.querySelectorAll({json.dumps(selector)})]"
            f".find(e => e.innerText.includes({json.dumps(text)}));"
            " if (element) element.click(); return !!element; })()"
        )
        assert found, f"nothing to click: {selector} with {text!r}\n{self.text()}"

    def screenshot(self, path: Path):
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self):
        """Ends Chromium and all its processes"""
        with contextlib.suppress(Exception):
            self.connection.close()
        processes = with_descendants(self.process.pid)
        stop(processes)
        self.process.wait()


@contextlib.contextmanager
def browser(sandbox: Sandbox, folder: Path):
    chromium = Browser(sandbox, folder)
    try:
        yield chromium
    finally:
        chromium.close()


JOBS_OF_THE_PAGE = """[...document.querySelectorAll('tr.job-row')].map(row => ({
    state: row.querySelector('.job-status-cell').innerText,
    task: row.querySelector('.task-id').innerText,
    folder: row.querySelector('.job-id').title,
    tags: Object.fromEntries([...row.querySelectorAll('.tag')].map(
        tag => [tag.querySelector('.name').innerText,
                tag.querySelector('.value').innerText])),
}))"""
"""The rows of the web interface's jobs table"""


def jobs_on_the_page(chromium, address: str, experiment_id: str, count: int) -> list:
    """Opens the web interface at ``address`` (its token in it), then the jobs
    of ``experiment_id``; the rows of its jobs table (:data:`JOBS_OF_THE_PAGE`),
    once there are ``count``"""
    chromium.open(address)
    chromium.wait_text(
        rf"{experiment_id}\s+\d+_\d+\s+{count}/{count}", "the experiment"
    )
    chromium.click('tr[title="Open jobs"]', experiment_id)
    chromium.wait_text(f"Experiments / {experiment_id}", "its jobs")
    return wait_for(
        lambda: len(jobs := chromium.js(JOBS_OF_THE_PAGE)) == count and jobs,
        f"{count} jobs",
    )


TABLE_ROWS = """[...document.querySelectorAll('table tbody tr')].map(
    row => [...row.cells].map(cell => cell.innerText.trim()))"""
"""The text of each cell of each row of the page's tables"""

WEB_ADDRESS = r"Web server started on (http://127\.0\.0\.1:(\d+)/auth\?xpm-token=\w+)"
"""The line where the web interface gives its real address, with its token"""


def printed_address(log: Path, process) -> re.Match:
    """The address (and port) the web interface gives in ``log``, once it
    has (``process``: the command, whose end stops the wait)"""
    return wait_for(
        lambda: re.search(WEB_ADDRESS, log.read_text()), "the address", process
    )


# --- run-experiment --console, then the workspace it leaves


@pytest.fixture(scope="module")
def console_run(tmp_path_factory) -> Sandbox:
    """``experimaestro run-experiment --console params.yaml`` in a terminal,
    on the sample (1,000 images held out): what its screen showed, step by
    step, is in ``sandbox.seen``; it is quit once the jobs are done"""
    sandbox = default_sandbox(tmp_path_factory.mktemp("console"))
    sandbox.seen = seen = {}
    command = f"{RUN_CONSOLE} -c n_validation=1000"
    with cleaned_up(sandbox) as left, terminal(sandbox, command) as term:
        # It opens on its Logs tab, the log lines of the experiment (at times,
        # experimaestro 2.7.0 switches to the Monitor tab by itself)
        seen["start"] = term.wait(f"Submitting job|{JOB_ROW.pattern}", "a job")
        # Tab: the Monitor tab, with the jobs of the experiment
        term.keys("Tab")
        seen["jobs"] = term.wait(JOB_ROW.pattern, "the jobs")
        term.wait("MNIST_train - 🏃 4/4", "every job done", 600)
        # (the header counts the jobs first: their rows follow a moment later)
        seen["all done"] = term.wait_until(
            lambda screen: [row["state"] for row in job_rows(screen)] == 4 * ["✅"],
            "every job's row done",
        )
        # A click on the Logs tab: where the table is printed, at the end
        term.click(" Logs")
        seen["logs at the end"] = term.wait(
            "Experiment thread completed", "the end of the experiment"
        )
        # A click on the Monitor tab, then s: the experiment's services
        term.click(" Monitor ")
        term.wait("MNIST_train - ", "the Monitor tab")
        term.keys("s")
        seen["services"] = term.wait(r"ID +Description +State", "the services")
        # j: back to the jobs; l: the highlighted job's logs (.out, then
        # Right for .err)
        term.keys("j")
        term.wait(JOB_ROW.pattern, "the jobs again")
        term.keys("l")
        term.wait(r"\.out +\w+\.err", "the log viewer")
        term.keys("Right")
        seen["log"] = term.wait(r"\[xpm\] Running task", "the job's log")
        term.keys("Escape")
        term.wait(JOB_ROW.pattern, "the jobs after the log")
        # q, then Enter: Cancel (the dialog closes, the interface stays)
        term.keys("q")
        seen["quit dialog"] = term.wait("Quit Experimaestro\\?", "the quit dialog")
        term.keys("Enter")
        seen["cancelled"] = term.wait_gone("Quit Experimaestro", "the dialog gone")
        seen["alive after cancel"] = term.exit_status() is None
        # q, Tab, Enter: Quit
        quit_tui(term)
        seen["exit status"] = term.wait_exit()
        seen["after quitting"] = term.screen()
    seen["left"] = left
    return sandbox


def test_run_experiment_console_has_no_orphans_tab(console_run):
    """The Orphans tab is for ``experiments monitor`` only"""
    assert re.search(
        r"^ Monitor +Services \(0\) +Warnings \(0\) +Logs",
        console_run.seen["start"],
        re.MULTILINE,
    )


def test_run_experiment_console_shows_the_jobs_after_tab(console_run):
    rows = job_rows(console_run.seen["jobs"])
    assert sorted(row["task"] for row in rows) == 2 * [
        "mnist_xp.learn.evaluate"
    ] + 2 * ["mnist_xp.learn.learn"]
    for row in rows:
        assert re.fullmatch(
            r"n_layers=[12], hidden_dim=32, kernel_size=3, lr=0\.001, seed=0",
            row["tags"],
        )
    # Once every job is done: ✅ for each, and 🏃 4/4 for the experiment,
    # which still runs until the interface is quit
    done = job_rows(console_run.seen["all done"])
    assert [row["state"] for row in done] == 4 * ["✅"]
    assert {row["id"] for row in done} == {row["id"] for row in rows}


def test_run_experiment_console_prints_the_table_in_its_logs(console_run):
    # The screen's lines joined: the log panel wraps long lines where it can
    logs = re.sub(r"\s+", " ", console_run.seen["logs at the end"].replace("│", " "))
    # (the first lines, "Submitting job...", have scrolled out of the screen)
    assert "INFO:xpm.experiments.cli:Experiment thread completed" in logs
    assert "MNIST_train, run " in logs
    assert "2 grid points, 2 done, 0 failed, 0 unfinished" in logs


@pytest.mark.skipif(not HAS_SERVICE, reason="no xpkit/tensorboard_service.py")
def test_run_experiment_console_lists_the_tensorboard_service(console_run):
    services = console_run.seen["services"]
    assert re.search(r"tensorboard +TensorBoard service +⏹ STOPPED", services)
    assert re.search(r"↳ wandb +Weights & Biases sync +⏹ STOPPED", services)


def test_run_experiment_console_shows_a_jobs_log(console_run):
    log = console_run.seen["log"]
    task = re.search(r"📄 \S+/jobs/(mnist_xp\.learn\.\w+)/[0-9a-f]{64}/(\w+)\.err", log)
    assert task, log
    assert task[1].endswith(f".{task[2]}")  # learn.err of a Learn job...
    assert "Computing on cpu" in log


def test_run_experiment_console_quits_with_q_tab_enter(console_run):
    seen = console_run.seen
    # experimaestro 2.7.0: every job is done, and the dialog still says
    assert "The experiment is still in progress." in seen["quit dialog"]
    assert seen["alive after cancel"], "Enter (Cancel) quit"
    assert job_rows(seen["cancelled"])
    assert seen["exit status"] == 0, seen["after quitting"]
    # After it, the terminal shows no table: it was in the Logs tab (and in
    # results.md)
    assert "grid points" not in seen["after quitting"]
    results = console_run.workspace / "experiments/MNIST_train/current/results"
    assert "| DONE " in (results / "results.md").read_text()
    assert not seen["left"], "processes left after quitting"


# --- experiments monitor --console


def test_monitor_console_after_the_run(console_run):
    """One experiment in the workspace: its jobs show at once"""
    sandbox = console_run
    with cleaned_up(sandbox) as left, terminal(sandbox, MONITOR_CONSOLE) as term:
        screen = term.wait(JOB_ROW.pattern, "the jobs")
        assert "MNIST_train - ✓ Done" in screen
        assert "Orphans (0/0)" in screen
        rows = wait_for(
            lambda: len(rows := job_rows(term.screen())) == 4 and rows, "4 jobs"
        )
        assert [row["state"] for row in rows] == 4 * ["✅"]
        quit_tui(term)
        assert term.wait_exit() == 0
        assert "Shutting down..." in term.screen()
    assert not left


@pytest.fixture(scope="module")
def web_sample(tmp_path_factory) -> Sandbox:
    """``experimaestro run-experiment --web tests/sample.yaml``, its port not
    in settings.yaml: its web interface seen in Chromium once its jobs are
    over (it serves until stopped), then stopped with its Stop button; what
    the page showed is in ``sandbox.seen``"""
    root = tmp_path_factory.mktemp("web")
    sandbox = default_sandbox(root)
    sandbox.seen = seen = {}
    log = root / "web-run.log"
    with (
        cleaned_up(sandbox) as left,
        started(sandbox, f"{RUN_WEB} {SAMPLE_YAML}", log) as experiment,
    ):
        address = printed_address(log, experiment)
        seen["address"], seen["port"] = address[1], int(address[2])
        with browser(sandbox, root / "chromium") as chromium:
            wait_for(lambda: listening(seen["port"]), "the server", experiment)
            chromium.open(seen["address"])
            seen["experiments"] = chromium.wait_text("MNIST_sample", "the experiment")
            wait_for(
                lambda: "web server still running" in log.read_text(),
                "the end of the jobs",
                experiment,
                timeout=600,
            )
            chromium.click("[data-rr-ui-event-key=services]")
            seen["services"] = chromium.wait_text(r"Services\n", "the services")
            if HAS_SERVICE:
                seen["services"] = chromium.wait_text("TensorBoard service", "it")
            chromium.click("[data-rr-ui-event-key=actions]")
            chromium.wait_text(r"Actions\n", "the actions")
            seen["actions"] = chromium.js(TABLE_ROWS)
            # The Stop button, then the Stop of its dialog
            chromium.click("button", "Stop")
            seen["stop dialog"] = chromium.wait_text("Stop Server", "its dialog")
            chromium.click(".modal-dialog button", "Stop Server")
            seen["exit status"] = experiment.wait(timeout=120)
    seen["log"] = log.read_text()
    seen["left"] = left
    return sandbox


def test_run_experiment_web_serves_on_another_port_than_it_says(web_sample):
    seen = web_sample.seen
    # experimaestro 2.7.0: the port of settings.yaml, or 12345 when it has
    # none, is logged; the server took a free port, given on another line
    assert "Web server started at http://localhost:12345" in seen["log"]
    assert seen["port"] != 12345
    assert "MNIST_sample" in seen["experiments"]


@pytest.mark.skipif(not HAS_SERVICE, reason="no xpkit/tensorboard_service.py")
def test_run_experiment_web_lists_the_tensorboard_service(web_sample):
    assert re.search(r"TensorBoard service", web_sample.seen["services"])


@pytest.mark.skipif(not HAS_ACTION, reason="no xpkit/export_action.py")
def test_run_experiment_web_lists_the_action_without_its_name(web_sample):
    """experimaestro 2.7.0 defect: the page of ``run-experiment --web`` has a
    row for the action, but without its identifier, description or class
    (that of ``experiments monitor`` has them): when this fails, it is fixed
    upstream, update the guide"""
    assert web_sample.seen["actions"] == [["", "", "", "Run"]]


def test_the_lines_experimaestro_logs_for_nothing(web_sample):
    """experimaestro 2.7.0 (docs/monitoring.md, quirks): when this fails, it is
    fixed upstream, update the guide"""
    log = web_sample.seen["log"]
    # A successful job, its exit code lost (its state is read from its folder)
    assert re.search(r"Job Job\[mnist_xp\.learn\.learn/\w+\] ended with code -1", log)
    assert "1 grid points, 1 done, 0 failed" in log
    # Dropped by the experiment (xpkit/upstream_warnings.py)
    assert "Submitting job Job[mnist_xp.learn.evaluate/" in log
    assert "directory will be cleaned up" not in log
    listing = web_sample.run(LIST)
    assert listing.stderr.startswith("INFO:root:Using workspace mnist-xp\n")


def test_run_experiment_web_stops_from_its_page(web_sample):
    """Stop, then Stop Server: the experiment ends (its jobs were over).
    Fails at times with -11 (a segmentation fault as the process ends): the
    experiment's ``exit_quickly()`` (xpkit/speed.py, ``gc.freeze()`` with
    PyTorch loaded) while the web server keeps the process running"""
    seen = web_sample.seen
    assert (
        "Are you sure you want to stop the experimaestro server?"
        in (seen["stop dialog"])
    )
    assert seen["exit status"] == 0, seen["log"][-3000:]
    assert not seen["left"]


def test_monitor_console_while_an_experiment_runs(web_sample):
    """Two experiments: MNIST_sample done (and MNIST_failing, whose failed run
    experimaestro removed), MNIST_train running: the list, then Tab and Enter
    for the jobs of the highlighted one"""
    sandbox = web_sample
    # A failed run, then a successful one: experimaestro removes the failed
    # run, and its two failed jobs are left on disk, referenced by no run
    assert sandbox.experiment(FAILING_YAML, check=False).returncode == 1
    sandbox.experiment(FAILING_YAML, "-c", "hidden_dim=8")
    with cleaned_up(sandbox) as left, sandbox.background_experiment(LONG_YAML) as xp:
        wait_for(
            lambda: re.search(
                "^running ", sandbox.run(LIST, check=False).stdout, re.MULTILINE
            ),
            "the Learn job to run",
            xp,
        )
        with terminal(sandbox, MONITOR_CONSOLE) as term:
            screen = term.wait("MNIST_failing", "the experiments")
            rows = re.findall(r"^ (MNIST_\w+) .*?(🏃|✓ Done)", screen, re.MULTILINE)
            assert sorted(rows) == [
                ("MNIST_failing", "✓ Done"),
                ("MNIST_sample", "✓ Done"),
                ("MNIST_train", "🏃"),
            ], screen
            # Orphans (running/finished): the two jobs of the removed run
            term.wait(r"Orphans \(0/2\)", "the orphans counted")
            # Tab: into the table; Down to MNIST_train; Enter: its jobs
            term.keys(
                "Tab", *["Down"] * [name for name, _ in rows].index("MNIST_train")
            )
            term.keys("Enter")
            jobs = term.wait(JOB_ROW.pattern, "the jobs")
            assert re.search("MNIST_train - 🏃 [01]/2", jobs), jobs
            jobs = {row["task"]: row for row in job_rows(jobs)}
            assert jobs["mnist_xp.learn.learn"]["state"].startswith("🏃")
            assert jobs["mnist_xp.learn.evaluate"]["state"] == "⌛"
            assert jobs["mnist_xp.learn.learn"]["tags"] == (
                "n_layers=1, hidden_dim=32, kernel_size=3, lr=0.001, seed=0"
            )
            if HAS_SERVICE:
                term.keys("s")
                term.wait(r"tensorboard +TensorBoard service", "the services")
                term.keys("j")
                term.wait(JOB_ROW.pattern, "the jobs again")
            # l: the log of the running Learn job, as it grows
            term.keys("l")
            term.wait(r"learn\.out +learn\.err", "the log viewer")
            term.keys("Right")
            term.wait(r"Training on 4000 images, validating on 1000", "the job's log")
            # Escape: back to the jobs; Escape again: the experiments
            term.keys("Escape")
            term.wait(JOB_ROW.pattern, "the jobs after the log")
            term.keys("Escape")
            term.wait(r"ID +Run +# +Host +Status", "the experiments again")
            quit_tui(term)
            assert term.wait_exit() == 0
        assert xp.poll() is None, "quitting the monitor stopped the experiment"
        # Its job stopped, the experiment ends (the job failed)
        sandbox.run(KILL_PERFORM)
        assert xp.wait(timeout=120) == 1
    assert not left


# --- experiments monitor (the web interface)


def test_monitor_web_shows_the_jobs_and_their_tags(console_run, tmp_path):
    sandbox = console_run
    port = free_port()
    log = tmp_path / "monitor.log"
    with (
        cleaned_up(sandbox) as left,
        started(sandbox, f"{MONITOR_WEB} --port {port}", log) as monitor,
    ):
        address = printed_address(log, monitor)
        assert int(address[2]) == port
        assert f"Starting experiment monitor on http://localhost:{port}" in (
            log.read_text()
        )
        with browser(sandbox, tmp_path / "chromium") as chromium:
            wait_for(lambda: listening(port), "the server", monitor)
            jobs = jobs_on_the_page(chromium, address[1], "MNIST_train", 4)
            shot = tmp_path / "web-ui.png"
            chromium.screenshot(shot)
            if os.environ.get("MNIST_XP_WRITE_FIGURES") == "1":
                shutil.copyfile(shot, FIGURE)
            chromium.click("[data-rr-ui-event-key=actions]")
            actions = chromium.wait_text(r"Actions\n", "the actions")
            if HAS_ACTION:
                actions = chromium.wait_text("Copy the best model", "the action")
            chromium.click("[data-rr-ui-event-key=services]")
            # experimaestro 2.7.0: monitor lists the services of no experiment
            services = chromium.wait_text("No services", "the services")
        monitor.send_signal(signal.SIGINT)  # Ctrl+C
        assert monitor.wait(timeout=60) == 0
    folders = {str(path) for path in sandbox.jobs("learn") + sandbox.jobs("evaluate")}
    assert {job["folder"] for job in jobs} == folders
    for job in jobs:
        assert job["state"] == "done"
        assert job["task"] == Path(job["folder"]).parent.name
        assert job["tags"] == {
            "n_layers": job["tags"]["n_layers"],
            "hidden_dim": "32",
            "kernel_size": "3",
            "lr": "0.001",
            "seed": "0",
        }
    assert sorted(job["tags"]["n_layers"] for job in jobs) == ["1", "1", "2", "2"]
    assert shot.read_bytes().startswith(b"\x89PNG")
    if HAS_ACTION:
        assert re.search(r"Copy the best model of MNIST_train run \d+_\d+", actions)
    assert "No services" in services
    assert not left


def test_monitor_on_a_busy_port_serves_nothing(console_run, tmp_path):
    """experimaestro 2.7.0: the address first, then the error, and it keeps
    running (when this fails, it is fixed upstream: update the guide)"""
    sandbox = console_run
    log = tmp_path / "monitor.log"
    with socket.socket() as busy, cleaned_up(sandbox) as left:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with started(sandbox, f"{MONITOR_WEB} --port {port}", log) as monitor:
            wait_for(
                lambda: "address already in use" in log.read_text(),
                "the error",
                monitor,
            )
            output = log.read_text()
            assert re.search(WEB_ADDRESS, output)
            assert output.index("Web server started on") < output.index(
                "address already in use"
            )
            assert monitor.poll() is None
            monitor.send_signal(signal.SIGINT)
            assert monitor.wait(timeout=60) == 0
    assert not left


# --- A job's log in a terminal: less, and tail -f


def test_jobs_log_in_a_terminal(console_run):
    sandbox = console_run
    listing = sandbox.run(LIST).stdout
    job = re.search(r"(mnist_xp\.learn\.learn/[0-9a-f]{64}) n_layers=1", listing)[1]
    with cleaned_up(sandbox) as left:
        # In less: q quits
        with terminal(sandbox, LOG.format(job=job)) as term:
            screen = term.wait(r"Computing on cpu", "the log in less")
            assert "[xpm] Working in directory" in screen
            term.keys("q")
            assert term.wait_exit() == 0
        # Followed (tail -f): Ctrl+C stops it, click says "Aborted!"
        with terminal(sandbox, LOG_FOLLOW.format(job=job)) as term:
            term.wait(r"\[xpm\] Finished cleanup", "the end of the log")
            term.keys("C-c")
            assert term.wait_exit() == 1
            assert "Aborted!" in term.screen()
    assert not left


# --- TensorBoard


def test_tensorboard_serves_every_runs_scalars(console_run):
    """The README's command, on a free port of 127.0.0.1, over the analysis'
    folder: every run, with its validation accuracy at each validation, the
    last one that of the job's learn.json"""
    sandbox = console_run
    sandbox.run(ANALYZE)
    folder = sandbox.home / "experiments/mnist-xp/experiments/MNIST_train/current"
    links = sorted((folder / "results" / "tensorboard").iterdir())
    assert len(links) == 2
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = sandbox.home.parent / "tensorboard.log"
    command = f"{TENSORBOARD} --host 127.0.0.1 --port {port}"
    with (
        cleaned_up(sandbox) as left,
        started(sandbox, command, log, cwd=sandbox.home) as server,
    ):

        def runs():
            with contextlib.suppress(OSError):
                answer = get_json(f"{url}/data/runs")
                return len(answer) == 2 and answer
            return None

        assert sorted(wait_for(runs, "the runs", server, timeout=120)) == [
            link.name for link in links
        ]
        tags = get_json(f"{url}/data/plugin/scalars/tags")
        for link in links:
            assert set(tags[link.name]) == {
                "train/loss",
                "validation/loss",
                "validation/accuracy",
            }
            query = urllib.parse.urlencode(
                {"run": link.name, "tag": "validation/accuracy"}
            )
            points = get_json(f"{url}/data/plugin/scalars/scalars?{query}")
            learnt = json.loads((link.resolve().parent / "learn.json").read_text())
            [(_, step, accuracy)] = points  # 62 steps: validated once, at the end
            assert step == learnt["steps"] == 62
            assert accuracy == pytest.approx(learnt["validation_accuracy"], abs=1e-6)
        server.send_signal(signal.SIGINT)  # Ctrl+C
        assert server.wait(timeout=60) == 0
    assert "TensorBoard 2" in log.read_text()
    assert not left
