"""β-VAE on dSprites (Higgins et al. 2017), swept over disentanglement_lib's β values
{1, 2, 4, 6, 8, 16} as one vmapped program, with the five disentanglement metrics of every
member (BetaVAE, FactorVAE, MIG, DCI, SAP; disentanglement_lib's protocol) in its eval.json,
and the sweep's metric-vs-β plot, trade-off plot and table.

    python -m vae_jax.sweep --config=experiments/configs/dsprites_beta_vae.py --workdir=runs/dsprites_beta_vae

The full run (300k steps × 6 members) is for a GPU. `:runlocal` is the CPU version (β ∈ {1, 4},
5,000 steps at learning rate 1e-3, smaller metric protocol; see
vae_jax.config_lib.dsprites_config):

    python -m vae_jax.sweep --config=experiments/configs/dsprites_beta_vae.py:runlocal --workdir=runs/dsprites_local

It gave (runlocal, seed 0, 2 CPU cores: 15.5 min of training, 1.8 min of metrics), β = 1 → 4:
BetaVAE score 0.678 → 0.756, FactorVAE 0.405 → 0.543, MIG 0.041 → 0.056, DCI
disentanglement 0.052 → 0.135, SAP 0.010 → 0.061 (reduced protocol: 2,000 points, DCI
with 20 trees). The full run has not been made (no GPU was lent).

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
