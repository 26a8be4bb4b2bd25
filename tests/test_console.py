"""Quiet by default: Ray's output goes to the run's log file, the terminal shows seqlab's story."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seqlab.console import Story

ROOT = Path(__file__).resolve().parents[1]

# lines as a run's driver receives them (from a demo's log: colours, worker prefixes, Ray's own lines)
SEEN = [
    ("2026-12-01 20:43:16,032\tINFO worker.py:1841 -- Connecting to existing Ray cluster at address: 127.0.0.2:48083...",
     None),
    ("2026-12-01 20:49:44,399\tWARNING authentication_token_setup.py:85 -- Token authentication is enabled for this "
     "Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.", None),
    ("\x1b[36m(TrainController pid=23425)\x1b[0m Requesting resources: {'CPU': 1} * 2", None),
    ("\x1b[36m(TrainController pid=23425, ip=127.0.0.3)\x1b[0m [2026-12-01 20:43:39,983 E 23425 23458] "
     "core_worker.cc:2465: Actor with class name: 'PreemptionWatcher' and ID: 'ff98' has constructor arguments", None),
    ("\x1b[33m(raylet)\x1b[0m WARNING: 8 PYTHON worker processes have been started on node: aef0 with address: "
     "192.0.2.2, which is 4x the maximum expected startup concurrency (2).", None),
    ("\x1b[36m(RayTrainWorker pid=23512, ip=127.0.0.3)\x1b[0m [seqlab] worker 0/2 on node 7406 (pid 23512, ...)", None),
    ("\x1b[36m(RayTrainWorker pid=23512)\x1b[0m Wrapping provided model in DistributedDataParallel.", None),
    ("\x1b[36m(RayTrainWorker pid=23512)\x1b[0m [seqlab] epoch 1/3: train_loss 1.6905 val_macro_f1 0.1669 "
     "(242 samples/s, 9s an epoch; about 18s to go)",
     "[seqlab] epoch 1/3: train_loss 1.6905 val_macro_f1 0.1669 (242 samples/s, 9s an epoch; about 18s to go)"),
    ("\x1b[36m(RayTrainWorker pid=9, ip=10.0.0.7)\x1b[0m [seqlab] resuming from epoch 2 (checkpoint of epoch 1)",
     "[seqlab] resuming from epoch 2 (checkpoint of epoch 1)"),
    ("╭──────────────────────────────────────╮", None),
    ("│ Trial status: 2 RUNNING | 1 PENDING  │", None),
    ("[seqlab] trial 1/3 h012-do0.4291 started", "[seqlab] trial 1/3 h012-do0.4291 started"),
    ("seqlab: error: --epochs must be >= 1", "seqlab: error: --epochs must be >= 1"),
    ("2026-12-01 20:50:01,000\tERROR tune_controller.py:1331 -- Trial task failed for trial h012",
     "2026-12-01 20:50:01,000\tERROR tune_controller.py:1331 -- Trial task failed for trial h012"),
    ("(autoscaler +1m4s) Warning: The following resource request cannot be scheduled right now: {'CPU': 4.0}.",
     "(autoscaler +1m4s) Warning: The following resource request cannot be scheduled right now: {'CPU': 4.0}."),
]


@pytest.mark.parametrize("line,shown", SEEN)
def test_the_terminal_shows_seqlab_lines_and_warnings_that_need_the_user(line, shown, tmp_path):
    assert Story(tmp_path / "x.log").pick(line) == shown


def test_a_search_tells_its_trials_from_the_driver_not_the_workers(tmp_path):
    story = Story(tmp_path / "x.log", search=True)
    assert story.pick("(RayTrainWorker pid=1) [seqlab] epoch 1/2: train_loss 1.0") is None
    assert story.pick("[seqlab] trial 2/4 h064-do0.1000 epoch 1/2: val_macro_f1 0.4100") is not None
    warning = "[seqlab] warning: MLflow tracking at http://x:5000 failed (refused); training goes on untracked"
    assert story.pick(f"(RayTrainWorker pid=1) {warning}") == warning  # a trial's warning is still shown


def test_step_lines_become_a_progress_bar_with_an_eta_on_a_terminal(tmp_path):
    story = Story(tmp_path / "x.log")
    story.tty = True
    read, story._term = os.pipe()
    for step in (2, 4, 6):
        story.route(f"(RayTrainWorker pid=5) [seqlab] epoch 1/2 step {step}/8 loss 1.{step}")
    story.route("(RayTrainWorker pid=5) [seqlab] epoch 1/2: train_loss 1.5 val_macro_f1 0.2")
    os.close(story._term)
    out = os.read(read, 65536).decode()
    frames = out.split("\r\x1b[K")
    assert frames[1].startswith("epoch 1/2 [#####...............] 2/8 loss 1.2") and "ETA" not in frames[1]
    assert frames[3].startswith("epoch 1/2 [###############.....] 6/8 loss 1.6 ETA ")
    # a story line takes the bar's place (the epoch is over); the next step line draws it again
    assert frames[4] == "[seqlab] epoch 1/2: train_loss 1.5 val_macro_f1 0.2\n" and len(frames) == 5


def _run(code: str, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          check=False, timeout=300, env={**os.environ, **env})


STORY = """
    import os, subprocess, sys
    from seqlab import console
    console.enable()
    with console.story(sys.argv[1], "train", verbose=sys.argv[2] == "1"):
        print("[seqlab] epoch 1/1: train_loss 0.5", flush=True)
        print("2026-12-01 20:43:16,032\\tINFO worker.py:1 -- Connecting to Ray", flush=True)
        os.write(2, b"written to fd 2, as Ray's C++ side does\\n")
        subprocess.run(["sh", "-c", "echo a child process; sleep 30 &"])  # a child that outlives the story
        {raise_}
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_everything_goes_to_the_log_and_the_terminal_shows_the_story(tmp_path, verbose):
    done = _run(STORY.format(raise_=""), str(tmp_path / "run"), str(int(verbose)))
    assert done.returncode == 0, done.stderr
    logs = list((tmp_path / "run" / "logs").glob("train-*.log"))
    assert len(logs) == 1
    logged = logs[0].read_text()
    for text in ("[seqlab] epoch 1/1", "INFO worker.py:1", "written to fd 2", "a child process"):
        assert text in logged
    shown = done.stdout.splitlines()
    assert shown[0] == f"[seqlab] Ray's own output and every worker's go to {logs[0]}" + (
        "" if verbose else " (--verbose shows them here)")
    assert shown[-1] == f"[seqlab] full log: {logs[0]}"
    middle = shown[1:-1]
    if verbose:
        assert middle == [line for line in logged.splitlines() if line]
    else:
        assert middle == ["[seqlab] epoch 1/1: train_loss 0.5"] and done.stderr == ""


