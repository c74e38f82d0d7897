"""The paper's MNIST experiment, exactly as the released code ran it (goodfeli/adversarial
mnist.yaml and AdversaryCost2; each value's source is listed in the README).

G: z(100, U(-√3, √3)) → 1200 ReLU → 1200 ReLU → 784 sigmoid, output bias the logit of the
training pixels' means; D: maxout 240×5 → 240×5 → 1, dropout keeping 0.8 of the input and 0.5
elsewhere. D and G updated simultaneously from one minibatch (AdversaryCost2.get_gradients), D's
loss halved, G's non-saturating. SGD lr 0.1 divided by 1.000004 per update (floor 1e-6),
pylearn2's momentum 0.5 → 0.7 over epochs 1..250; batch 100; trained on train[:50000].
Algorithm 1 of the paper (alternating, k D-updates per G-update) is configs/mnist_algorithm1.py.
"""
from configs import default


def get_config():
  c = default.get_config()
  c.train.update_mode = 'simultaneous'  # one SGD step on d_obj + g_obj, each for its own player
  recipe = dict(lr=0.1, momentum=0.5)
  schedules = dict(lr_decay=1.000004, min_lr=1e-6, final_momentum=0.7, momentum_start=1,
                   momentum_saturate=250)
  c.optim.g = default.sgd(**recipe)
  c.optim.d = default.sgd(**recipe)
  c.optim.g.update(schedules)
  c.optim.d.update(schedules)
  c.train.steps_per_call = 10  # +17% steps/s on 2 CPU cores (benchmarks/step_speed.py)
  return c
