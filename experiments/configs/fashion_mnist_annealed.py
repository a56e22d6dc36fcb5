"""Capacity-controlled β-VAE (Burgess et al. 2018): loss = −log p(x|z) + γ·|KL − C|, with
C rising linearly from 0 to C_max = 25 nats over the first 8000 of 10k steps, γ = 1000,
on the default MLP VAE and binarized Fashion-MNIST.

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_annealed.py \
        --workdir=runs/annealed

It gave a test ELBO of −324.71 nats/example (KL 24.15) and log p(x) ≈ −310.19 (K = 1000,
first 1000 test images), seed 0: the KL is held at C, the reconstruction suffers at γ = 1000.
README: "The model zoo". Arguments: `:runlocal`,
`:cmax=25`, `:gamma=1000`.
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, cmax=25.0, gamma=1000.0, runlocal=False)
    c = base_config()
    c.objective.name = "annealed"
    c.objective.annealed.capacity_steps = 8000
    c.hyper.capacity_max = arg.cmax
    c.hyper.capacity_gamma = arg.gamma
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    return apply_runlocal(c) if arg.runlocal else c
