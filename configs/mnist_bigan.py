"""The paper's §7 item 2, learned approximate inference: an encoder E(x) → z trained with G against
a D that sees (x, z) pairs (BiGAN, Donahue et al. 2017; ALI, Dumoulin et al. 2017). G and D are the
paper's MLP/maxout pair (D takes z beside its dropped-out pixels), E an MLP 784 → 1024 → 1024 → 50
(leaky ReLU); z 50-d as BiGAN's MNIST model; Adam 2e-4, β1 0.5 for both players, as BiGAN.

--mode=eval adds E's 1-nearest-neighbour and linear-probe accuracy on the test digits (codes of the
training split as the reference; raw pixels' 1-NN beside), the classifier's accuracy on
reconstructions G(E(x)), and writes samples/reconstructions_step_<N>.png.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.train.game = 'bigan'
  c.model.noise_dim = 50
  c.optim.g = default.adam(2e-4)
  c.optim.d = default.adam(2e-4)
  c.train.steps_per_call = 10
  return c
