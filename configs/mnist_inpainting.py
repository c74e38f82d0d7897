"""The paper's §7 item 3, all conditionals p(x_S | x_rest) with one G: G(z, m, m⊙x) completes
an MNIST digit seen through a mask m drawn per example (bottom, top, left or right half hidden, a
random half of the pixels, or everything: a new digit), D judges (completion, m) against (digit, m).
Everything else is configs/mnist_ema.py (the paper's MLP/maxout pair, Algorithm 1, the average of G).

--mode=eval adds the classifier's accuracy on test digits completed from their top half and from
a random half of their pixels (beside its accuracy on what G saw) and writes
samples/inpainting_step_<N>.png (rows: digits, as seen, three completions).
"""
from configs import mnist_ema


def get_config():
  c = mnist_ema.get_config()
  c.train.game = 'inpainting'
  return c
