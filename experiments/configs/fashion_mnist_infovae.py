"""InfoVAE, MMD form (Zhao et al. 2019): loss = −log p(x|z) + (1 − α)·KL + (α + λ − 1)·MMD,
α = 0, λ = 1000, on the default MLP VAE and binarized Fashion-MNIST (10k steps).

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_infovae.py \
        --workdir=runs/infovae

It gave a test ELBO of −242.14 nats/example and log p(x) ≈ −238.65 (K = 1000, first 1000
test images), seed 0.
README: "The model zoo". Arguments: `:runlocal`,
`:alpha=0`, `:lam=1000`.
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, alpha=0.0, lam=1000.0, runlocal=False)
    c = base_config()
    c.objective.name = "infovae"
    c.hyper.info_alpha = arg.alpha
    c.hyper.mmd_lambda = arg.lam
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    return apply_runlocal(c) if arg.runlocal else c
