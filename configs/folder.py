"""Your own images: every jpg/png/webp under data.path (searched recursively), center-cropped and
resized to data.image_size (default 64), a DCGAN pair, pixels in [-1, 1], Adam.

  python launch.py --config=configs/folder.py --config.data.path=/path/to/photos

A folder has no held-out test set, so no Parzen or classifier numbers: samples are scored against
the folder's own images (KID, a Fréchet distance, near copies: gan_jax/eval/folder_metrics.py) at
each evaluation and by --mode=eval, beside sample grids, TensorBoard and checkpoints.
"""
from configs import default


def get_config():
  c = default.dcgan_config(width=64)
  c.data.name = 'folder'
  c.data.image_size = 64
  c.data.train_split = 'train'
  c.data.valid_split = None  # nothing held out: every image trains
  c.data.eval_split = None
  c.train.num_steps = 100_000
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.num_samples = 64
  return c
