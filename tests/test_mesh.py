"""Data parallelism on 8 fake CPU devices (--xla_force_host_platform_device_count=8, set in
a subprocess before JAX starts): a run whose batch is split over a `data` mesh axis equals
the 1-device run, step for step, to float32 round-off, for the MLP and the conv net."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from vae_jax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, ".")
from tests.helpers import tiny_config, read_metrics
from vae_jax.data import load_dataset
from vae_jax.train import train
net, devices, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
overrides = {"parallel.data": devices, "train.num_steps": 20, "model.net": net}
if net == "conv":
    overrides.update({"model.conv.channels": (4, 8), "model.conv.hidden_dim": 16})
config = tiny_config(**overrides)
_, variables = train(config, workdir, load_dataset(config.data))
leaves = jax.tree.leaves(variables)
print(json.dumps({
    "devices": len(jax.devices()),
    "spans": len(leaves[0].sharding.device_set),
    "params": [np.asarray(x).ravel()[:50].tolist() for x in leaves],
    "losses": [r["loss"] for r in read_metrics(workdir)],
}))
"""


def _on_8_devices(script: str, *args) -> str:
    """The last line `script` prints, run in a process that sees 8 CPU devices."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    env["JAX_PLATFORMS"] = "cpu"  # fake CPU devices, also on a machine with a GPU
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _run(net: str, devices: int, workdir) -> dict:
    return json.loads(_on_8_devices(SCRIPT, net, devices, workdir))


@pytest.mark.parametrize("net", ["mlp", pytest.param("conv", marks=pytest.mark.slow)])
def test_a_run_sharded_over_8_devices_equals_the_1_device_run(tmp_path, net):
    one = _run(net, 1, tmp_path / "one")
    eight = _run(net, 8, tmp_path / "eight")
    assert one["devices"] == eight["devices"] == 8
    assert one["spans"] == 1 and eight["spans"] == 8  # the state lives on all 8
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-5)
    for a, b in zip(eight["params"], one["params"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


HLO_SCRIPT = r"""
import sys
import jax, jax.numpy as jnp
sys.path.insert(0, ".")
from tests.helpers import tiny_config
from vae_jax.hyper import Hyper
from vae_jax.mesh import make_mesh, replicate
from vae_jax.state import setup
from vae_jax.step import make_train_step
config = tiny_config(**{"parallel.data": int(sys.argv[1])})
graphdef, state, tx, objective, key = setup(config, (28, 28, 1), 320)
mesh = make_mesh(config)
step = make_train_step(graphdef, objective, tx, mesh=mesh)
batch = replicate(mesh, {"image": jnp.zeros((16, 28, 28, 1), jnp.uint8)})
text = jax.jit(step).lower(replicate(mesh, state), batch, key, Hyper()).compile().as_text()
print(text.count("all-reduce"), "[2,28,28,1]" in text)
"""


def test_the_sharded_step_reduces_gradients_across_devices():
    """The batch really is split: each device's program holds 2 of the 16 rows (a
    replicated step would hold all 16), and the 8-device step all-reduces (the gradient and
    the batch means); the 1-device step has nothing to reduce."""
    out = [_on_8_devices(HLO_SCRIPT, devices).split() for devices in (1, 8)]
    (one, one_split), (eight, eight_split) = out
    assert int(one) == 0 and int(eight) > 0, out
    assert eight_split == "True" and one_split == "False", out


def test_bad_device_counts_are_refused():
    from tests.helpers import tiny_config
    from vae_jax import config_check
    from vae_jax.mesh import make_mesh

    with pytest.raises(ConfigError, match="parallel.data"):
        config_check.validate_config(tiny_config(**{"parallel.data": 0}))
    import jax

    count = len(jax.devices())
    with pytest.raises(ConfigError, match=f"JAX finds {count}"):
        make_mesh(tiny_config(**{"parallel.data": count + 1}))
    with pytest.raises(ConfigError, match="must divide evenly"):  # the tests see 2 devices
        make_mesh(tiny_config(**{"parallel.data": 2, "data.batch_size": 5}))
    assert make_mesh(tiny_config(**{"parallel.data": -1, "data.batch_size": 5})).size == 1


EVAL_SCRIPT = r"""
import json, sys
import jax, numpy as np
sys.path.insert(0, ".")
from tests.helpers import tiny_config
from vae_jax.evaluate.elbo import _batch_terms, dataset_elbo
from vae_jax.evaluate.loglik import dataset_log_likelihood
from vae_jax.mesh import make_mesh, replicate, rows_on
from vae_jax.model import full_state
from vae_jax.state import eval_graphdef, setup
config = tiny_config(**{"parallel.data": 8})
_, state, *_ = setup(config, (28, 28, 1), 320)
graphdef = eval_graphdef(config, (28, 28, 1), 320)
variables = full_state(state.params, state.model_state)
mesh = make_mesh(config)
images = (np.random.RandomState(0).rand(30, 28, 28, 1) > 0.5).astype(np.uint8)
key = jax.random.key(3)
out = {}
for name, v in (("one", variables), ("eight", replicate(mesh, variables))):
    for batch in (16, 12):  # 12 is rounded up to 16 on 8 devices
        out[f"{name}_elbo_{batch}"] = dataset_elbo(
            graphdef, v, images, key, num_samples=2, batch_size=batch)["elbo"].tolist()
    out[f"{name}_loglik"] = dataset_log_likelihood(
        graphdef, v, images, key, num_samples=10, chunk_size=4, batch_size=16).tolist()
size, rows = rows_on(mesh, 12)
terms = _batch_terms(graphdef, replicate(mesh, variables), jax.device_put(images[:size], rows),
                     key, 2, False)
out["spans"] = len(terms["elbo"].sharding.device_set)
print(json.dumps(out))
"""


def test_evaluation_follows_the_state_onto_the_mesh():
    """Variables replicated on an 8-device mesh are evaluated with each batch's rows split
    over it: the same numbers as on one device, every example kept (30 rows in batches of
    16: the last one padded), and a batch size of 12 rounded up to 16."""
    out = json.loads(_on_8_devices(EVAL_SCRIPT))
    assert out["spans"] == 8  # the per-example terms come back split over the 8 devices
    for name in ("one", "eight"):
        assert len(out[f"{name}_elbo_16"]) == len(out[f"{name}_loglik"]) == 30
    np.testing.assert_allclose(out["eight_elbo_16"], out["one_elbo_16"], rtol=1e-5)
    np.testing.assert_allclose(out["eight_loglik"], out["one_loglik"], rtol=1e-5)
    np.testing.assert_allclose(out["eight_elbo_12"], out["one_elbo_16"], rtol=1e-5)
    assert not np.allclose(out["one_elbo_12"], out["one_elbo_16"])  # the batch size matters
