"""The train step and loop: one compilation, jit = no jit, determinism from the seed, the loss
falls, bit-exact resume (also after a kill mid-save), and the non-finite guard (vdvae-jax's
skip-and-count on the device, an error naming the step range on the host)."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.experimental.compilation_cache import compilation_cache

from tests.helpers import read_metrics, tiny_config, tree_equal
from vae_jax import objectives
from vae_jax.checkpoint import Checkpointer
from vae_jax.data import batch_indices, load_dataset
from vae_jax.experiment import run as train_and_evaluate
from vae_jax.hyper import Hyper, hyper_from_config
from vae_jax.state import TrainState, setup
from vae_jax.step import make_chunk_runner, make_train_step, mean_over_finite
from vae_jax.train import NonFiniteLossError

SHAPE = (28, 28, 1)
BATCH = 16


def _copy(tree):
    """Fresh buffers, so a donated call cannot invalidate the fixture's state."""
    return jax.tree.map(jnp.copy, tree)


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


@pytest.fixture(scope="module", autouse=True)
def persistent_compilation_cache(tmp_path_factory):
    """Every train_and_evaluate call jits a fresh step function, and XLA takes ~5 s of CPU to
    compile it. A persistent cache in a temporary folder lets the module's runs share one
    compilation per distinct step; it is switched off again afterwards."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    saved = {name: getattr(jax.config, name) for name in names}
    compilation_cache.reset_cache()
    jax.config.update(names[0], str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update(names[1], 0.3)
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def parts():
    """Everything a step needs, built once for the module."""
    config = tiny_config()
    graphdef, state, tx, objective, key = setup(config, SHAPE)
    step = make_train_step(graphdef, objective, tx)
    data = {"image": jnp.asarray(load_dataset(config.data).train_x)}  # [N, 28, 28, 1] uint8
    return dict(
        config=config,
        graphdef=graphdef,
        state=state,
        tx=tx,
        objective=objective,
        key=key,
        hyper=hyper_from_config(config.hyper),
        step=step,
        jit_step=jax.jit(step),
        jit_multi=make_chunk_runner(step, fuse_steps=True, length=4),
        data=data,
    )


def test_steps_compile_once(parts):
    """New data, indices, keys and β values reuse the one compiled executable."""
    data, key = parts["data"], parts["key"]
    multi, single = parts["jit_multi"], parts["jit_step"]
    state = _copy(parts["state"])
    n = len(data["image"])
    for i in range(3):
        call_data = {"image": jnp.roll(data["image"], i, axis=0)}  # new values, same shape
        idx = jnp.asarray(batch_indices(n, BATCH, i, 4 * i, 4))  # [4, B]
        hyper = Hyper(beta=jnp.float32(1.0 + i))
        state, metrics = multi(state, call_data, idx, jax.random.fold_in(key, i), hyper)
        assert np.isfinite(float(metrics["loss"]))
    assert multi.jitted._cache_size() == 1
    assert int(state.step) == 12

    s = parts["state"]
    for i in range(3):
        batch = _rows(data, slice(BATCH * i, BATCH * (i + 1)))
        s, _ = single(s, batch, jax.random.fold_in(key, i), Hyper(beta=jnp.float32(0.5 * i)))
    assert single._cache_size() == 1
    assert int(s.step) == 3


@pytest.mark.slow  # ~14 s; `make test-slow`
def test_jit_matches_no_jit(parts):
    state, data, key, hyper = parts["state"], parts["data"], parts["key"], parts["hyper"]
    batch = _rows(data, slice(0, BATCH))
    s_jit, m_jit = parts["jit_step"](state, batch, key, hyper)
    with jax.disable_jit():
        s_eager, m_eager = parts["step"](state, batch, key, hyper)
    # Loss and gradient norm agree to float32 round-off. Adam's first update is ≈ lr·sign(g),
    # so on near-zero gradients a round-off change in g moves a parameter by a few 1e-6;
    # atol is 1e-5 against lr = 3e-3.
    _assert_trees_close(m_jit, m_eager, rtol=1e-5, atol=0.0)
    _assert_trees_close(s_jit.params, s_eager.params, atol=1e-5)
    _assert_trees_close(s_jit.opt_state, s_eager.opt_state, atol=1e-5)
    assert not tree_equal(s_jit.params, state.params)  # the step did update


def test_scan_matches_step_loop(parts):
    """The fused multi-step is the same computation as calling the step once per row."""
    state, data, key, hyper = parts["state"], parts["data"], parts["key"], parts["hyper"]
    idx = batch_indices(len(data["image"]), BATCH, 0, 0, 4)  # [4, B]
    fused, fused_metrics = parts["jit_multi"](_copy(state), data, jnp.asarray(idx), key, hyper)
    looped, losses = state, []
    for row in idx:
        looped, metrics = parts["jit_step"](looped, _rows(data, jnp.asarray(row)), key, hyper)
        losses.append(float(metrics["loss"]))
    assert int(fused.step) == int(looped.step) == 4
    _assert_trees_close(fused.params, looped.params, atol=1e-5)
    np.testing.assert_allclose(float(fused_metrics["loss"]), np.mean(losses), rtol=1e-5)


@pytest.mark.parametrize("fuse_steps", [True, False])
def test_a_short_chunk_is_padded_not_compiled_again(parts, fuse_steps):
    """The last chunk of a run (or the first after a resume) may be shorter than
    train.log_every: it runs in the program compiled for the full length, its padding rows
    change nothing, and its metrics average the real steps only."""
    data, key, hyper = parts["data"], parts["key"], parts["hyper"]
    run = make_chunk_runner(parts["step"], fuse_steps=fuse_steps, length=4)
    idx = jnp.asarray(batch_indices(len(data["image"]), BATCH, 0, 0, 6))  # [6, B]
    assert run.compile(parts["state"], data, idx[:4], key, hyper) > 0  # ahead of time
    state, full = run(_copy(parts["state"]), data, idx[:4], key, hyper)
    state, short = run(state, data, idx[4:], key, hyper)  # 2 real rows, 2 padding rows
    assert int(state.step) == 6 and int(state.nonfinite_steps) == 0
    compiled = run.jitted if fuse_steps else run.step
    assert compiled._cache_size() == 1
    looped, losses = parts["state"], []
    for row in idx:
        looped, metrics = parts["jit_step"](looped, _rows(data, row), key, hyper)
        losses.append(float(metrics["loss"]))
    _assert_trees_close(state.params, looped.params, atol=1e-5)
    np.testing.assert_allclose(float(short["loss"]), np.mean(losses[4:]), rtol=1e-5)


def test_step_vmaps_over_stacked_states_and_betas(parts):
    """The β-sweep contract: vmap of the step over (stacked states, β vector) equals one
    step per β (β is a traced argument, the state a pytree that stacks)."""
    state, data, key = parts["state"], parts["data"], parts["key"]
    batch, betas = _rows(data, slice(0, BATCH)), jnp.asarray([0.0, 1.0, 4.0], jnp.float32)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * len(betas)), state)
    swept = jax.jit(jax.vmap(parts["step"], in_axes=(0, None, None, 0)))
    s_sweep, m_sweep = swept(stacked, batch, key, Hyper(beta=betas))
    for i, beta in enumerate(betas):
        s_one, m_one = parts["jit_step"](state, batch, key, Hyper(beta=beta))
        # Adam's first step is lr·g/(|g| + ε): where |g| is near ε = 1e-8, a round-off change
        # in g (vmapped matmuls reduce in another order) moves the update by up to a few
        # 1e-5; 3e-5 is 1 % of lr = 3e-3, while a wrong β changes whole layers by ~lr.
        params_i = jax.tree.map(lambda x, i=i: x[i], s_sweep.params)
        _assert_trees_close(params_i, s_one.params, atol=3e-5)
        np.testing.assert_allclose(float(m_sweep["loss"][i]), float(m_one["loss"]), rtol=1e-5)
    assert len(set(np.round(np.asarray(m_sweep["loss"]), 3))) == 3  # β changes the loss


def _rows(data: dict, idx) -> dict:
    return {k: v[idx] for k, v in data.items()}


def _poisoned(objective):
    """NaN loss on an all-zero batch; finite loss but NaN gradient on an all-one batch."""

    def wrapped(model, batch, key, ctx):
        x = batch["x"]
        loss, metrics = objective.loss(model, batch, key, ctx)
        zeros, ones = jnp.all(x == 0.0), jnp.all(x == 1.0)
        loss = jnp.where(zeros, jnp.nan, loss)
        # d/dw √(0·Σ|w|) = ∞·0 = NaN while the value stays 0. The inner `where` keeps the
        # other batches away from the infinite derivative of √ at 0.
        w = jax.tree.leaves(nnx.state(model, nnx.Param))[0]
        s = jnp.where(ones, 0.0 * jnp.abs(w).sum(), 1.0)
        loss = loss + jnp.where(ones, jnp.sqrt(s), 0.0)
        return loss, {**metrics, "loss": loss}

    return objective._replace(loss=wrapped)


def test_nonfinite_steps_are_skipped_and_counted(parts):
    step = jax.jit(make_train_step(parts["graphdef"], _poisoned(parts["objective"]), parts["tx"]))
    state, key, hyper = parts["state"], parts["key"], parts["hyper"]
    good = parts["data"]["image"][:BATCH]
    nan_loss, nan_grad = {"image": jnp.zeros_like(good)}, {"image": jnp.full_like(good, 255)}
    good = {"image": good}

    skipped, metrics = step(state, nan_loss, key, hyper)
    assert not bool(metrics["finite"]) and not np.isfinite(float(metrics["loss"]))
    assert tree_equal(skipped.params, state.params)
    assert tree_equal(skipped.opt_state, state.opt_state)
    assert int(skipped.step) == 1
    assert int(skipped.nonfinite_steps) == 1 and int(skipped.nonfinite_streak) == 1

    skipped2, metrics = step(skipped, nan_grad, key, hyper)
    assert np.isfinite(float(metrics["loss"])) and not np.isfinite(float(metrics["grad_norm"]))
    assert not bool(metrics["finite"])
    assert tree_equal(skipped2.params, state.params)
    assert tree_equal(skipped2.opt_state, state.opt_state)
    assert int(skipped2.nonfinite_steps) == 2 and int(skipped2.nonfinite_streak) == 2

    updated, metrics = step(skipped2, good, key, hyper)
    assert bool(metrics["finite"]) and np.isfinite(float(metrics["loss"]))
    assert not tree_equal(updated.params, state.params)
    assert int(updated.step) == 3
    assert int(updated.nonfinite_steps) == 2 and int(updated.nonfinite_streak) == 0


@pytest.mark.parametrize("fuse_steps", [True, False])
def test_chunk_reports_a_nonfinite_run_that_ends_inside_it(parts, fuse_steps):
    """Steps 1-3 of 6 are non-finite, then training recovers: the state's streak is back to
    0 at the end of the chunk, but the chunk still reports the run of 3 ending at step 3."""
    train_step = make_train_step(parts["graphdef"], _poisoned(parts["objective"]), parts["tx"])
    run = make_chunk_runner(train_step, fuse_steps)
    good = parts["data"]["image"][:BATCH]
    data = {"image": jnp.concatenate([good, jnp.zeros_like(good)])}  # rows B..2B-1: NaN loss
    good_row, nan_row = np.arange(BATCH), np.arange(BATCH, 2 * BATCH)
    idx = jnp.asarray(np.stack([good_row, nan_row, nan_row, nan_row, good_row, good_row]))
    state, metrics = run(_copy(parts["state"]), data, idx, parts["key"], parts["hyper"])
    assert int(state.nonfinite_streak) == 0 and int(state.nonfinite_steps) == 3
    assert int(metrics["max_nonfinite_streak"]) == 3
    assert int(metrics["max_nonfinite_streak_end"]) == 3
    assert np.isfinite(float(metrics["loss"]))  # the mean is over the 3 finite steps


def test_metrics_of_an_all_nonfinite_chunk_are_nan():
    per_step = {
        "loss": jnp.array([jnp.nan, jnp.inf]),
        "finite": jnp.array([False, False]),
        "nonfinite_streak": jnp.array([4, 5], jnp.int32),
    }
    out = mean_over_finite(per_step)
    assert np.isnan(float(out["loss"]))
    assert int(out["max_nonfinite_streak"]) == 5 and int(out["max_nonfinite_streak_end"]) == 1


def _run(workdir, **overrides):
    return train_and_evaluate(tiny_config(**overrides), str(workdir))


def _final_state(workdir, config=None) -> tuple[int, TrainState]:
    _, template, *_ = setup(config or tiny_config(), SHAPE)
    ckpt = Checkpointer(str(workdir))
    try:
        return ckpt.latest_step(), ckpt.restore(template)
    finally:
        ckpt.close()


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """The reference: 40 uninterrupted steps with the tiny config."""
    workdir = tmp_path_factory.mktemp("run_a")
    summary = _run(workdir)
    step, state = _final_state(workdir)
    return dict(workdir=workdir, summary=summary, step=step, state=state)


def test_run_outputs_and_loss_falls(run_a):
    workdir = run_a["workdir"]
    for name in ("config.json", "metrics.jsonl", "summary.json"):
        assert (workdir / name).exists(), name
    records = read_metrics(workdir)
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert all(r["nonfinite_steps"] == 0 for r in records)
    losses = [r["loss"] for r in records]
    assert losses[-1] < losses[0] - 20.0, losses  # nats per example, on a ~550-nat loss
    assert run_a["step"] == 40 and int(run_a["state"].step) == 40


def _independent_elbo(graphdef, params, images_u8, num_draws=200, seed=0):
    """Per-example ELBO of binary images from the model's networks alone: the closed-form
    KL written out in numpy, and log p(x|z) averaged over `num_draws` numpy draws of ε.
    Returns (elbo [N], kl [N], variance over draws of log p(x|z) [N])."""
    model = nnx.merge(graphdef, params)
    x = jnp.asarray(images_u8, jnp.float32) / 255.0
    q = model.posterior(x)
    mu, log_sigma = np.asarray(q.loc, np.float64), np.asarray(q.log_scale, np.float64)
    kl = 0.5 * np.sum(mu**2 + np.exp(2 * log_sigma) - 1.0 - 2.0 * log_sigma, axis=-1)
    eps = np.random.default_rng(seed).normal(size=(num_draws, *mu.shape))
    z = mu + np.exp(log_sigma) * eps  # [S, N, D]
    logits = np.asarray(model.decode(jnp.asarray(z, jnp.float32)), np.float64)
    xs = np.asarray(x, np.float64)[None]
    log_px = np.sum(xs * logits - np.logaddexp(0.0, logits), axis=(2, 3, 4))  # [S, N]
    return log_px.mean(0) - kl, kl, log_px.var(0, ddof=1)


def test_summary_elbo_matches_an_independent_estimate(run_a):
    """summary.json's test ELBO (one draw of z per example) agrees with a 200-draw estimate
    written from the formulas, within 4 Monte Carlo standard errors; its KL is the closed
    form exactly. A sign error in the KL, a grey input or a wrong reduction would not."""
    summary = json.loads((run_a["workdir"] / "summary.json").read_text())
    config = tiny_config()
    ds = load_dataset(config.data)
    graphdef = setup(config, SHAPE)[0]
    images = ds.test_x[: config.eval.max_examples]  # the fixed binary draw the summary uses
    assert set(np.unique(images)) <= {0, 255}
    elbo, kl, var = _independent_elbo(graphdef, run_a["state"].params, images)
    n = len(images)
    # The summary's mean over n single-draw estimates has variance Σ var_n / n²; the
    # reference's own Monte Carlo variance is 200 times smaller.
    se = np.sqrt(var.sum() * (1 + 1 / 200)) / n
    assert summary["num_test_examples"] == n and summary["elbo_samples"] == 1
    assert abs(summary["test_elbo_nats"] - elbo.mean()) < 4 * se, (summary, elbo.mean(), se)
    np.testing.assert_allclose(summary["test_kl_nats"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        summary["test_elbo_nats"], summary["test_log_px_nats"] - summary["test_kl_nats"], atol=1e-4
    )
    assert summary["likelihood_kind"] == "discrete"  # Bernoulli on the binary draw
    p = summary["platform"]  # which hardware and versions produced these numbers
    assert p["backend"] == jax.default_backend() and p["jax"] == jax.__version__
    assert p["device_count"] == jax.device_count() and p["device_kind"]


def test_validation_elbo_is_logged_and_tracks_the_params(run_a):
    """val_elbo on the whole validation split at steps 20 and 40 (runlocal: eval_every 20),
    consistent with an independent estimate on the same images for the final params."""
    records = read_metrics(run_a["workdir"])
    logged = {r["step"]: r for r in records if "val_elbo" in r}
    assert sorted(logged) == [20, 40]
    for r in logged.values():
        assert r["val_elbo"] == pytest.approx(r["val_log_px"] - r["val_kl"], abs=1e-3)
    assert logged[40]["val_elbo"] > logged[20]["val_elbo"]  # training helps held-out data
    ds = load_dataset(tiny_config().data)
    assert len(ds.val_x) == 80 and set(np.unique(ds.val_x)) <= {0, 255}
    elbo, _, var = _independent_elbo(
        setup(tiny_config(), SHAPE)[0], run_a["state"].params, ds.val_x
    )
    se = np.sqrt(var.sum() * (1 + 1 / 200)) / len(elbo)
    assert abs(logged[40]["val_elbo"] - elbo.mean()) < 4 * se
    summary = json.loads((run_a["workdir"] / "summary.json").read_text())
    assert summary["validation"]["best_step"] == 40
    assert summary["validation"]["final_val_elbo_nats"] == logged[40]["val_elbo"]


def test_dynamic_binarization_redraws_binary_inputs_from_a_data_key(parts):
    """The train step feeds the objective a fresh binary draw x ~ Bernoulli(pixel/255) at
    every step, from the data half of split(fold_in(key, step)); the objective's key is the
    other half, so the z noise never reuses the binarization's randomness."""

    def spy_loss(model, batch, key, ctx):  # passes what it was given out through the metrics
        loss, metrics = parts["objective"].loss(model, batch, key, ctx)
        return loss, {**metrics, "x": batch["x"], "key_data": jax.random.key_data(key)}

    spy = parts["objective"]._replace(loss=spy_loss)
    batch = _rows(parts["data"], slice(0, BATCH))
    grey = np.asarray(batch["image"], np.float32) / 255.0
    step = jax.jit(make_train_step(parts["graphdef"], spy, parts["tx"], dynamic_binarize=True))
    state, seen = parts["state"], []
    for _ in range(2):
        state, metrics = step(state, batch, parts["key"], parts["hyper"])
        seen.append((np.asarray(metrics["x"]), np.asarray(metrics["key_data"])))
    (x0, _), (x1, _) = seen
    assert set(np.unique(x0)) <= {0.0, 1.0}
    assert not np.array_equal(x0, x1)  # redrawn at step 1
    for s, (x, k) in enumerate(seen):
        k_data, k_obj = jax.random.split(jax.random.fold_in(parts["key"], s))
        np.testing.assert_array_equal(x, jax.random.bernoulli(k_data, grey).astype(jnp.float32))
        assert np.array_equal(k, jax.random.key_data(k_obj))
        assert not np.array_equal(k, jax.random.key_data(k_data))
    # Pixels with intensity 0 or 255 stay put.
    np.testing.assert_array_equal(x0[grey == 0.0], 0.0)
    np.testing.assert_array_equal(x0[grey == 1.0], 1.0)
    # Without dynamic binarization the objective sees the scaled pixels themselves.
    plain = jax.jit(make_train_step(parts["graphdef"], spy, parts["tx"]))
    _, metrics = plain(parts["state"], batch, parts["key"], parts["hyper"])
    np.testing.assert_allclose(metrics["x"], grey, rtol=1e-6)


