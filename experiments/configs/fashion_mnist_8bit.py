"""8-bit Fashion-MNIST with a discretized logistic likelihood (Kingma et al. 2016;
Salimans et al. 2017): the 256 grey levels of every pixel, not a binarization, so the
test ELBO and log p(x) are log-probabilities of the 8-bit images and bits/dim are the
standard 8-bit ones. Default MLP VAE, 10k steps, batch 128.

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_8bit.py \
        --workdir=runs/fmnist_8bit

It gave a test ELBO of −1922.35 nats/example (3.54 bits/dim) and log p(x) ≈ −1886.03
(3.47 bits/dim; K = 1000, first 1000 test images), seed 0, 10k steps.
README: "The model zoo". Arguments: `:runlocal`,
`:mixture=5` (a mixture of 5 discretized logistics per pixel; about 6× slower on a CPU).
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, mixture=0, runlocal=False)
    c = base_config()
    c.data.binarize = "none"
    if arg.mixture:
        c.model.likelihood = "discretized_logistic_mixture"
        c.model.discretized_logistic_mixture.num_mixtures = arg.mixture
    else:
        c.model.likelihood = "discretized_logistic"
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    return apply_runlocal(c) if arg.runlocal else c
