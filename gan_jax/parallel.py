"""Device choice and replication for the pmapped step (1 CPU, N devices, or several hosts)."""
import jax
import numpy as np

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
  """The first local replica as host numpy arrays (all replicas are equal)."""
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
