"""The exact setup of pytorch/examples `vae/main.py`, for a like-for-like comparison.

    python -m vae_jax.main --config=experiments/configs/pytorch_example.py --workdir=runs/pytorch_example \
        --config.data.dir=FOLDER_WITH_MNIST_IDX_FILES

784-400-20 ReLU MLP encoder and decoder, Bernoulli "likelihood" on [0, 1] pixel intensities
(not binarized). As in the original, this is a cross-entropy loss, not a normalised
likelihood (Loaiza-Ganem & Cunningham 2019): vae_jax refuses it unless
`model.allow_unnormalized=True`, which this config sets to keep the upstream loss, and its
summary labels the numbers "not a log-likelihood". For a proper density on the same data use
`--config.model.likelihood=continuous_bernoulli`. Adam 1e-3, batch 128, 10 epochs over all
60k training images (no validation split; 468 full batches per epoch → 4,680 steps), loss
summed over the batch. Needs the
MNIST IDX files (or tfds `mnist`), which cannot be had offline here, so no number is claimed;
it prints the test ELBO in nats per example, the negative of the original's "Test set loss".
"""

from vae_jax.config_lib import apply_runlocal, base_config, parse_arg


def get_config(arg=None):
    arg = parse_arg(arg, runlocal=False)
    c = base_config()
    c.data.name = "mnist"
    c.data.binarize = "none"
    c.data.val_size = 0
    c.data.batch_size = 128
    c.model.net = "mlp"
    c.model.mlp.hidden_dims = (400,)
    c.model.latent_dim = 20
    c.model.mlp.activation = "relu"
    c.model.likelihood = "bernoulli"
    c.model.allow_unnormalized = True  # keep the upstream loss on grey pixels (see above)
    c.train.learning_rate = 1e-3
    c.train.loss_reduction = "sum"
    c.train.num_steps = 10 * (60_000 // 128)
    c.train.log_every = 468
    c.train.checkpoint_every = 4680
    c.train.eval_every = 0  # no validation split (val_size = 0)
    return apply_runlocal(c) if arg.runlocal else c
