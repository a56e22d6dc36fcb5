"""How the command lines end: one line and an exit code for every expected failure.

run_cli(fn, *args)  # 2: a problem the message names (config, data, workdir, disk, memory)
                    # 128 + signal: a run stopped by SIGINT/SIGTERM, its state saved
"""

from __future__ import annotations

import signal
import sys

from vae_jax.errors import USER_ERRORS, Interrupted, machine_failure


def fail(message: str):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def run_cli(fn, *args) -> None:
    """Call fn(*args); every expected failure ends in one line and an exit code: 2 for a
    problem the message names, 128 + the signal for a run stopped by SIGINT/SIGTERM."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt from here on
    try:
        fn(*args)
    except USER_ERRORS as e:
        fail(str(e))
    except Interrupted as e:
        print(f"\n{e}", file=sys.stderr, flush=True)
        sys.exit(128 + e.signum)
    except KeyboardInterrupt:
        print(
            "\ninterrupted; what the workdir held is intact (checkpoints are written "
            "atomically): run the same command again",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(130)
    except Exception as e:
        message = machine_failure(e)
        if message is None:
            raise
        fail(message)
