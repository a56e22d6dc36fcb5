"""β-TCVAE (Chen et al. 2018), minibatch-weighted sampling: α·MI + β·TC + γ·dim-wise KL
with α = γ = 1 and β = 4 (a penalty on the total correlation only), on the default MLP
VAE and binarized Fashion-MNIST (10k steps). The disentanglement issue uses it on dSprites.

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_beta_tcvae.py \
        --workdir=runs/beta_tcvae

It gave a test ELBO of −247.74 nats/example and log p(x) ≈ −242.23 (K = 1000, first 1000
test images), seed 0, with 16 of 20 dimensions inactive.
README: "The model zoo". Arguments: `:runlocal`, `:tc=4`.
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, tc=4.0, runlocal=False)
    c = base_config()
    c.objective.name = "beta_tcvae"
    c.hyper.tc_beta = arg.tc
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    return apply_runlocal(c) if arg.runlocal else c
