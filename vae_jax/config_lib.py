"""The base config every experiment config starts from, and `NAME.py:ARGS` parsing.

Every field a run reads is declared here with its default, so `lock_config=True` turns a
typo on the command line into an error. Experiment configs in experiments/configs/ call
`base_config()`, set their fields, and apply `runlocal` via `apply_runlocal`.
"""

from __future__ import annotations

import json

import ml_collections

from vae_jax.errors import ConfigError
from vae_jax.likelihoods import LIKELIHOODS
from vae_jax.nets import NETS
from vae_jax.objectives import OBJECTIVES
from vae_jax.priors import PRIORS


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    # fashion_mnist | mnist | binarized_mnist | synthetic | dsprites (vae_jax/data/dsprites.py)
    c.data.name = "fashion_mnist"
    # auto | idx | tfds | procedural (dsprites generated; auto: tfds if prepared, else this)
    c.data.source = "auto"
    c.data.dir = ""  # folder of IDX files; "" = the Debian path for fashion_mnist
    c.data.tfds_dir = ""  # "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.data.batch_size = 128
    # Validation examples taken from the training split (when it has no validation split);
    # -1 = auto: a sixth of it, at most 10,000; 0 = none (no val_elbo, no Fréchet floor).
    # dsprites: 10,000 (auto) after its 10,000 test images; it is binary, never binarized.
    c.data.val_size = -1
    c.data.split_seed = 0  # fixes the validation (dsprites: and test) split, static binarizations
    c.data.binarize = "dynamic"  # none | dynamic | static | threshold
    c.data.image_size = 28  # synthetic data only
    c.data.synthetic_size = 2000  # synthetic data only: training examples
    c.data.synthetic_seed = 0

    # Each part is chosen by name and configured in the sub-section of that name, declared
    # by the part's own file (vae_jax/components.py): model.mlp.hidden_dims,
    # model.gaussian.scale, objective.elbo.num_samples, ...
    c.model = ml_collections.ConfigDict()
    c.model.net = "mlp"  # mlp | conv | mlp2 (two stochastic layers)
    c.model.latent_dim = 20
    # bernoulli | continuous_bernoulli | gaussian | discretized_logistic(_mixture) (8-bit)
    c.model.likelihood = "bernoulli"
    # Bernoulli on grey (non-binary) data is refused unless this is set; the summary then
    # labels its numbers "not a log-likelihood" (pytorch/examples' loss, for comparison).
    c.model.allow_unnormalized = False
    c.model.prior = "standard_normal"  # standard_normal | mog | vamp | flow
    for registry in (NETS, LIKELIHOODS, PRIORS):
        for name, component in registry.items():
            c.model[name] = component.defaults()

    c.objective = ml_collections.ConfigDict()
    # elbo | iwae | infovae | beta_tcvae | annealed | autoencoder
    c.objective.name = "elbo"
    for name, component in OBJECTIVES.items():
        c.objective[name] = component.defaults()

    # Swept hyper-parameters, traced in the step (vae_jax/hyper.py: the same defaults). An
    # objective refuses a field it does not read set off its default (hyper.check_hyper).
    c.hyper = ml_collections.ConfigDict()
    c.hyper.beta = 1.0
    c.hyper.free_bits = 0.0  # nats per latent dimension the KL does not penalise; 0 = off
    c.hyper.info_alpha = 0.0  # infovae: α, the KL's weight is 1 − α
    c.hyper.mmd_lambda = 1000.0  # infovae: λ, the MMD's weight is α + λ − 1
    c.hyper.tc_alpha = 1.0  # beta_tcvae: weight of the index-code mutual information
    c.hyper.tc_beta = 1.0  # beta_tcvae: weight of the total correlation
    c.hyper.tc_gamma = 1.0  # beta_tcvae: weight of the dimension-wise KL
    c.hyper.capacity_gamma = 1000.0  # annealed: γ in γ·|KL − C|
    c.hyper.capacity_max = 25.0  # annealed: C_max, nats

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 10_000
    c.train.learning_rate = 1e-3
    c.train.optimizer = "adam"  # adam | adamw | sgd
    c.train.loss_reduction = "mean"  # mean | sum over the batch
    c.train.lr_schedule = "constant"  # constant | cosine (decay to 0 over num_steps)
    # Precision of the train step's float32 matmuls and convolutions: default (the backend's:
    # TF32 on recent NVIDIA GPUs, bf16 passes on TPUs, full float32 on CPUs) | high (TF32
    # on GPUs too; 3 bf16 passes on TPUs) | highest (full float32 everywhere). Evaluation
    # always runs at highest, whatever this says.
    c.train.matmul_precision = "default"
    # The nets' activations and matmuls in training: float32 | bfloat16. Parameters, the
    # optimizer's state, the likelihood and the KL stay float32; evaluation runs in float32.
    c.train.compute_dtype = "float32"
    c.train.grad_clip_norm = 0.0  # 0 = off
    c.train.log_every = 100  # also the number of steps fused into one jitted call
    # auto | true | false. Scan log_every steps in one jitted call (false: one call per
    # step). auto: fused, except for conv nets on the CPU, where XLA:CPU runs convolutions
    # inside a loop far slower than at top level (vae_jax/platform.py).
    c.train.fuse_steps = "auto"
    # auto | true | false. On CPU, compile the train step without YNNPACK fusions
    # (vae_jax/cpu_tuning.py): conv nets train ~1.9x faster, the default MLP ~7% slower.
    # auto: on for conv nets on the CPU. No effect on GPU/TPU.
    c.train.cpu_tuning = "auto"
    # Deterministic GPU reductions (XLA's --xla_gpu_deterministic_ops), so that same-seed
    # runs and resumes are bit-identical on a GPU too; set before JAX starts its backend.
    c.train.deterministic = True
    c.train.checkpoint_every = 1000  # a multiple of log_every
    # ELBO on the validation split (`val_elbo` in metrics.jsonl) at the first logged step
    # after every multiple of this, and at the last step: for model selection and to see
    # overfitting. 0 = only at the last step.
    c.train.eval_every = 1000
    c.train.keep_checkpoints = 2
    c.train.max_nonfinite_steps = 50  # stop after this many consecutive skipped steps
    c.train.max_nonfinite_fraction = 0.1  # fail a run that skipped more of its steps
    # Resume a workdir with a config that changes the run (β, learning rate, ...) on purpose;
    # the change is recorded in config_history.jsonl (vae_jax/resume.py).
    c.train.allow_resume_changes = False
    # Refuse to run (one line) when JAX finds only a CPU, instead of training there silently.
    c.train.require_accelerator = False

    c.parallel = ml_collections.ConfigDict()
    # Devices along the mesh's "data" axis (batch rows split, state replicated); -1 = all.
    c.parallel.data = -1

    # A sweep the config declares: ("hyper.beta=0.25,0.5,1", ...), run by vae_jax.sweep
    # (each --sweep flag replaces it). A single run ignores it.
    c.sweep = ()

    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 500
    c.eval.num_samples = 1  # L for the test-set ELBO
    c.eval.max_examples = 0  # 0 = the whole test set
    c.eval.num_figure_examples = 16
    c.eval.diagnostics = True  # log-likelihood, collapse, sample quality, figures, report
    c.eval.num_importance_samples = 1000  # K for log p(x) (5000 in the literature)
    c.eval.loglik_examples = 1000  # test examples for log p(x); 0 = all
    # Samples of z per inner step of log p(x) (bounds memory); 0 = auto: 50 on the CPU
    # (fastest there), 1000 on a GPU/TPU (17.1k vs 9.8k images/s on an H200 at K = 5000).
    c.eval.loglik_chunk = 0
    c.eval.loglik_batch_size = 100
    c.eval.sample_quality = True  # Fréchet distance in a small classifier's features
    # BetaVAE, FactorVAE, MIG, DCI and SAP of μ(x), on data sets with known factors
    # (dsprites; vae_jax/evaluate/disentangle/). Points: 0 = disentanglement_lib's protocol
    # (10,000 train / 5,000 eval), n = n train and n/2 eval (CPU-sized runs); DCI's
    # gradient-boosted trees: 100 as in sklearn and disentanglement_lib.
    c.eval.disentanglement = True
    c.eval.disentanglement_points = 0
    c.eval.disentanglement_seed = 0
    c.eval.dci_trees = 100
    c.eval.fd_num_examples = 5000
    c.eval.classifier_dir = ""  # cache of the feature classifier; "" = ~/.cache/vae_jax
    c.eval.classifier_steps = 1000  # training steps of the feature classifier
    c.eval.sample_temperature = 1.0
    c.eval.autoencoder_steps = 0  # > 0: also train the plain autoencoder baseline
    c.eval.arithmetic_source = 5  # class indices for the latent-arithmetic figure
    c.eval.arithmetic_target = 7  # (Fashion-MNIST: sandal -> sneaker)
    return c


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
    """Parse 'runlocal,beta=4,arch=conv' against typed defaults (big_vision style)."""
    out = ml_collections.ConfigDict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, _, value = item.partition("=")
        if key not in defaults:
            raise ValueError(f"unknown config argument '{key}'; known: {sorted(defaults)}")
        default = defaults[key]
        if not _:
            if not isinstance(default, bool):
                raise ValueError(f"config argument '{key}' needs a value: '{key}=VALUE'")
            out[key] = True
        elif isinstance(default, bool):
            if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                raise ValueError(f"config argument '{key}={value}' must be true or false")
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            try:
                out[key] = type(default)(value)
            except ValueError:
                raise ValueError(
                    f"config argument '{key}={value}' must be a {type(default).__name__}"
                ) from None
    return out


