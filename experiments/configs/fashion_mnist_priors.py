"""The priors compared at the same budget: standard normal, a learned mixture of 10
Gaussians, the VampPrior with 500 pseudo-inputs, and a RealNVP flow, each with the default
MLP VAE on dynamically binarized Fashion-MNIST (10k steps, batch 128), trained jointly,
and test log p(x) at K = 5000 on the first 1000 test images. A sweep (one group per
prior, since the priors' parameters differ in shape):

    python -m vae_jax.sweep --config=experiments/configs/fashion_mnist_priors.py \
        --workdir=runs/priors

One prior alone: `python -m vae_jax.main --config=experiments/configs/fashion_mnist_priors.py
--workdir=runs/vamp --config.model.prior=vamp`. It gave test log p(x) (K = 5000, first
1000 test images, seed 0): standard normal −233.68, MoG −232.73, VampPrior −231.71, flow
−232.02 (README: "The model zoo"). Arguments: `:runlocal`.
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg

PRIORS = "standard_normal,mog,vamp,flow"


def get_config(arg=None):
    arg = parse_arg(arg, runlocal=False)
    c = base_config()
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    c.eval.num_importance_samples = 5000  # Tomczak & Welling 2018's K
    c.sweep = (f"model.prior={PRIORS}",)
    return apply_runlocal(c) if arg.runlocal else c
