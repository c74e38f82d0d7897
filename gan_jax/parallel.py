"""Device choice and placement for the data-parallel step (1 CPU, N devices, or several hosts),
through either of JAX's two ways (`mesh.api`): `pmap` (every array carries a leading axis of
this host's devices) or `shard_map` under `jit` over a `jax.make_mesh` mesh of all devices of all
hosts (global arrays: the state replicated, each batch stitched from every host's rows)."""
import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gan_jax.errors import UserError


def select_devices(mesh_config):
  """This host's devices for the step, from `mesh.platform` and `mesh.num_devices`."""
  platform, n = mesh_config.platform, mesh_config.num_devices
  try:
    devices = jax.local_devices(backend=platform)
  except RuntimeError as e:
    raise UserError(f'mesh.platform={platform!r} is not available here ({e}); '
                    'set mesh.platform=None for the default platform.') from None
  if n is None:
    return devices
  if n < 1 or n > len(devices):
    raise UserError(f'mesh.num_devices={n} but {len(devices)} {devices[0].platform} device(s) are '
                    'available; on CPU, ask for simulated devices with mesh.platform=cpu.')
  if jax.process_count() > 1 and n != len(devices):
    raise UserError('with several processes every local device is used: set mesh.num_devices=None.')
  return devices[:n]


def pmap_devices(devices):
  """What to pass to `jax.pmap(devices=...)`: None means all devices of all processes."""
  return None if jax.process_count() > 1 else devices


def replicate(tree, num_devices: int):
  """A copy of `tree` with a leading device axis; pmap places each row on its device."""
  return jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), (num_devices,) + np.shape(a)), tree)


def unreplicate(tree):
  """The first local replica of pmap's arrays as host numpy arrays (all replicas are equal)."""
  def first(a):
    if isinstance(a, np.ndarray):  # still as `replicate` made it: a finished run resumed trains no step
      return a[0]
    shard = np.asarray(a.addressable_data(0))
    return shard[0] if shard.ndim == a.ndim else shard
  return jax.tree.map(first, tree)


def make_any_process(devices):
  """`agree(flags)`: this process's flags summed over every device of every process, returned
  as a device array (unreplicate it to read), so a decision made on one process reaches all."""
  total = jax.pmap(lambda f: jax.lax.psum(f, 'all'), axis_name='all', devices=pmap_devices(devices))
  return lambda flags: total(np.broadcast_to(np.asarray(flags, np.int32), (len(devices), len(flags))))


APIS = ('pmap', 'shard_map')


class DataParallel:
  """The step's devices and how a per-device function runs over them (`mesh.api`).

  `map(fn)` compiles `fn(state, batch) -> (state, metrics)`, written for one device with its
  collectives over `axis_name`; the state is donated. `replicate`, `batch` and `unreplicate`
  move values in and out in the form `map`'s function takes and gives. Both ways run the same
  per-device program, so their results are equal bit for bit."""

  def __init__(self, devices, api: str = 'pmap'):
    self.local_devices, self.api = list(devices), api
    if api == 'pmap':
      self.axis_name, self.mesh = 'batch', None
      self.device_offset = jax.process_index() * len(self.local_devices)
      self.num_devices = len(self.local_devices) * jax.process_count()
      return
    self.axis_name = 'data'
    every = jax.devices() if jax.process_count() > 1 else self.local_devices
    self.mesh = jax.make_mesh((len(every),), ('data',), devices=every)
    # the input pipeline gives this host's devices consecutive rows of the global batch
    order = list(self.mesh.devices.flat)
    rows = sorted(order.index(d) for d in self.local_devices)
    if rows != list(range(rows[0], rows[0] + len(rows))):
      raise UserError(f'the mesh places this process\'s devices at rows {rows} of the batch, not '
                      'consecutively; use mesh.api=pmap on this platform.')
    self.device_offset, self.num_devices = rows[0], len(order)
    self._replicated = NamedSharding(self.mesh, P())
    self._rows = NamedSharding(self.mesh, P('data'))

  def map(self, fn):
    if self.mesh is None:
      return jax.pmap(fn, axis_name=self.axis_name, devices=pmap_devices(self.local_devices),
                      donate_argnums=(0,))

    def per_device(state, batch):  # each device's block of the batch: [1, ...]
      return fn(state, jax.tree.map(lambda a: a[0], batch))
    # check_vma=False, as pmap: with it on, autodiff would already sum the gradients of the
    # replicated parameters over the devices (pvary's transpose is psum) and the step's pmean
    # would no longer be the mean
    return jax.jit(jax.shard_map(per_device, mesh=self.mesh, in_specs=(P(), P('data')), out_specs=(P(), P()),
                                 check_vma=False), donate_argnums=(0,))

  def replicate(self, tree):
    """Host values (equal on every process) in the form `map`'s function takes its state."""
    if self.mesh is None:
      return replicate(tree, len(self.local_devices))
    return jax.tree.map(lambda a: jax.make_array_from_callback(
        np.shape(a), self._replicated, lambda index, a=np.asarray(a): a[index]), tree)

  def unreplicate(self, tree):
    """Host numpy copies of values `map`'s function gave (this host's first replica)."""
    if self.mesh is None:
      return unreplicate(tree)
    return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), tree)

  def batch(self, local):
    """This host's rows [local devices, ...] in the form `map`'s function takes a batch."""
    if self.mesh is None:
      return local
    return jax.tree.map(lambda a: jax.make_array_from_process_local_data(self._rows, a), local)

  def any_process(self):
    """`agree(flags)`: as make_any_process, for either way."""
    if self.mesh is None:
      return make_any_process(self.local_devices)
    total = jax.jit(jax.shard_map(lambda f: jax.lax.psum(f[0], 'data'), mesh=self.mesh,
                                  in_specs=P('data'), out_specs=P()))
    return lambda flags: total(self.batch(np.broadcast_to(
        np.asarray(flags, np.int32), (len(self.local_devices), len(flags)))))
