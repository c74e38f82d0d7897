"""The paper's §7 item 2, learned approximate inference: an encoder E(x) → z trained with G against
a D that sees (x, z) pairs (BiGAN, Donahue et al. 2017; ALI, Dumoulin et al. 2017), on BiGAN's
permutation-invariant MNIST recipe value by value (jeffdonahue/bigan, train_mnist.sh and the
defaults of train_gan.py; docs/section7.md lists each value beside its source line).

E: 784 → 1024 leaky ReLU → 1024, batch norm, leaky ReLU → 50, code 2·sigmoid(a) − 1. G: z ~ U(−1, 1)^50
→ 1024, batch norm, ReLU → 1024 (z added again through its own matrix), batch norm, ReLU → 784
sigmoid. D(x, z): x → 1024 leaky ReLU → 1024 (z added through its own matrix), batch norm, leaky
ReLU → 1, zero-initialised. No biases, no batch-norm scale or shift, weights N(0, 0.02²), batch
norm by the batch itself (data and samples apart). D, and E with G, updated simultaneously on
the same batch; Adam 2e-4, β1 0.5, an L2 penalty 2.5e-5 on every weight; batch 128; 400 epochs of
391 updates, the rate constant for 200 and then falling once per epoch to 1% at the last.

--mode=eval adds E's 1-nearest-neighbour accuracy on its code's pre-activation (BiGAN's NNC_e) and on
its last hidden layer (NNC_e-), both on the test split and on the validation split (BiGAN's own
protocol: a held-out part of the training set, under anchor_split/), each beside raw pixels' 1-NN,
E in test mode (batch-norm statistics averaged over 1,000 training batches, as its deploy()); a
linear probe on the codes and the classifier's accuracy on reconstructions G(E(x)); and writes
samples/reconstructions_step_<N>.png. The training log follows the validation 1-NN numbers.
"""
import ml_collections

from configs import default

EPOCH = 391  # ceil(50,000 / 128) updates (train_gan.py:866)


def get_config():
  c = default.get_config()
  c.train.game = 'bigan'
  c.model.noise = 'uniform_pm1'
  c.model.noise_dim = 50
  mlp = dict(weight_init='normal', init_range=0.02, use_bias=False, batch_norm=True)
  c.model.generator = 'paper_mlp'
  c.model.g_kwargs = ml_collections.ConfigDict(dict(hidden=1024, z_again=True, **mlp))
  c.model.g_output_bias = 'none'
  c.model.discriminator = 'toy_mlp'
  c.model.d_kwargs = ml_collections.ConfigDict(dict(hidden=1024, depth=2, cond_at=1, zero_output=True, **mlp))
  c.model.encoder = 'mlp'
  c.model.e_kwargs = ml_collections.ConfigDict(dict(hidden=1024, depth=2, code='bounded', **mlp))
  c.train.update_mode = 'simultaneous'
  c.train.batch_size = 128
  c.train.num_steps = 400 * EPOCH
  for player in ('g', 'd'):  # 'g' is the generator player: G and E together
    c.optim[player] = default.adam(2e-4, b1=0.5, b2=0.999, eps=1e-8, weight_decay=2.5e-5)
    c.optim[player].lr_decay = 100 ** (1 / 200)  # to 1% over the last 200 epochs
    c.optim[player].lr_decay_start = 199 * EPOCH
    c.optim[player].lr_decay_every = EPOCH
  c.train.steps_per_call = 10
  c.eval_every_steps = 6000
  c.checkpoint_every_steps = 6000
  return c
