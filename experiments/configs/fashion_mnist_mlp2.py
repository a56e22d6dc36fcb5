"""Two stochastic layers (Burda et al. 2015, §5, "2 layers"): x → 200-200 tanh → z1 (100)
→ 100-100 tanh → z2 (50), the generative path mirrored, on binarized Fashion-MNIST with the
ELBO (10k steps, batch 128). `:iwae=5` trains it on the K = 5 IWAE bound instead, as in
their Table 1.

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_mlp2.py \
        --workdir=runs/mlp2

It gave a test ELBO of −244.92 nats/example and log p(x) ≈ −239.94 (K = 5000, first 1000
test images; run with --config.eval.num_importance_samples=5000), seed 0, with 83 of 100 z1
and 1 of 50 z2 units active. `:iwae=5` (with the same K = 5000 flag): ELBO −246.42,
log p(x) ≈ −238.17, active units 97/100 and 2/50 (IWAE uses more units, as in Burda et al.).
README: "The model zoo". Arguments: `:runlocal`, `:iwae=K` (0: the ELBO).
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, iwae=0, runlocal=False)
    c = base_config()
    c.model.net = "mlp2"
    c.model.latent_dim = 100  # z1; z2 is model.mlp2.top_latent_dim = 50
    if arg.iwae:
        c.objective.name = "iwae"
        c.objective.iwae.num_samples = arg.iwae
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    return apply_runlocal(c) if arg.runlocal else c
