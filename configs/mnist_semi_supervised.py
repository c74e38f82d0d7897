"""The paper's §7 item 4, semi-supervised learning with 100 labels, as Salimans et al. (2016) did it
(openai/improved-gan, mnist_svhn_cifar10/train_mnist_feature_matching.py and nn.py), value by
value; docs/section7.md lists each value beside its source line.

D is a 10-class classifier whose logits also say "real" (D(x) = Z/(Z + 1)): their
permutation-invariant MLP (1000-500-250-250-250 ReLU units, weight normalisation with v ~ N(0, 0.1²),
scales and biases initialised from 500 training images with the noise on, hidden scales frozen,
Gaussian noise 0.3 on pixels and 0.5 after every hidden layer). It learns from the 100 labelled
training digits (10 per class, drawn with the seed; saved as labelled_indices.json in the workdir;
all 100 in every update) and from all 60,000 training images unlabelled, whose GAN terms weigh ½.
G (z ~ U(0, 1)^100; 500-500 softplus units batch-normalised without scale; a weight-normalised
sigmoid output) matches the mean of D's last hidden features on data (feature matching). Adam 3e-3,
β1 0.5, ε inside the root, batch 100, 180,000 updates (their 300 epochs). D classifies with the
moving average of its weights (decay 0.9999), here debiased.

The validation split (train[50000:60000], the periodic error) lies inside the unlabelled training
images, as theirs has no held-out part: it draws the curve, it chooses nothing; the test split is
read once, at the end. --mode=eval reports D's test errors (classification_errors of 10,000).
The baseline, the same D on the 100 labels alone: --config.train.unsupervised_weight=0.
"""
import ml_collections

from configs import default


def get_config():
  c = default.get_config()
  c.train.game = 'semi_supervised'
  c.data.train_split = 'train'  # all 60,000 unlabelled (theirs: x_train and x_valid)
  c.data.num_labelled = 100
  c.model.discriminator = 'improved_gan'
  c.model.d_kwargs = ml_collections.ConfigDict(dict(
      hidden=(1000, 500, 250, 250, 250), input_noise=0.3, hidden_noise=0.5, num_outputs=10,
      kernel_std=0.1, data_init=True, train_hidden_scales=False))
  c.model.d_init_examples = 500
  c.model.generator = 'improved_gan'
  c.model.g_kwargs = ml_collections.ConfigDict(dict(hidden=(500, 500)))
  c.model.g_output_bias = 'none'
  c.model.noise = 'uniform01'
  c.model.noise_dim = 100
  c.train.batch_size = 100
  c.train.num_steps = 180_000
  c.train.unsupervised_weight = 0.5
  c.train.d_ema_decay = 0.9999  # their test error is the average's (rate 1e-4)
  c.optim.g = default.adam(3e-3, b1=0.5, b2=0.999, eps=0.0, eps_root=1e-8)
  c.optim.d = default.adam(3e-3, b1=0.5, b2=0.999, eps=0.0, eps_root=1e-8)
  c.train.steps_per_call = 10
  c.eval_every_steps = 6000
  c.checkpoint_every_steps = 6000
  return c
