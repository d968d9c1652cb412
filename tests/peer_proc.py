"""A `python -m fastloop up` child process for tests: started from the environment, its
stdout read line by line on a thread, waited for with deadlines, stopped by signal, and
always reaped (killed by its own PID if a test fails half-way)."""
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class UpProcess:
    def __init__(self, env_overrides, args=(), command=("-m", "fastloop", "up")):
        """command: what the child's Python runs (default `-m fastloop up`; a string names
        a fastloop subcommand)."""
        if isinstance(command, str):
            command = ("-m", "fastloop", command)
        env = dict(os.environ)
        env.pop("FASTLOOP_EAL_ARGS", None)
        env.update(env_overrides)
        env["PYTHONPATH"] = os.pathsep.join((REPO, os.path.join(REPO, "tests"),
                                             env.get("PYTHONPATH", "")))
        self.proc = subprocess.Popen([sys.executable, *command, *args], env=env,
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = []
        self.stderr = ""
        self._q = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self):
        return self.proc.pid

    @property
    def runtime_dir(self):
        """The child's EAL runtime directory (fastloop uses --file-prefix=fastloop-<pid>)."""
        return f"/var/run/dpdk/fastloop-{self.proc.pid}"

    def _read(self):
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_line(self, predicate, timeout=20.0):
        """The first stdout line for which predicate(line) is true, within `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line in {timeout}s; stdout so far: {self.lines}")
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self.stderr = self.proc.stderr.read()
                raise AssertionError(f"fastloop up exited ({self.proc.returncode}) first; "
                                     f"stdout {self.lines}, stderr {self.stderr}")
            self.lines.append(line)
            if predicate(line):
                return line

    def wait_ready(self, timeout=20.0):
        """Wait for the description `fastloop up` prints once the stack is up."""
        self.wait_line(lambda l: "Ctrl-C to stop" in l, timeout)
        return self.lines

    def finish(self, sig=None, timeout=15.0):
        """Send `sig` (if any), wait for exit; returns (returncode, all stdout lines, stderr)."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        while True:
            try:
                line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        self.stderr += self.proc.stderr.read()
        return self.proc.returncode, self.lines, self.stderr

    def kill(self):
        """Reap the child whatever happened (by its PID, never by name)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        if self.proc.returncode < 0:           # killed: its EAL could not remove its files
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def final_line(lines):
    """The `fastloop up: stopped; ...` summary line."""
    stopped = [l for l in lines if l.startswith("fastloop up: stopped;")]
    assert stopped, f"no final summary in {lines}"
    return stopped[-1]


def answered_in(line):
    """N from '... N pings answered ...'."""
    words = line.split()
    return int(words[words.index("pings") - 1])
