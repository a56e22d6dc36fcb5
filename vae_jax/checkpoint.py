"""Orbax checkpoints: periodic, atomic, finite, and resume from the newest one that restores.

Orbax writes each step into a temporary folder and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact; an unfinished one is ignored.
Saving is synchronous: the step a run reports as saved is on disk. A state holding a
non-finite value is never saved (CheckpointError). A newest checkpoint that does not
restore (a truncated array file, a deleted item folder, torn metadata) is moved aside
into `checkpoints_corrupt/` with one warning, and the next newest is restored; when none
restores, CheckpointError names the folder and the fix.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import sys
import time

import jax
import orbax.checkpoint as ocp

from vae_jax.distributed import is_writer
from vae_jax.errors import CheckpointError, machine_failure
from vae_jax.state import tree_finite

CORRUPT = "checkpoints_corrupt"


_tree_finite = jax.jit(tree_finite)


def all_finite(tree) -> bool:
    """Whether every floating-point leaf of `tree` is finite (state.tree_finite, jitted)."""
    return bool(_tree_finite(tree))


@contextlib.contextmanager
def _quiet():
    """Silence the logs orbax writes besides raising (absl, asyncio) for the duration."""
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _drop_orbax_unraisables() -> None:
    """From now on, drop the "Exception ignored in <coroutine>" reports of orbax's
    abandoned reads (a failed restore leaves some, collected at any later time, even at
    exit); every other unraisable exception goes to the hook as before."""
    previous = sys.unraisablehook
    if getattr(previous, "drops_orbax", False):
        return

    def hook(unraisable):
        code = getattr(unraisable.object, "cr_code", None)
        if code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename:
            return
        previous(unraisable)

    hook.drops_orbax = True
    sys.unraisablehook = hook


# tensorstore status codes that describe the machine or the file system, not the files' content
_MACHINE_STATUS = ("RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAVAILABLE", "DEADLINE_EXCEEDED")


def _not_about_the_files(error: Exception) -> bool:
    """Whether a failed restore is the machine's failure (memory, permission, a file
    system that did not answer), which must not get a good checkpoint set aside."""
    text = str(error)
    return machine_failure(error) is not None or any(code in text for code in _MACHINE_STATUS)


def _first_words(error: Exception, limit: int = 200) -> str:
    """The gist of an orbax/tensorstore error on one line, without its dumped spec."""
    text = " ".join(str(error).split()).split(" See full TensorStore details")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _restore_target(leaf, sharding=None) -> jax.ShapeDtypeStruct:
    """Where a leaf is restored: `sharding` (the run's, when given), the template's own, or
    this process's first device. A checkpoint saved from a mesh of 8 devices then restores
    on one (orbax would otherwise ask for the saved topology)."""
    sharding = sharding or getattr(leaf, "sharding", None)
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)


def latest_step(workdir: str) -> int | None:
    """The newest checkpoint step of `workdir` (None if none), creating nothing."""
    ckpt = Checkpointer(workdir, read_only=True)
    try:
        return ckpt.latest_step()
    finally:
        ckpt.close()


class Checkpointer:
    """`read_only=True` (evaluation) never creates or changes anything in the workdir."""

    def __init__(self, workdir: str, max_to_keep: int = 2, read_only: bool = False, sharding=None):
        """`sharding`: where every restored leaf goes (a run's replicated mesh sharding: a
        multi-host run restores straight onto every host's devices); None: the template's."""
        self.workdir = os.path.abspath(workdir)
        self.sharding = sharding
        self.directory = os.path.join(self.workdir, "checkpoints")
        self.read_only = read_only
        if read_only and not os.path.isdir(self.directory):
            self._manager = None
            return
        with _quiet():  # read-only options and a torn _CHECKPOINT_METADATA are logged
            self._options = ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                enable_async_checkpointing=False,
                create=not read_only,
                read_only=read_only,
            )
            self._manager = ocp.CheckpointManager(self.directory, options=self._options)

    def _reopen(self) -> None:
        """A fresh manager: one that failed to restore a step may fail the next for that."""
        self._manager.close()
        with _quiet():
            self._manager = ocp.CheckpointManager(self.directory, options=self._options)

    def latest_step(self) -> int | None:
        return None if self._manager is None else self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return [] if self._manager is None else list(self._manager.all_steps())

    def save(self, step: int, state) -> None:
        if not all_finite(state):
            raise CheckpointError(
                f"refusing to save step {step} into {self.directory}: the state holds "
                "non-finite values (the last checkpoint there is the last finite one)"
            )
        need = sum(x.nbytes for x in jax.tree.leaves(state)) + 2**20  # arrays + metadata
        free = shutil.disk_usage(self.directory).free
        if free < need:
            newest = self.latest_step()
            raise CheckpointError(
                f"the disk is full: saving step {step} needs about {need / 2**20:.1f} MiB in "
                f"{self.directory}, {free / 2**20:.1f} MiB are free. Free space there or use "
                "another --workdir"
                + (f"; the newest checkpoint (step {newest}) is intact" if newest else "")
            )
        with _quiet():  # a failed write is raised below; orbax's own logs would bury it
            self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
            self._manager.wait_until_finished()

    def restore(self, template, step: int | None = None):
        """Restore into the structure (and dtypes/shapes) of `template`; latest by default."""
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(lambda leaf: _restore_target(leaf, self.sharding), template)
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def restore_newest(self, template) -> tuple[int, object]:
        """(step, state) of the newest checkpoint that restores into `template` and holds
        only finite values. Newer ones whose files are damaged (or hold a non-finite value)
        are moved into checkpoints_corrupt/ (kept, never deleted) with a warning each, or
        only skipped when read-only. When none restores, nothing moves. A failure of the
        machine while reading (out of memory, permission, an unavailable file system) is
        raised as it is: it says nothing about the checkpoint."""
        steps = sorted(self._manager.all_steps() if self._manager else (), reverse=True)
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        failed = []
        for step in steps:
            try:
                with _quiet():  # orbax logs each failed read at length; one warning is enough
                    state = self.restore(template, step)
            except Exception as e:  # orbax/tensorstore raise many kinds for a damaged file
                if _not_about_the_files(e):
                    raise
                failed.append((step, _first_words(e)))
                _drop_orbax_unraisables()
                with _quiet():  # its failed reads' stray tasks are logged when collected
                    self._reopen()
                    gc.collect()
                continue
            if not all_finite(state):  # written by an older version, or damaged in place
                failed.append((step, "it holds non-finite values"))
                continue
            # Only once an older one restores: a template that fits none (a changed
            # config) must not move good checkpoints aside.
            for bad, reason in failed:
                self._set_aside(bad, reason)
            return step, state
        raise CheckpointError(
            f"no checkpoint in {self.directory} restores (steps {steps}; last error: "
            f"{failed[-1][1]}). If the files are damaged, move the workdir aside and train "
            "again; if the config changed, resume with the run's own config"
        )

    def _set_aside(self, step: int, reason: str) -> None:
        source = os.path.join(self.directory, str(step))
        if self.read_only or not is_writer():  # process 0 of a multi-host run moves it
            print(
                f"warning: checkpoint {source} does not restore ({reason}); using an older one",
                file=sys.stderr,
                flush=True,
            )
            return
        target = os.path.join(self.workdir, CORRUPT, str(step))
        if os.path.exists(target):  # set aside before: keep both
            target += time.strftime("-%Y%m%dT%H%M%S")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.move(source, target)
        self._reopen()
        print(
            f"warning: checkpoint {source} does not restore ({reason}); moved it to {target} "
            "and resuming from the newest one before it",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
