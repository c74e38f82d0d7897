"""The paper's §7 item 4, semi-supervised learning with 100 labels (Salimans et al. 2016): the
paper's maxout D becomes a 10-class classifier whose logits also say "real" (D(x) = Z/(Z + 1)),
trained on the 100 labelled training digits (10 per class, drawn with the seed; saved as
labelled_indices.json in the workdir) and on every unlabelled one; G (the paper's MLP) matches the
mean of D's last hidden features on data. Adam 3e-3, β1 0.5 for both players (Salimans et al.'s rate).

--mode=eval reports D's test errors (classification_errors of 10,000). The baseline, the same D on
the 100 labels alone: --config.train.unsupervised_weight=0.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.train.game = 'semi_supervised'
  c.data.num_labelled = 100
  c.model.d_kwargs.num_outputs = 10
  c.optim.g = default.adam(3e-3)
  c.optim.d = default.adam(3e-3)
  c.train.steps_per_call = 10
  return c
