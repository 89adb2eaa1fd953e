"""The harness every script in `stages/` runs under (the scripts are the DVC stages; this is their
shared `main`): user errors (`StageError`) print as one clear message, not a traceback, and a stage
relaunches itself under `accelerate launch` when MINISD_ACCELERATE_ARGS asks for it."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from typing import Callable

from minisd.params.base import ParamsError

LAUNCH_ENV = "MINISD_ACCELERATE_ARGS"  # e.g. "--multi_gpu --num_processes 4"
_LAUNCHED = "MINISD_LAUNCHED"


class StageError(RuntimeError):
    """A failure the user can fix (bad input, missing artifact); shown without a traceback."""


def relaunch_under_accelerate(script: str) -> int | None:
    """Re-run `script` through `accelerate launch` when MINISD_ACCELERATE_ARGS asks for it.

    The launcher lives in the environment, not in dvc.yaml, so moving from one CPU to eight GPUs
    changes no stage command and invalidates nothing in DVC's cache.
    """
    args = os.environ.get(LAUNCH_ENV, "").strip()
    if not args or os.environ.get(_LAUNCHED):
        return None
    command = [sys.executable, "-m", "accelerate.commands.launch", *shlex.split(args), script, *sys.argv[1:]]
    logging.getLogger("minisd").info("relaunching: %s", shlex.join(command))
    return subprocess.call(command, env={**os.environ, _LAUNCHED: "1"})


def main(run: Callable[[], None], script: str | None = None, distributed: bool = False) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if distributed and script:
        code = relaunch_under_accelerate(script)
        if code is not None:
            sys.exit(code)
    try:
        run()
    except (ParamsError, StageError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
