"""β-VAE on dSprites (Higgins et al. 2017), swept over disentanglement_lib's β values
{1, 2, 4, 6, 8, 16} as one vmapped program, with the five disentanglement metrics of every
member (BetaVAE, FactorVAE, MIG, DCI, SAP; disentanglement_lib's protocol) in its eval.json,
and the sweep's metric-vs-β plot, trade-off plot and table.

    python -m vae_jax.sweep --config=experiments/configs/dsprites_beta_vae.py --workdir=runs/dsprites_beta_vae

The full run (300k steps × 6 members) is for a GPU. `:runlocal` is the CPU version (β ∈ {1, 4},
3,000 steps, smaller metric protocol; see vae_jax.config_lib.dsprites_config):

    python -m vae_jax.sweep --config=experiments/configs/dsprites_beta_vae.py:runlocal --workdir=runs/dsprites_local

Arguments: `:runlocal`, `:betas=1,4` (any list), `:steps=N`.
"""

from vae_jax.config_lib import dsprites_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, runlocal=False, betas="", steps=0)
    c = dsprites_config(arg.runlocal)
    betas = arg.betas or ("1,4" if arg.runlocal else "1,2,4,6,8,16")
    c.sweep = (f"hyper.beta={betas}",)
    if arg.steps:
        c.train.num_steps = arg.steps
    return c
