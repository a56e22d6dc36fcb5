"""β-TCVAE on dSprites (Chen et al. 2018; minibatch-weighted sampling), the total-correlation
weight swept over disentanglement_lib's values {1, 2, 4, 6, 8, 10} (hyper.tc_beta; α = γ = 1),
on Higgins et al.'s net (vae_jax.config_lib.dsprites_config), with the five disentanglement
metrics of every member.

    python -m vae_jax.sweep --config=experiments/configs/dsprites_beta_tcvae.py --workdir=runs/dsprites_beta_tcvae

The full run (300k steps × 6 members) is for a GPU and has not been run. Arguments:
`:runlocal` (CPU: tc_beta ∈ {1, 6}, 5,000 steps; not run), `:tcs=1,6`, `:steps=N`.
"""

from vae_jax.config_lib import dsprites_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, runlocal=False, tcs="", steps=0)
    c = dsprites_config(arg.runlocal)
    c.objective.name = "beta_tcvae"
    tcs = arg.tcs or ("1,6" if arg.runlocal else "1,2,4,6,8,10")
    c.sweep = (f"hyper.tc_beta={tcs}",)
    if arg.steps:
        c.train.num_steps = arg.steps
    return c
