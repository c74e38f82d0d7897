"""The paper's MNIST experiment with the released code's recipe (goodfeli/adversarial mnist.yaml).

G: z(100, U(-√3, √3)) → 1200 ReLU → 1200 ReLU → 784 sigmoid; D: maxout 240×5 → 240×5 → 1 with
dropout; SGD lr 0.1 divided by 1.000004 per update (floor 1e-6), momentum 0.5 → 0.7 over epochs
1..250; batch 100; k = 1; trained on train[:50000].
"""
from configs import default


def get_config():
  c = default.get_config()
  recipe = dict(lr=0.1, momentum=0.5)
  schedules = dict(lr_decay=1.000004, min_lr=1e-6, final_momentum=0.7, momentum_start=1,
                   momentum_saturate=250)
  c.optim.g = default.sgd(**recipe)
  c.optim.d = default.sgd(**recipe)
  c.optim.g.update(schedules)
  c.optim.d.update(schedules)
  c.train.steps_per_call = 10  # +17% steps/s on 2 CPU cores (benchmarks/step_speed.py)
  return c
