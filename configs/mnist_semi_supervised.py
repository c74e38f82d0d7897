"""The paper's §7 item 4, semi-supervised learning with 100 labels, as Salimans et al. (2016) did it
(improved-gan, train_mnist_feature_matching.py): D is a 10-class classifier whose logits also say
"real" (D(x) = Z/(Z + 1)), their permutation-invariant MLP (1000-500-250-250-250 ReLU units, weight
normalisation, Gaussian noise 0.3 on pixels and 0.5 on every hidden layer), trained on the 100
labelled training digits (10 per class, drawn with the seed; saved as labelled_indices.json in the
workdir; all 100 in every update) and on every unlabelled one, whose GAN terms weigh ½ as theirs do;
G matches the mean of D's last hidden features on data (feature matching). Adam 3e-3, β1 0.5, batch
100 for both players, their rates; D classifies with the moving average of its weights (decay
0.9999, theirs), here debiased.

G is the paper's MLP (ReLU, no batch normalisation: every example stays independent) at their width
of 500 units; their data-dependent initialisation of D's weight-norm scales is not reproduced.

--mode=eval reports D's test errors (classification_errors of 10,000). The baseline, the same D on
the 100 labels alone: --config.train.unsupervised_weight=0.
"""
import ml_collections

from configs import default


def get_config():
  c = default.get_config()
  c.train.game = 'semi_supervised'
  c.data.num_labelled = 100
  c.model.discriminator = 'improved_gan'
  c.model.d_kwargs = ml_collections.ConfigDict(dict(hidden=(1000, 500, 250, 250, 250), input_noise=0.3,
                                                    hidden_noise=0.5, num_outputs=10))
  c.model.g_kwargs.hidden = 500
  c.train.unsupervised_weight = 0.5
  c.train.d_ema_decay = 0.9999  # their test error is the average's (rate 1e-4)
  c.optim.g = default.adam(3e-3)
  c.optim.d = default.adam(3e-3)
  c.train.steps_per_call = 10
  return c
