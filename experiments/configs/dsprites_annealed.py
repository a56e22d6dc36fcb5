"""Capacity-annealed β-VAE on dSprites (Burgess et al. 2018): the KL target C rises linearly
from 0 to C_max over 100,000 steps with weight γ = 1000, C_max swept over
disentanglement_lib's values {5, 10, 25, 50, 75, 100} nats (hyper.capacity_max), on
Higgins et al.'s net (vae_jax.config_lib.dsprites_config), with the five disentanglement
metrics of every member.

    python -m vae_jax.sweep --config=experiments/configs/dsprites_annealed.py --workdir=runs/dsprites_annealed

The full run (300k steps × 6 members) is for a GPU and has not been run. Arguments:
`:runlocal` (CPU: C_max ∈ {5, 25}, 5,000 steps, C reaching C_max at step 2,000; not run), `:cmax=5,25`,
`:steps=N`.
"""

from vae_jax.config_lib import dsprites_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, runlocal=False, cmax="", steps=0)
    c = dsprites_config(arg.runlocal)
    c.objective.name = "annealed"
    c.hyper.capacity_gamma = 1000.0
    c.objective.annealed.capacity_steps = 2000 if arg.runlocal else 100_000
    cmax = arg.cmax or ("5,25" if arg.runlocal else "5,10,25,50,75,100")
    c.sweep = (f"hyper.capacity_max={cmax}",)
    if arg.steps:
        c.train.num_steps = arg.steps
    return c
