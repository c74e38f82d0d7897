"""Shared defaults: the paper's MNIST experiment. Other configs start from this one."""
import ml_collections
from ml_collections import config_dict


def sgd(lr=0.1, momentum=0.5, **kw):
  """SGD with momentum, the paper's optimizer; schedules are off unless given."""
  return ml_collections.ConfigDict(dict(name='sgd', lr=lr, momentum=momentum, lr_decay=1.0,
                                        lr_decay_start=0, lr_decay_every=1, min_lr=0.0, final_momentum=momentum, momentum_start=0,
                                        momentum_saturate=1, **kw))


def adam(lr=2e-4, b1=0.5, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=0.0):
  """Adam: the update is m̂ / (√(v̂ + eps_root) + eps) (optax.adam); weight_decay > 0 adds that
  times the parameters to the gradient first (an L2 penalty). The rate: lr, divided by lr_decay
  once per lr_decay_every updates after update lr_decay_start, floored at min_lr."""
  return ml_collections.ConfigDict(dict(name='adam', lr=lr, b1=b1, b2=b2, eps=eps, eps_root=eps_root,
                                        weight_decay=weight_decay, lr_decay=1.0, lr_decay_start=0,
                                        lr_decay_every=1, min_lr=0.0))


def get_config():
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = 'mnist'        # any tfds image dataset, 'folder', or 'ring2d'/'gaussian1d'
  c.data.path = config_dict.placeholder(str)        # data.name='folder': the image folder (recursive)
  c.data.image_key = 'image'                         # the tfds feature holding the image
  c.data.image_size = config_dict.placeholder(int)  # center crop + resize to N×N; None: as stored
  c.data.cache_dir = config_dict.placeholder(str)   # decoded records; None: beside the tfds data / ~/.cache/gan_jax
  c.data.prefetch = 2                                # dispatches (steps_per_call batches each) read ahead in a thread; 0: none
  c.data.manual_dir = config_dict.placeholder(str)  # official archives; None: tfds downloads
  c.data.data_dir = config_dict.placeholder(str)    # prepared tfds data; None: tfds default
  c.data.train_split = 'train[:50000]'              # the released code held out 50000:60000
  c.data.eval_split = 'test'
  c.data.valid_split = 'train[50000:60000]'         # the released code's validation set: chooses (σ on its first 1000)
  c.data.scale = 'unit'                              # [0, 1] pixels, as the paper
  c.data.num_examples = 0                            # synthetic sources only
  c.data.num_labelled = 100                          # train.game=semi_supervised: labels kept, alike per class
  c.data.num_eval_examples = 0

  c.model = ml_collections.ConfigDict()
  c.model.generator = 'paper_mlp'
  c.model.discriminator = 'paper_maxout'
  c.model.noise_dim = 100
  c.model.noise = 'uniform'
  c.model.g_output = 'sigmoid'
  c.model.g_output_bias = 'marginals'  # logit of the training mean, as the released code
  c.model.encoder = 'mlp'  # E(x) → z of train.game='bigan' (§7 item 2)
  c.model.e_kwargs = ml_collections.ConfigDict(dict(hidden=1024, depth=2))
  c.model.d_init_examples = 500  # a D that initialises from data (improved_gan's data_init): on this many training images
  c.model.num_classes = 0  # > 0: G(z, y) and D(x, y) conditioned on the data's class label (§7 item 1)
  # Every model argument is spelled out so that the command line can set it (configs are locked).
  c.model.g_kwargs = ml_collections.ConfigDict(dict(hidden=1200, init_range=0.05))
  c.model.d_kwargs = ml_collections.ConfigDict(dict(units=240, pieces=5, init_range=0.005,
                                                    input_drop=0.2, hidden_drop=0.5))

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 100
  c.train.k = 1
  c.train.num_steps = 100_000
  # 'alternating' (Algorithm 1) or 'simultaneous' (the released code). Not 'update': that name
  # is ConfigDict.update, a method, and could not be set from the command line.
  c.train.update_mode = 'alternating'
  c.train.g_loss = 'non_saturating'  # or minimax (Eq. 1 as written), or hinge (with d_loss=hinge)
  c.train.d_loss = 'cross_entropy'  # or hinge: max(0, 1 - D(x)) + max(0, 1 + D(G(z))) on logits
  c.train.augment = ''  # DiffAugment for D on data and samples: e.g. 'color,translation,cutout'
  c.train.spectral_norm = False  # D's weight matrices / their largest singular value (one power iteration per D-update)
  c.train.r1_gamma = 0.0  # > 0: R1 penalty γ/2·E‖∇ₓD(x)‖² on data in D's loss (the paper's game only)
  c.train.r1_examples = 0  # estimate that mean on the first N examples of each device's minibatch (cost N/b); 0: all
  c.train.unsupervised_weight = 1.0  # semi_supervised: 0 trains D on the labelled examples alone
  c.train.game = 'gan'  # the paper's (conditional with model.num_classes); 'inpainting': §7 item 3
  # > 0: also keep an exponential moving average of G's weights, updated after every G step,
  # and sample from it in evaluation (not in the paper; configs/mnist_ema.py).
  c.train.ema_decay = 0.0
  c.train.ema_start_step = 0  # the average begins here: the first steps' G weighs nothing in it
  # > 0: also average D's weights (once per step), and classify with the average (semi_supervised)
  c.train.d_ema_decay = 0.0
  c.train.steps_per_call = 1   # iterations per dispatch (lax.scan); intervals must be multiples
  # Stop after this many minutes of training (the whole run: time before a resume counts).
  c.train.time_budget_minutes = config_dict.placeholder(float)

  c.optim = ml_collections.ConfigDict()
  c.optim.g = sgd()
  c.optim.d = sgd()

  c.mesh = ml_collections.ConfigDict()
  c.mesh.platform = config_dict.placeholder(str)     # None: JAX's default platform
  c.mesh.num_devices = config_dict.placeholder(int)  # None: all local devices
  # 'shard_map' (jit over a jax.make_mesh mesh of every device of every host, global arrays; measured
  # 1.08x pmap's rate on the MNIST step) or 'pmap' (a leading device axis): the same per-device
  # step, results equal bit for bit
  c.mesh.api = 'shard_map'
  # launch.py: glibc keeps freed host memory for reuse (gan_jax/host_memory.py), so XLA:CPU's
  # scratch buffer is not page-faulted in anew at every dispatch; the process keeps its peak
  c.mesh.keep_host_memory = True

  c.log_every_steps = 100
  c.eval_every_steps = 2000
  c.checkpoint_every_steps = 2000
  c.max_checkpoints_to_keep = 3
  c.keep_checkpoints_every_steps = config_dict.placeholder(int)  # also keep these steps forever
  c.num_samples = 100

  c.eval = ml_collections.ConfigDict()
  c.eval.num_samples = 10_000               # --mode=eval: the released Parzen protocol
  c.eval.classifier_path = config_dict.placeholder(str)  # None: ~/.cache/gan_jax/classifier_<data>.msgpack
  c.eval.classifier_epochs = 5              # reaches >= 99% test accuracy on MNIST
  c.eval.classifier_examples = 0            # train it on the first N training images; 0: all
  c.eval.split = 'test'                     # --mode=eval reports on 'test' (once per reported number) or 'valid'
  c.eval.at_end = False                     # after training: --mode=eval once on eval.split, and the Table 1 row
  c.eval.periodic_parzen = 'cheap'          # during training, on validation: 'cheap' Parzen, or 'full' (every metric)
  c.eval.periodic_num_samples = 1000        # cheap: samples and validation images

  c.eval.periodic_valid_examples = 500
  c.eval.pr_k = 3                           # neighbours of improved precision/recall and coverage
  # pytorch-fid's pt_inception-2015-12-05-6726825d.pth (or its .npz, python -m gan_jax.eval.inception
  # --convert): --mode=eval also reports the standard FID and Inception Score; None: neither
  c.eval.inception_weights = config_dict.placeholder(str)
  c.eval.kid_subset_size = config_dict.placeholder(int)  # KID's subsets (folders); None: min(1000, images, samples)
  c.eval.fid_num_samples = 10_000           # samples for FID/IS (50_000: the other common protocol)

  # --mode=sample also writes samples_step_<N>.npz for external scorers (torch-fidelity, clean-fid)
  c.sample = ml_collections.ConfigDict()
  c.sample.num_samples = 10_000
  c.sample.generator = 'eval'               # 'eval': the G evaluation uses (its EMA if any); 'raw'

  # Figure 1 from this run's checkpoints at the end of training (1-D data only).
  c.figure1 = ml_collections.ConfigDict()
  c.figure1.enabled = False
  c.figure1.from_step = 500   # panel (a): the kept checkpoint at (or nearest before) this step
  c.figure1.d_steps = 2000    # panel (b): D updates with G fixed
  c.figure1.g_steps = 50      # panel (c): G updates against that D
  return c