def test_an_unexpected_error_still_reaches_the_terminal_with_its_traceback(tmp_path):
    done = _run(STORY.format(raise_="raise RuntimeError('a bug')"), str(tmp_path / "run"), "0")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: a bug" in done.stderr
    assert done.stdout.splitlines()[-1].startswith("[seqlab] full log: ")


def test_a_bad_flag_is_one_line_before_anything_is_logged(tmp_path):
    done = subprocess.run([sys.executable, "-m", "seqlab.cli", "train", "--epochs", "0",
                           "--storage-path", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip().startswith("seqlab: error: ") and len(
        done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()


def test_a_log_of_a_run_on_s3_is_copied_there(s3, tmp_path):
    from seqlab import storage

    done = _run(STORY.format(raise_=""), "s3://seqlab/console-runs/r1", "0", **s3.env())
    assert done.returncode == 0, done.stderr
    target = done.stdout.splitlines()[-1].removeprefix("[seqlab] full log: ")
    assert target.startswith("s3://seqlab/console-runs/r1/logs/train-")
    assert b"INFO worker.py:1" in storage.read_bytes(target)


def test_runs_log_prints_the_newest_log_of_a_run_and_names_those_that_have_one(tmp_path, capsys):
    from seqlab import cli
    from seqlab.errors import SeqlabError

    assert _run(STORY.format(raise_=""), str(tmp_path / "r1"), "0").returncode == 0
    out = cli.run(["runs", "log", "r1", "--storage-path", str(tmp_path)])
    printed = capsys.readouterr().out
    assert out["log"].startswith(str(tmp_path / "r1" / "logs" / "train-")) and "INFO worker.py:1" in printed
    with pytest.raises(SeqlabError, match=r"no log of a run or search named 'r2' under .*; those with logs: r1$"):
        cli.run(["runs", "log", "r2", "--storage-path", str(tmp_path)])
