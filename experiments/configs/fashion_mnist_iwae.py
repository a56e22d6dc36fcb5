"""IWAE (Burda et al. 2015): the default MLP VAE on binarized Fashion-MNIST trained on the
K = 5 importance-weighted bound instead of the ELBO (10k steps, batch 128).

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_iwae.py \
        --workdir=runs/iwae

It gave a test ELBO of −239.86 nats/example and log p(x) ≈ −232.64 (K = 1000, first 1000
test images), seed 0 (the ELBO-trained default: −237.8 and −234.0).
README: "The model zoo". Arguments: `:runlocal`, `:k=5`.
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, k=5, runlocal=False)
    c = base_config()
    c.objective.name = "iwae"
    c.objective.iwae.num_samples = arg.k
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    return apply_runlocal(c) if arg.runlocal else c