def test_same_seed_same_run_other_seed_differs(run_a, tmp_path):
    _run(tmp_path / "again")
    assert read_metrics(tmp_path / "again") == read_metrics(run_a["workdir"])
    assert tree_equal(_final_state(tmp_path / "again")[1], run_a["state"])

    _run(tmp_path / "seed1", seed=1)
    assert read_metrics(tmp_path / "seed1") != read_metrics(run_a["workdir"])
    other = _final_state(tmp_path / "seed1", tiny_config(seed=1))[1]
    assert not tree_equal(other.params, run_a["state"].params)


def test_resume_matches_uninterrupted_run(run_a, tmp_path, capsys):
    workdir = tmp_path / "b"
    _run(workdir, **{"train.num_steps": 20})
    assert _final_state(workdir)[0] == 20
    _run(workdir)  # the same workdir with num_steps = 40
    assert "Resumed from checkpoint at step 20" in capsys.readouterr().out
    assert read_metrics(workdir) == read_metrics(run_a["workdir"])
    step, state = _final_state(workdir)
    assert step == 40 and tree_equal(state, run_a["state"])


def test_resume_after_a_kill(run_a, tmp_path, capsys):
    workdir = tmp_path / "c"
    _run(workdir, **{"train.num_steps": 30})  # checkpoints at 20 and 30, metrics to 30
    ckpt_dir = workdir / "checkpoints"
    assert sorted(os.listdir(ckpt_dir)) == ["20", "30"]

    # Killed while saving step 30: orbax leaves only its temporary folder, half written.
    partial = ckpt_dir / "30.orbax-checkpoint-tmp-1700000000000000"
    (ckpt_dir / "30").rename(partial)
    files = sorted(p for p in partial.rglob("*") if p.is_file() and p.stat().st_size > 0)
    files[-1].write_bytes(files[-1].read_bytes()[: files[-1].stat().st_size // 2])
    assert _final_state(workdir)[0] == 20
    _run(workdir)
    assert "Resumed from checkpoint at step 20" in capsys.readouterr().out
    assert read_metrics(workdir) == read_metrics(run_a["workdir"])  # step 30 logged once
    step, state = _final_state(workdir)
    assert step == 40 and tree_equal(state, run_a["state"])

    # The newest checkpoint deleted outright: resume from the one before it.
    assert {"20", "40"} <= set(os.listdir(ckpt_dir))
    shutil.rmtree(ckpt_dir / "40")
    _run(workdir)
    assert "Resumed from checkpoint at step 20" in capsys.readouterr().out
    assert read_metrics(workdir) == read_metrics(run_a["workdir"])
    assert tree_equal(_final_state(workdir)[1], run_a["state"])


def test_nonfinite_run_raises_and_keeps_last_good_checkpoint(run_a, tmp_path, monkeypatch):
    workdir = tmp_path / "nan"
    shutil.copytree(run_a["workdir"], workdir)
    metrics_before = read_metrics(workdir, drop_timing=False)

    def nan_elbo(section, spec):
        objective = objectives.elbo.make(section, spec)

        def nan_loss(model, batch, key, ctx):
            loss, metrics = objective.loss(model, batch, key, ctx)
            return loss * jnp.nan, {**metrics, "loss": loss * jnp.nan}

        return objective._replace(loss=nan_loss)

    # config.json pins the objective section, so replace the "elbo" entry itself.
    monkeypatch.setitem(
        objectives.OBJECTIVES, "elbo", objectives.OBJECTIVES["elbo"]._replace(make=nan_elbo)
    )
    closed = []
    original_close = Checkpointer.close
    monkeypatch.setattr(Checkpointer, "close", lambda self: closed.append(original_close(self)))
    with pytest.raises(NonFiniteLossError) as info:
        _run(workdir, **{"train.num_steps": 60, "train.max_nonfinite_steps": 5})
    message = str(info.value)
    assert "40..49" in message and "step 40" in message, message
    assert "\n" not in message
    assert len(closed) == 1  # the checkpointer was closed on the way out

    step, state = _final_state(workdir)
    assert step == 40
    assert tree_equal(state, run_a["state"])
    assert read_metrics(workdir, drop_timing=False) == metrics_before


def test_autoencoder_trains_without_kl(tmp_path, capsys):
    config = tiny_config(**{"objective.name": "autoencoder"})
    train_and_evaluate(config, str(tmp_path))
    printed = capsys.readouterr().out.splitlines()
    assert f"wrote {tmp_path / 'eval.json'}" in printed
    assert not any("report.html" in line for line in printed)  # none is written for an AE
    assert not (tmp_path / "report.html").exists()
    records = read_metrics(tmp_path)
    assert all("kl" not in r and "elbo" not in r for r in records)  # it invents no KL term
    for r in records:
        np.testing.assert_allclose(r["log_px"], -r["loss"], rtol=1e-6)
    assert [r["step"] for r in records if "val_log_px" in r] == [20, 40]
    assert records[-1]["loss"] < records[0]["loss"] - 10.0, [r["loss"] for r in records]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "autoencoder" in summary["note"]
    assert summary["test_bits_per_dim"] is None  # log p(x|z=μ(x)) is not a bound: no bits/dim
    assert os.path.isdir(tmp_path / "checkpoints" / "40")