def toy_config(data_name: str, noise: str, noise_dim: int, hidden: int, num_examples: int):
  """Shared settings of the low-dimensional synthetic experiments: small MLPs on raw
  coordinates, batch 256, Adam 1e-3 for both players."""
  c = get_config()
  c.data.name = data_name
  c.data.train_split, c.data.eval_split, c.data.scale = 'train', 'test', 'none'
  c.data.num_examples, c.data.num_eval_examples = num_examples, 10_000
  c.model.generator = c.model.discriminator = 'toy_mlp'
  c.model.noise, c.model.noise_dim = noise, noise_dim
  c.model.g_output, c.model.g_output_bias = 'linear', 'none'
  c.model.g_kwargs = ml_collections.ConfigDict(dict(hidden=hidden, depth=2))
  c.model.d_kwargs = ml_collections.ConfigDict(dict(hidden=hidden, depth=2))
  c.train.batch_size = 256
  c.optim.g = adam(1e-3)
  c.optim.d = adam(1e-3)
  return c


def dcgan_config(width: int):
  """Shared settings of the conv experiments (DCGAN's recipe): the dcgan pair of the given width,
  pixels in [-1, 1] with a tanh G, Gaussian z, Adam 2e-4 with β1 0.5 for both players, batch 64."""
  c = get_config()
  c.data.scale = 'symmetric'
  c.model.generator = c.model.discriminator = 'dcgan'
  c.model.noise = 'gaussian'
  c.model.g_output, c.model.g_output_bias = 'tanh', 'none'
  c.model.g_kwargs = ml_collections.ConfigDict(dict(width=width, norm_groups=32))
  c.model.d_kwargs = ml_collections.ConfigDict(dict(width=width))
  c.train.batch_size = 64
  c.optim.g = adam(2e-4)
  c.optim.d = adam(2e-4)
  return c
