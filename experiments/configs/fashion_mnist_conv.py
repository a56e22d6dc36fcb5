"""Convolutional VAE on Fashion-MNIST.

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_conv.py --workdir=runs/fmnist_conv

Encoder: 3×3 stride-2 convs 28→14→7 (32, 64 channels), dense 256, 20-d Gaussian posterior;
the decoder mirrors it with sub-pixel (depth-to-space) convs. Bernoulli likelihood on dynamically binarized
Fashion-MNIST, Adam 1e-3, batch 128. Arguments: `:runlocal`, `:beta=4`, `:latent_dim=2`.
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, beta=1.0, latent_dim=20, runlocal=False)
    c = base_config()
    c.model.net = "conv"
    c.model.latent_dim = arg.latent_dim
    c.hyper.beta = arg.beta
    c.train.num_steps = 6000
    c.train.log_every = 200
    c.train.checkpoint_every = 1000
    return apply_runlocal(c) if arg.runlocal else c
