"""The conv ("deconvolutional") pair at any square size from 28 to 128, any channel count."""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models.layers import conv_lecun_normal, output_activation, with_label

# The dcgan pair grows (G) or shrinks (D) a small square map by stride-2 stages. A 4×4 start gives
# the powers of two, a 7×7 start the MNIST family (28 = 7·2², 56, 112); the two never make the same
# size. Below 28 there are fewer than two stages; above 128 the widest map (width·2^(n-1)) and G's
# first Dense grow past what these configs are tuned for.
DCGAN_START_SIZES = (4, 7)
DCGAN_MIN_SIZE, DCGAN_MAX_SIZE = 28, 128
_DCGAN_LAYOUTS = {s0 * 2 ** n: (s0, n) for s0 in DCGAN_START_SIZES for n in range(8)
                  if DCGAN_MIN_SIZE <= s0 * 2 ** n <= DCGAN_MAX_SIZE}
DCGAN_SIZES = tuple(sorted(_DCGAN_LAYOUTS))  # 28, 32, 56, 64, 112, 128


def _unsupported_size(found: str) -> UserError:
  return UserError(f'the dcgan models make square images of side {", ".join(map(str, DCGAN_SIZES))} '
                   f'(a 4×4 or 7×7 map doubled), not {found}: set --config.data.image_size to one of '
                   'them, or choose another model.')


def dcgan_layout(size: int):
  """(s0, n): the dcgan pair's smallest map is s0×s0, n stride-2 stages from a size×size image.

  Pure, so config validation can refuse an unsupported image size before anything runs.
  """
  if size not in _DCGAN_LAYOUTS:
    raise _unsupported_size(f'{size}×{size}')
  return _DCGAN_LAYOUTS[size]


def dcgan_num_blocks(size: int) -> int:
  """How many stride-2 stages the dcgan G (and D) has for size×size images; UserError if none."""
  return dcgan_layout(size)[1]


def _square_side(shape) -> int:
  if len(shape) != 3 or shape[0] != shape[1]:
    raise _unsupported_size('×'.join(map(str, shape)))
  return shape[0]


def group_norm_groups(channels: int, max_groups: int = 32) -> int:
  """The most groups (at most `max_groups`) that divide `channels`: GroupNorm needs a divisor,
  and min(32, channels) is not one for widths such as 48."""
  return max(g for g in range(1, min(max_groups, channels) + 1) if channels % g == 0)


# The dcgan convolutions are matmuls, not XLA convolutions: on CPU, XLA runs the kernel gradient
# of a transposed convolution, and the gradients of every convolution inside a lax.scan (the step
# scans over its k D-updates and over steps_per_call; jax#12868), in a slow generic loop. With
# nn.Conv and nn.ConvTranspose configs/mnist_dcgan.py's step ran at 1.9 steps/s on one CPU core,
# with these at 16. Their parameters and results are nn.Conv's and nn.ConvTranspose's (4×4
# windows, stride 2, padding 'SAME').


