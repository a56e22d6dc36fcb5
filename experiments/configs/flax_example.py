"""The exact setup of google/flax `examples/vae`, for a like-for-like comparison.

    python -m vae_jax.main --config=experiments/configs/flax_example.py --workdir=runs/flax_example

784-500-20 ReLU MLP encoder and decoder, Bernoulli likelihood, Adam 1e-3, batch 128,
30 epochs of tfds `binarized_mnist` (Larochelle's fixed binarization, 50k train,
390 full batches per epoch → 11,700 steps), loss averaged over the batch, one sample of z.
Needs the prepared tfds data set (`python -m vae_jax.data.prepare binarized_mnist` on a
machine with internet). Not run here: the data cannot be had offline, so no number is
claimed; it prints the test ELBO in nats per example (summary.json: test_elbo_nats).
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, runlocal=False)
    c = base_config()
    c.data.name = "binarized_mnist"
    c.data.source = "tfds"
    c.data.binarize = "none"  # already binary
    c.data.batch_size = 128
    c.model.net = "mlp"
    c.model.mlp.hidden_dims = (500,)
    c.model.latent_dim = 20
    c.model.mlp.activation = "relu"
    c.model.likelihood = "bernoulli"
    c.train.learning_rate = 1e-3
    c.train.loss_reduction = "mean"
    c.train.num_steps = 30 * (50_000 // 128)
    c.train.log_every = 390
    c.train.checkpoint_every = 3900
    c.train.eval_every = 1950  # val ELBO every 5 epochs
    return apply_runlocal(c) if arg.runlocal else c
