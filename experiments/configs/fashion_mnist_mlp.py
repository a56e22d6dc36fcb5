"""MLP VAE on Fashion-MNIST (the default run of `make train`).

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_mlp.py --workdir=runs/fmnist

784-512-256-20 ReLU MLP encoder/decoder, Bernoulli likelihood on dynamically binarized
Fashion-MNIST, Adam 1e-3, batch 128, 10k steps (~25.6 epochs of the 50k training images).
Prints a test ELBO of about -237.6 nats/example (see README). Arguments: `:runlocal`, `:beta=4`, `:arch=conv`.
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, arch="mlp", beta=1.0, latent_dim=20, runlocal=False)
    c = base_config()
    c.model.net = arg.arch
    c.model.latent_dim = arg.latent_dim
    c.hyper.beta = arg.beta
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    c.eval.autoencoder_steps = 3000  # the baseline for the AE-vs-VAE latent scatter
    return apply_runlocal(c) if arg.runlocal else c
