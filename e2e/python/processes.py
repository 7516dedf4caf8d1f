"""Child processes of the tests (mongorelay, private MongoDB stand-ins) with their logs in files.

A process never outlives the test run: it is started under `setpriv --pdeathsig KILL` where
that exists (so even a killed pytest takes it along), the fixtures stop it at the end of the
test, and its log is attached to the test's report when the test fails.
"""
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

LOG_TAIL_LINES = 150


class Process:
    """One child process; stderr goes to <name>.log and stdout to <name>.stdout in a directory."""

    def __init__(self, name, argv, directory, env=None):
        self.name, self.argv = name, list(argv)
        self.log_path = Path(directory) / f"{name}.log"
        self.stdout_path = Path(directory) / f"{name}.stdout"
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        with open(self.log_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.popen = subprocess.Popen(guard + self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                          env=env, start_new_session=True)
        self.started = time.monotonic()

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    def wait_for_line(self, pattern, timeout_s):
        """The first log line (stderr, then stdout) matching the regex pattern, waiting up to timeout_s."""
        regex = re.compile(pattern)
        return self.wait_for_log(lambda line: regex.search(line) is not None, f"/{pattern}/", timeout_s)

    def wait_for_log(self, matches, what, timeout_s):
        """The first log line for which matches(line) is true, waiting up to timeout_s.

        Fails early, with the log, if the process exits first.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            exited = not self.alive()  # read the logs after this, so an exit's last words are in them
            for line in (self.log() + "\n" + self.stdout()).splitlines():
                if matches(line):
                    return line
            if exited:
                raise AssertionError(f"{self.name} exited with {self.popen.returncode} before logging "
                                     f"{what}:\n{self.tail()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name} logged no {what} within {timeout_s} s:\n{self.tail()}")
            time.sleep(0.2)

    def wait(self, timeout_s):
        """The exit code, waiting up to timeout_s; fails (killing the process) if it is still running."""
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout_s} s:\n{self.tail()}") from None

    def stop(self, timeout_s=30):
        """SIGTERM, then the exit code (waiting up to timeout_s)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def kill(self):
        """SIGKILL to the process (and its session, should it have children); waits for it."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait(timeout=10)

    def tail(self, lines=LOG_TAIL_LINES):
        """The end of the log, for failure messages."""
        text = self.log().splitlines()[-lines:]
        out = self.stdout().splitlines()[-20:]
        return "\n".join([f"--- {self.log_path} (last {len(text)} lines)", *text]
                         + ([f"--- {self.stdout_path}", *out] if out else []))


def assert_stops_failed(process, coll):
    """SIGTERM to a mongorelay standalone one of whose tasks FAILED: it must exit 1 and say, last,
    which task of coll failed (a supervisor sees the failure in the exit status)."""
    code = process.stop(timeout_s=60)
    _, said, last_words = process.log().rpartition("mongorelay standalone: stopped with ")
    assert code == 1 and said and "FAILED task" in last_words and f".{coll}#" in last_words, (
        f"{process.name} had a FAILED task: on SIGTERM it must exit 1 naming the task, "
        f"but exited {code}:\n{process.tail()}")
