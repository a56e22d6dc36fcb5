"""Resuming a workdir without mixing two runs.

A workdir holds one run: its config.json, checkpoints and metrics.jsonl must describe the
same computation. When a run is resumed with a config that differs from the saved one:

- a field that changes what the run computes (the seed, the data, the model, the
  objective, β, the learning rate, the optimizer, ...) is refused, in one line naming each
  field with its saved and its new value;
- `--config.train.allow_resume_changes=True` accepts such a change on purpose (fine-tuning,
  a new learning rate): training continues from the checkpoint, the change is appended to
  `config_history.jsonl` with the step, and the report shows it. The optimizer's state is
  kept when its structure is unchanged and re-initialised otherwise (recorded too);
  parameters whose shapes changed cannot be resumed at all;
- fields that only change how the run executes or is evaluated (logging and checkpoint
  cadence, the step runner, evaluation settings, more steps of a constant learning rate)
  are accepted silently;
- the data are checked on every resume against the fingerprint in run.json: a changed
  data path (data.dir, data.tfds_dir, data.source) is accepted when the data it loads are
  the same, byte for byte, as the run's, and data changed in place are refused;
- a run already past train.num_steps is refused (it would be evaluated and labelled as the
  shorter run).
"""

from __future__ import annotations

import json
import os
import time

import jax

from vae_jax.config_lib import load_saved_config, selected_view
from vae_jax.errors import ConfigError
from vae_jax.files import append_line, write_json_atomic
from vae_jax.state import TrainState, abstract_setup, make_optimizer

PATH_FIELDS = ("data.dir", "data.tfds_dir", "data.source")
# Fields that change how a run executes or is evaluated, never what it computes.
EXECUTION_FIELDS = (
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.max_nonfinite_steps",
    "train.max_nonfinite_fraction",
    "train.fuse_steps",
    "train.cpu_tuning",
    "train.eval_every",
    "train.allow_resume_changes",
    "train.require_accelerator",
    "train.deterministic",
    "sweep",
    "parallel.data",
)
HISTORY = "config_history.jsonl"
RUN_RECORD = "run.json"


def _flat(config: dict) -> dict[str, object]:
    """Dotted field -> value, for the fields a run depends on (sub-sections of parts the
    run does not select are left out)."""
    out = {}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[prefix + k] = v

    for section, value in config.items():
        if isinstance(value, dict):
            walk(
                selected_view(config, section) if section in ("model", "objective") else value,
                f"{section}.",
            )
        else:
            out[section] = value
    return out


def _matters(field: str, config: dict) -> bool:
    if field.startswith("eval.") or field in EXECUTION_FIELDS or field in PATH_FIELDS:
        return False
    if field == "train.num_steps":  # more steps of a constant rate continue the same run
        return config["train"].get("lr_schedule", "constant") != "constant"
    return True


def changes(saved: dict, new: dict) -> dict[str, tuple]:
    """{field: (saved, new)} for the fields that change what the run computes."""
    old, cur = _flat(saved), _flat(new)
    fields = sorted({*old, *cur})
    return {
        f: (old.get(f), cur.get(f)) for f in fields if old.get(f) != cur.get(f) and _matters(f, new)
    }


def check(workdir: str, config, dataset) -> tuple[object, dict[str, tuple]]:
    """Before resuming `workdir`: (the saved config, the accepted changes). Raises
    ConfigError for a change that is not allowed, or a data path that loads other data."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return config, {}
    saved = load_saved_config(path)
    old, new = json.loads(saved.to_json()), json.loads(config.to_json())
    moved = [f for f in PATH_FIELDS if _flat(old).get(f) != _flat(new).get(f)]
    recorded = read_record(workdir).get("data_fingerprint")
    if (recorded or moved) and recorded != dataset.fingerprint():
        where = (
            f"{', '.join(moved)} changed and now load{'s' if len(moved) == 1 else ''}"
            if moved
            else "the data at the run's path changed since it trained, and are now"
        )
        raise ConfigError(
            f"{where} other data than the run in {workdir} was trained on"
            + ("" if recorded else " (or the run predates run.json and cannot be checked)")
            + "; point it back at the run's data, or use a new --workdir"
        )
    found = changes(old, new)
    if found and not config.train.allow_resume_changes:
        listed = "; ".join(f"{f}: {a!r} -> {b!r}" for f, (a, b) in found.items())
        raise ConfigError(
            f"resuming {workdir} with a different run: {listed}. Use the saved config, a new "
            "--workdir, or --config.train.allow_resume_changes=True to continue with these "
            "changes on purpose (they are recorded in config_history.jsonl)"
        )
    return saved, found


def restore(ckpt, saved_config, config, template: TrainState, data_shape, num_train: int):
    """The newest checkpoint, restored with the structure the saved config gives it, then
    carried into `template` (the new config's state): params and model state as they were,
    the optimizer's state kept if its structure is unchanged, else re-initialised.
    A newest checkpoint that does not restore is set aside for the one before it
    (Checkpointer.restore_newest). Returns (step, state, note) with note None or what
    happened to the optimizer."""
    _, saved_template = abstract_setup(saved_config, data_shape, num_train)
    step, old = ckpt.restore_newest(saved_template)
    shapes = lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree)
    for part in ("params", "model_state"):
        if shapes(getattr(old, part)) != shapes(getattr(template, part)):
            raise ConfigError(
                "cannot resume with these changes: the model's parameters change shape; "
                "train the new model in a new --workdir"
            )
    note = None
    opt_state = old.opt_state
    if shapes(old.opt_state) != shapes(template.opt_state):
        opt_state = make_optimizer(config.train).init(old.params)
        note = "optimizer state re-initialised (its structure changed)"
    return step, old._replace(opt_state=opt_state), note


def record_changes(workdir: str, step: int, found: dict[str, tuple], note: str | None) -> None:
    entry = {
        "step": int(step),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "changes": {f: {"saved": a, "new": b} for f, (a, b) in found.items()},
    }
    if note:
        entry["note"] = note
    append_line(os.path.join(workdir, HISTORY), entry)


def read_history(workdir: str) -> list[dict]:
    path = os.path.join(workdir, HISTORY)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_record(workdir: str) -> dict:
    path = os.path.join(workdir, RUN_RECORD)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def write_record(workdir: str, dataset) -> None:
    """run.json: facts about the run that its config does not hold (the data's fingerprint)."""
    write_json_atomic(
        os.path.join(workdir, RUN_RECORD),
        {**read_record(workdir), "data_fingerprint": dataset.fingerprint()},
    )