def space_to_depth(x):
  """NHWC `x` of even height and width, padded by 1 and cut into 2×2 blocks: [..., h/2 + 1, w/2 + 1, 4c]."""
  *batch, h, w, c = x.shape
  x = jnp.pad(x, [(0, 0)] * len(batch) + [(1, 1), (1, 1), (0, 0)])
  blocks = x.reshape(*batch, h // 2 + 1, 2, w // 2 + 1, 2, c)
  return jnp.swapaxes(blocks, -4, -3).reshape(*batch, h // 2 + 1, w // 2 + 1, 4 * c)


def block_windows(x):
  """Each output pixel's 2×2 window of space_to_depth(x)'s blocks: [..., h/2, w/2, 16c]."""
  *_, h, w, _ = x.shape
  blocks = space_to_depth(x)
  return jnp.concatenate([blocks[..., i:i + h // 2, j:j + w // 2, :] for i in (0, 1) for j in (0, 1)],
                         axis=-1)


def kernel_matrix(kernel):
  """A (4, 4, in, out) kernel as the [16·in, out] matrix block_windows' windows multiply."""
  c = kernel.shape[2]
  return kernel.reshape(2, 2, 2, 2, c, -1).transpose(0, 2, 1, 3, 4, 5).reshape(16 * c, -1)  # (i, j, p, q, in, out)


def adjoint_kernel(kernel):
  """nn.ConvTranspose's kernel as the convolution it is the adjoint of: flipped, in and out swapped."""
  return jnp.swapaxes(kernel[::-1, ::-1], 2, 3)


def conv_4x4_stride_2(x, kernel):
  """nn.Conv(out, (4, 4), strides=(2, 2)) on NHWC `x` of even height and width and a (4, 4, in,
  out) kernel.

  With x padded by 1 and cut into 2×2 blocks (space to depth), tap (2i + p, 2j + q) of output
  pixel (y, x) reads pixel (p, q) of block (y + i, x + j): a 2×2 stride-1 convolution of the
  blocks, one matmul over their 2×2 windows.
  """
  return block_windows(x) @ kernel_matrix(kernel)


def conv_transpose_4x4_stride_2(x, kernel):
  """nn.ConvTranspose(out, (4, 4), strides=(2, 2)) on NHWC `x` and a (4, 4, in, out) kernel.

  That layer is the adjoint of conv_4x4_stride_2 with the kernel flipped and its in and out
  swapped. (Slicing a matmul's output per tap and phase instead made XLA sum 16 padded copies of
  it in the gradient: 35× slower.)
  """
  *batch, h, w, _ = x.shape
  out = jax.ShapeDtypeStruct((*batch, 2 * h, 2 * w, kernel.shape[-1]), x.dtype)
  return jax.linear_transpose(lambda u: conv_4x4_stride_2(u, adjoint_kernel(kernel)), out)(x)[0]


def conv_hook_4x4_stride_2(inputs, kernel, window_strides, padding, lhs_dilation=None,
                           rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                           precision=None):
  """nn.Conv's `conv_general_dilated` hook: conv_4x4_stride_2, for the one convolution it does."""
  del dimension_numbers, precision  # nn.Conv's NHWC and HWIO; float32 matmuls
  dilated = any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
  if (kernel.shape[:2] != (4, 4) or tuple(window_strides) != (2, 2) or padding != 'SAME' or dilated
      or feature_group_count != 1 or inputs.shape[1] % 2 or inputs.shape[2] % 2):
    raise NotImplementedError('conv_hook_4x4_stride_2 makes only 4×4 stride-2 SAME convolutions '
                              'of even-sized inputs')
  return conv_4x4_stride_2(inputs, kernel)


class ConvTranspose4x4Stride2(nn.Module):
  """nn.ConvTranspose(features, (4, 4), strides=(2, 2)): the same parameters and initialisation,
  computed by conv_transpose_4x4_stride_2."""
  features: int

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', conv_lecun_normal(), (4, 4, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    return conv_transpose_4x4_stride_2(x, kernel) + bias


def _norm_relu(x, max_groups: int):
  if max_groups:
    x = nn.GroupNorm(num_groups=group_norm_groups(x.shape[-1], max_groups))(x)
  return nn.relu(x)


class DCGANGenerator(nn.Module):
  """A "deconvolutional" G: dense → s0×s0 map → n stride-2 transposed convs → H×W×C.

  s0 and n come from the image side (dcgan_layout): 28 = 7·2², 32 = 4·2³, 64 = 4·2⁴,
  128 = 4·2⁵. The first map has width·2^(n-1) channels, halved by each stage down to `width`
  before the last transposed conv makes the C channels (DCGAN's layout). At 32×32 the
  parameters, their names and their initial values are the ones this G had when it made only
  32×32 images with nn.ConvTranspose.

  GroupNorm instead of BatchNorm keeps every example independent of the rest of the batch, so
  the data-parallel step equals the single-device one and no batch statistics need carrying.
  `norm_groups` caps its groups (1: LayerNorm over each example's whole map; 0: no norm); at the
  default 32 a layer of 32 channels or fewer normalizes each channel alone (InstanceNorm).
  """
  out_shape: Sequence[int]
  output: str = 'tanh'
  width: int = 64
  norm_groups: int = 32
  num_classes: int = 0  # > 0: G(z, y), the one-hot label beside z

  @nn.compact
  def __call__(self, z, labels=None, cond=None):
    size, channels = _square_side(self.out_shape), self.out_shape[-1]
    s0, n = dcgan_layout(size)
    features = self.width * 2 ** (n - 1)
    x = nn.Dense(s0 * s0 * features)(with_label(z, labels, self.num_classes, cond)).reshape(z.shape[:-1] + (s0, s0, features))
    x = _norm_relu(x, self.norm_groups)
    for i in range(n - 1):
      up = ConvTranspose4x4Stride2(features // 2 ** (i + 1), name=f'ConvTranspose_{i}')
      x = _norm_relu(up(x), self.norm_groups)
    # Not named 'out': g_output_bias='marginals' writes one bias per pixel into params['out'], and
    # this layer has one per channel (a per-pixel vector would broadcast into H×W×(H·W·C) images).
    x = ConvTranspose4x4Stride2(channels, name=f'ConvTranspose_{n - 1}')(x)
    return output_activation(x, self.output)


class DCGANDiscriminator(nn.Module):
  """A conv D, G's mirror: n stride-2 convs with leaky ReLU (widths width, 2·width, ...) from the
  image down to the s0×s0 map, then a linear logit. n follows the size of the image it is given.

  No normalization: examples must stay independent (D runs on each one alone, players.discriminate),
  and none was needed: with configs/mnist_dcgan.py, D(x) stayed at 0.59-0.65 and D(G(z)) at
  0.35-0.42 from step 1,000 to 10,000, with no collapse of the samples.
  """
  width: int = 64
  num_classes: int = 0  # > 0: a projection discriminator (Miyato & Koyama 2018)

  @nn.compact
  def __call__(self, x, labels=None, cond=None, train: bool = False):
    del train  # no dropout in this D
    if cond is not None:
      raise NotImplementedError('the dcgan D takes no conditioning vector; use the MLP pair')
    for i in range(dcgan_num_blocks(_square_side(x.shape[-3:]))):
      conv = nn.Conv(self.width * 2 ** i, (4, 4), strides=(2, 2), kernel_init=conv_lecun_normal(),
                     conv_general_dilated=conv_hook_4x4_stride_2)
      x = nn.leaky_relu(conv(x), 0.2)
    features = x.reshape(x.shape[0], -1)
    logit = nn.Dense(1)(features)[:, 0]
    if self.num_classes:  # + <embed(y), φ(x)>: the label enters as an inner product with D's features
      embed = nn.Embed(self.num_classes, features.shape[-1], embedding_init=nn.initializers.normal(0.02))
      logit = logit + jnp.sum(embed(labels) * features, axis=-1)
    return logit
