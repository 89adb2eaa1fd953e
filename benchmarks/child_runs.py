"""Child processes for benchmarks/gpu_check.py: run them safely, watch them, report what they did.

`sh` gives each child its own process group and stops the whole group on timeout or interrupt, so no
stage outlives the check; the pollers read what the children cannot report themselves (GPU memory
from nvidia-smi, the ranks torchrun really started from /proc); `Report` keeps a log and a JSON that a
killed run does not lose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from minisd.stage import LAUNCH_ENV

MARKER_ENV = "GPU_CHECK_MARKER"  # tags the processes of the 2-process run


class Report:
    """Everything printed also goes to the log; children's output goes only to the log (long);
    the JSON is rewritten after each part so a killed run keeps what it measured."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.log_path, self.json_path = out / "gpu_check.log", out / "gpu_check.json"
        self.log_file = self.log_path.open("w")
        self.data: dict = {"log": str(self.log_path)}

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.log_file.write(text + "\n")
        self.log_file.flush()

    def child(self, title: str, output: str) -> None:
        self.log_file.write(f"\n----- {title}\n{output.rstrip()}\n----- end of {title}\n\n")
        self.log_file.flush()

    def save(self, **parts) -> None:
        self.data.update(parts)
        self.json_path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")


def child_env(copy: Path, **extra: str) -> dict:
    """Offline, no analytics, a git identity, the copy's own src/, and no launcher unless asked."""
    env = {k: v for k, v in os.environ.items() if k != LAUNCH_ENV}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(copy / "src"),
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="gpu-check", GIT_AUTHOR_EMAIL="gpu-check@example.com",
        GIT_COMMITTER_NAME="gpu-check", GIT_COMMITTER_EMAIL="gpu-check@example.com",
    )  # fmt: skip
    env.update(extra)
    return env


def sh(cmd: list[str], cwd: Path, env: dict, timeout: float) -> tuple[int, str, float]:
    """(exit code, stdout+stderr, seconds). The child gets its own process group, stopped as a whole on
    timeout (rc 124) or when this script is interrupted, so no stage outlives the check."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        stop_group(proc)
        try:
            output = proc.communicate(timeout=30)[0] or ""
        except subprocess.TimeoutExpired:  # a grandchild that left the group still holds the pipe
            output = ""
        rc, output = 124, output + f"\n[gpu_check: stopped after {timeout:.0f} s]"
    except BaseException:
        stop_group(proc)
        raise
    return rc, output, time.perf_counter() - start


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the child's process group (torchrun passes it on to its workers), SIGKILL it after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through sh(), which stops the running child's group


class Poller:
    """Calls `sample()` on a thread every `interval` seconds while the with-block runs."""

    interval = 0.2

    def sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class GpuMemoryPeak(Poller):
    """Peak `memory.used` summed over the GPUs, from nvidia-smi; None without one.

    The stages are other processes, so torch.cuda.max_memory_allocated cannot see them; this
    counts what the device really held: CUDA contexts and the caching allocator's reserve included.
    """

    def __init__(self):
        self.available, self.peak_mib = shutil.which("nvidia-smi") is not None, None

    def sample(self) -> None:
        if not self.available:
            return
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=10).stdout
            self.peak_mib = max(self.peak_mib or 0, sum(int(x) for x in out.split()))
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass


class RanksSeen(Poller):
    """The (RANK, WORLD_SIZE) of every live process carrying `marker` in its environment, read from
    /proc (Linux): proof that torchrun really started the ranks, whatever the children print."""

    interval = 0.5

    def __init__(self, marker: str):
        self.marker, self.ranks = marker.encode(), set()

    def sample(self) -> None:
        for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else []):
            try:
                env = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                           if b"=" in item)
            except OSError:  # gone, or not ours
                continue
            if env.get(MARKER_ENV.encode()) == self.marker and b"RANK" in env:
                self.ranks.add((int(env[b"RANK"]), int(env.get(b"WORLD_SIZE", b"0"))))


def failure_reason(output: str, rc: int) -> str:
    """The lines that say why a child failed (errors last), not the whole traceback."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|Error|ERROR|Duplicate GPU|stopped after", line)]
    return f"exit code {rc}: " + " | ".join((errors or lines)[-4:])[-1500:]
