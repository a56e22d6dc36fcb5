"""β-sweep of the default MLP VAE on Fashion-MNIST: six values of β trained as one vmapped
program (vae_jax.sweep), each evaluated into its own subfolder.

    python -m vae_jax.sweep --config=experiments/configs/beta_sweep.py --workdir=runs/beta_sweep

Arguments: `:runlocal` (a smoke run on synthetic data), `:seeds=3` (each β with seeds 0..2).
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg

BETAS = "0.25,0.5,1,2,4,8"


def get_config(arg=None):
    arg = parse_arg(arg, runlocal=False, seeds=1)
    c = base_config()
    c.train.num_steps = 10_000
    c.train.log_every = 200
    c.train.checkpoint_every = 2000
    c.sweep = (f"hyper.beta={BETAS}",) + (
        (f"seed={','.join(map(str, range(arg.seeds)))}",) if arg.seeds > 1 else ()
    )
    if arg.runlocal:
        c = apply_runlocal(c)
        c.data.name = "synthetic"
    return c
