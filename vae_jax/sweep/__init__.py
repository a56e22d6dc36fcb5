"""β-sweeps (and sweeps of any traced value) as one vmapped program: `python -m vae_jax.sweep`."""