def apply_runlocal(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrink any config to a smoke run of the whole pipeline (well under a minute on CPU)."""
    c.data.batch_size = min(c.data.batch_size, 32)
    c.train.num_steps = 40
    c.train.log_every = 10
    c.train.checkpoint_every = 20
    c.train.eval_every = 20
    c.eval.max_examples = 200
    c.eval.num_importance_samples = 100
    c.eval.loglik_examples = 100
    c.eval.fd_num_examples = 500
    c.eval.autoencoder_steps = min(c.eval.autoencoder_steps, 40)
    c.eval.classifier_steps = min(c.eval.classifier_steps, 200)
    c.eval.batch_size = 100
    return c


def autoencoder_config(config):
    """The config of the plain autoencoder baseline trained beside a VAE run (a sibling run
    in workdir/autoencoder): the same model and data, objective "autoencoder", for
    eval.autoencoder_steps steps."""
    c = config.copy_and_resolve_references()
    c.objective.name = "autoencoder"
    c.train.num_steps = config.eval.autoencoder_steps
    c.eval.autoencoder_steps = 0
    return c


# Sub-sections that belong to a part chosen by name: {section: {selector: registry names}}.
COMPONENT_SECTIONS = {
    "model": {"net": NETS, "likelihood": LIKELIHOODS, "prior": PRIORS},
    "objective": {"name": OBJECTIVES},
}


def selected_view(config: dict, section: str) -> dict:
    """config[section] (a plain dict) without the sub-sections of parts it does not select:
    what a run's results depend on. A change to model.conv does not matter to an mlp run."""
    out = dict(config.get(section, {}))
    for selector, registry in COMPONENT_SECTIONS.get(section, {}).items():
        for name in registry:
            if name != out.get(selector):
                out.pop(name, None)
    return out


def _unknown(saved: dict, known: dict, prefix: str = "") -> list[str]:
    names = []
    for k, v in saved.items():
        if k not in known:
            names.append(prefix + k)
        elif isinstance(v, dict) and isinstance(known[k], dict):
            names += _unknown(v, known[k], f"{prefix}{k}.")
    return names


def _merge(defaults: dict, saved: dict) -> dict:
    out = dict(defaults)
    for k, v in saved.items():
        out[k] = (
            _merge(defaults[k], v)
            if isinstance(v, dict) and isinstance(defaults.get(k), dict)
            else v
        )
    return out


def load_saved_config(path: str) -> ml_collections.ConfigDict:
    """A run's config.json laid over today's base config, at every depth: fields added to
    vae_jax since the run was written take their defaults. A config with fields this
    version does not know (written by another version) is refused with a ConfigError that
    names them."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"{path} is not a valid run config ({' '.join(str(e).split())}); it is the record "
            "of the run in that workdir: restore it from a copy, or move the workdir aside "
            "and train again"
        ) from None
    if not isinstance(saved, dict):
        raise ConfigError(f"{path} is not a valid run config (a JSON object is expected)")
    defaults = json.loads(base_config().to_json())
    unknown = _unknown(saved, defaults)
    if unknown:
        shown = ", ".join(unknown[:6]) + (", …" if len(unknown) > 6 else "")
        raise ConfigError(
            f"{path} was written by another version of vae_jax: it has fields this version "
            f"does not know ({shown}); evaluate or resume that run with the version that "
            "wrote it, or train again in a new --workdir"
        )
    return ml_collections.ConfigDict(_merge(defaults, saved))


def dsprites_config(runlocal: bool = False, steps: int = 300_000) -> ml_collections.ConfigDict:
    """The setup shared by the dSprites disentanglement configs (experiments/configs/dsprites_*).

    The net of Higgins et al. 2017 on dSprites (their Table 1, row 1, which disentanglement_lib's
    `fc_encoder`/`fc_decoder` docstrings cite): a fully connected
    1200-1200 ReLU encoder and a 1200-1200-1200 tanh decoder with Bernoulli logits, 10
    latents; disentanglement_lib's optimiser settings (Adam, learning rate 1e-4, batch 64,
    300,000 steps), on all of dSprites (here: the procedural, dSprites-like set; 717,280
    training images, 10,000 validation and 10,000 test images from the same factor grid).
    Locatello et al.'s study trained conv nets (`conv_encoder`/`deconv_decoder`) on the
    original images, so numbers from these configs are not comparable with their published
    distributions.
    """
    c = base_config()
    c.data.name = "dsprites"
    # Pinned: the same config must not train on other images because a tfds build happens
    # to exist (--config.data.source=tfds reads the original dSprites).
    c.data.source = "procedural"
    c.data.binarize = "none"  # the images are binary already
    c.data.batch_size = 64
    c.model.latent_dim = 10
    c.model.mlp.hidden_dims = (1200, 1200)
    c.model.mlp.activation = "relu"
    c.model.mlp.decoder_hidden_dims = (1200, 1200, 1200)
    c.model.mlp.decoder_activation = "tanh"
    c.train.learning_rate = 1e-4
    c.train.num_steps = steps
    c.train.log_every = 1000
    c.train.checkpoint_every = 10_000
    c.train.eval_every = 50_000
    c.eval.sample_quality = False  # no feature space for sprites (eval.json says so)
    c.eval.num_importance_samples = 1000
    c.eval.loglik_examples = 1000
    c.eval.max_examples = 0
    if runlocal:
        # A CPU run (about 15 minutes of training for two members on 2 cores): 5,000 steps at
        # a 10x higher learning rate, metrics on 2,000 training points (disentanglement_lib:
        # 10,000), DCI with 20 trees (100). At 3,000 steps and 5e-4, β = 4 did not yet beat
        # β = 1 (README, "Disentanglement").
        c = apply_runlocal(c)
        c.data.batch_size = 64
        c.data.val_size = 1000
        c.train.num_steps = 5000
        c.train.learning_rate = 1e-3
        c.train.log_every = 100
        c.train.checkpoint_every = 1000
        c.train.eval_every = 0
        c.eval.max_examples = 2000
        c.eval.disentanglement_points = 2000
        c.eval.dci_trees = 20
        c.eval.autoencoder_steps = 0
    return c
