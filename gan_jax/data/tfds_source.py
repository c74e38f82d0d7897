"""Any tfds image dataset, read without TensorFlow through `tfds.data_source` (array_record).

mnist, fashion_mnist and cifar10 are prepared by the project's TF-free builders
(`tfds_builders/`, same name, version and features as tfds' own); any other name goes to tfds'
registry. Before tfds is allowed to download, the download host is probed for a few seconds:
offline, tfds would otherwise sit in minutes of DNS retries and end in a bare traceback.
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import sys
import threading
from typing import Optional
from urllib.parse import urlparse

import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import checksums as tfds_checksums

from gan_jax import files, progress
from gan_jax.data import records
from gan_jax.data.tfds_builders import BUILDERS
from gan_jax.errors import UserError

PROBE_SECONDS = 5.0
_FALLBACK_HOST = 'storage.googleapis.com'  # where tfds keeps dataset metadata and many files


def _sha256(path):
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def _archive_names(name):
  return [u.rsplit('/', 1)[1] for u in BUILDERS[name].urls()]


def check_manual_dir(name: str, manual_dir: str) -> None:
  """Fails fast, with the fix, when manual_dir lacks a file or holds a wrong one.

  tfds would treat a missing or mismatching file as "not downloaded" and go to the network.
  """
  registered = tfds_checksums.get_all_url_infos()
  problems = []
  for url in BUILDERS[name].urls():
    info = registered[url]
    path = os.path.join(manual_dir, info.filename)
    if not os.path.isfile(path):
      problems.append(f'{info.filename} is missing')
    elif os.path.getsize(path) != info.size or _sha256(path) != info.checksum:
      problems.append(f'{info.filename} does not match the official file (size/sha256 differ)')
  if problems:
    raise UserError(
        f'data.manual_dir={manual_dir!r} cannot provide {name}: ' + '; '.join(problems)
        + f'. Put the official archive files ({", ".join(_archive_names(name))}) there, or unset '
        'data.manual_dir to let tfds download them.')


def unreachable(hosts) -> Optional[str]:
  """None when one of `hosts` accepts a TCP connection within PROBE_SECONDS, else why not.
  Runs in a thread: name resolution has no timeout of its own."""
  result = {}

  def probe():
    for host in hosts:
      try:
        socket.create_connection((host, 443), timeout=PROBE_SECONDS).close()
        result['ok'] = True
        return
      except OSError as e:
        result['why'] = f'{host}: {e.strerror or e}'

  thread = threading.Thread(target=probe, daemon=True)
  thread.start()
  thread.join(PROBE_SECONDS + 1)
  if result.get('ok'):
    return None
  return result.get('why', f'no answer from {", ".join(hosts)} in {PROBE_SECONDS:.0f} s')


def builder_for(name: str, data_dir: Optional[str]):
  if name in BUILDERS:
    return BUILDERS[name](data_dir=data_dir, file_format='array_record')
  try:
    return tfds.builder(name, data_dir=data_dir, file_format='array_record')
  except (tfds.core.registered.DatasetNotFoundError, ValueError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f'data.name={name!r} is not a tfds dataset ({first[:200]}); use a tfds image '
                    "dataset name (e.g. celeb_a, svhn_cropped, lsun/bedroom), 'folder' for your own "
                    "images, or a synthetic source ('ring2d', 'gaussian1d').") from None


def _download_hosts(builder, name):
  urls = BUILDERS[name].urls() if name in BUILDERS else list((builder.url_infos or {}).keys())
  return sorted({urlparse(u).hostname for u in urls if urlparse(u).hostname}) or [_FALLBACK_HOST]


def prepare(name: str, data_dir: Optional[str], manual_dir: Optional[str]):
  """The tfds builder for `name`, preparing its array_record files first if needed."""
  builder = builder_for(name, data_dir)
  if builder.is_prepared():
    return builder
  where = data_dir or '~/tensorflow_datasets'
  if manual_dir is not None:
    if name in BUILDERS:
      check_manual_dir(name, manual_dir)
    elif not os.path.isdir(manual_dir):
      raise UserError(f'data.manual_dir={manual_dir!r} is not a directory; put the files tfds asks '
                      f'for {name} there.')
  else:
    why = unreachable(_download_hosts(builder, name))
    if why is not None:
      files = (f'the official archive files ({", ".join(_archive_names(name))})' if name in BUILDERS
               else 'the files tfds asks for')
      raise UserError(f'{name} is not prepared in {where} and cannot be downloaded ({why}): put '
                      f'{files} in a directory and pass --config.data.manual_dir=DIR, or prepare it '
                      'on a machine with network and pass --config.data.data_dir=DIR.')
  with _one_preparer(builder, name):
    builder = builder_for(name, data_dir)  # what another process prepared meanwhile counts
    if builder.is_prepared():
      return builder
    progress.log('Preparing %s into %s (once).', name, builder.data_dir)
    if not sys.stderr.isatty():  # tqdm's bars redraw with cursor codes: noise in a log file
      tfds.disable_progress_bar()
    try:
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except UserError:
      raise
    except Exception as e:  # tfds raises many types (network, missing TF for some builders, ...)
      raise UserError(f'preparing {name} into {where} failed ({type(e).__name__}: {str(e)[:300]}). '
                      'Prepare it elsewhere with `tfds build ' + name + ' --file_format=array_record` '
                      'and pass --config.data.data_dir=DIR.') from None
  return builder


_MARKERS = ('features.json', 'dataset_info.json')  # what makes tfds call a version folder prepared


def readable_builder(data_config):
  """The prepared tfds builder, on local disk: tfds' array_record reader opens local files only
  (it stalled on gs:// in tests). With `data.data_dir` in a bucket the dataset is copied once to
  `<cache root>/tensorflow_datasets`; one not prepared there is prepared on local disk, then
  uploaded (its marker files last, so a half-finished upload never looks prepared) for the other
  hosts and later runs."""
  name, data_dir, manual_dir = data_config.name, data_config.data_dir, data_config.manual_dir
  if files.is_local(data_dir or ''):
    return prepare(name, data_dir, manual_dir)
  files.check_reachable(data_dir, '--config.data.data_dir')
  local_dir = os.path.join(records.cache_root(data_config), 'tensorflow_datasets')
  remote = os.fspath(builder_for(name, data_dir).data_dir)
  try:
    in_bucket = all(files.exists(files.join(remote, m)) for m in _MARKERS)
  except Exception as e:  # noqa: BLE001  (gcsfs and google-auth raise their own)
    raise UserError(f'--config.data.data_dir={data_dir} cannot be read ({type(e).__name__}: '
                    f'{" ".join(str(e).split())[:200]}); check the bucket name and your credentials '
                    '(gcloud auth application-default login).') from None
  local = builder_for(name, local_dir)
  if not local.is_prepared() and in_bucket:
    progress.log('Copying %s from %s to %s (once).', name, remote, local.data_dir)
    tmp = f'{local.data_dir}.tmp-{os.getpid()}'
    files.copy_files(remote, tmp, [r for r in files.walk_files(remote) if '/' not in r])
    try:
      os.rename(tmp, local.data_dir)
    except OSError:  # another process on this host copied it meanwhile
      shutil.rmtree(tmp, ignore_errors=True)
    local = builder_for(name, local_dir)
    if not local.is_prepared():
      raise UserError(f'{name} copied from {remote} to {local.data_dir} does not read as prepared; '
                      f'delete {local.data_dir} and run again.')
    return local
  local = prepare(name, local_dir, manual_dir)
  if not in_bucket:
    progress.log('Uploading the prepared %s to %s.', name, remote)
    prepared = [r for r in files.walk_files(os.fspath(local.data_dir)) if '/' not in r and r not in _MARKERS]
    files.copy_files(os.fspath(local.data_dir), remote, prepared + list(_MARKERS))
  return local


@contextlib.contextmanager
def _one_preparer(builder, name: str):
  """Holds a lock beside the dataset's prepared files while preparing it: two runs started at once
  (the README's conv pair) would both prepare, and tfds' final rename fails for the second
  ("Destination ... already exists"). The second waits, then finds the dataset prepared."""
  folder = os.path.dirname(os.fspath(builder.data_dir))
  try:
    os.makedirs(folder, exist_ok=True)
    lock = open(os.path.join(folder, '.gan_jax_prepare.lock'), 'w')
  except OSError:  # not a local directory (e.g. a bucket): no lock to take
    yield
    return
  with lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      progress.log('Waiting for another process preparing %s into %s.', name, folder)
      fcntl.flock(lock, fcntl.LOCK_EX)
    yield


def open_records(data_config, split: str) -> records.Records:
  """A split as decoded-once records: the image feature `data.image_key`, center-cropped and
  resized to `data.image_size` (None: as stored), and the label when the dataset has one."""
  name, key, size = data_config.name, data_config.image_key, data_config.image_size
  builder = readable_builder(data_config)
  features = builder.info.features
  images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
  if key not in features or key not in images:
    raise UserError(f'data.image_key={key!r} is not an image feature of {name}; it has {images or "none"}.')
  try:
    source = builder.as_data_source(split=split)
  except (ValueError, KeyError, AssertionError) as e:
    raise UserError(f'split {split!r} of {name}: {str(e)[:200]}. Its splits are '
                    f'{sorted(builder.info.splits)}.') from None
  except Exception as e:  # e.g. prepared as tfrecord, which data_source cannot read
    raise UserError(f'cannot read {name} from {builder.data_dir} ({type(e).__name__}: {str(e)[:200]}); '
                    'prepare it with --file_format=array_record.') from None
  count = len(source)
  label = 'label' if 'label' in features and isinstance(features['label'], tfds.features.ClassLabel) else None
  info = lambda split, count: {'dataset': builder.info.full_name, 'split': split, 'image_key': key,
                               'image_size': size, 'count': count}
  root = data_config.cache_dir or os.path.join(builder.data_dir, 'gan_jax_records')
  directory = lambda split: os.path.join(
      root, builder.info.full_name.replace('/', '_') if data_config.cache_dir else '',
      f'{"".join(c if c.isalnum() else "_" for c in split)}_{key}_{size or "native"}')
  within = _slice_of_one_split(builder, split)
  if within is not None:  # a slice of a split decoded before is read from it, not decoded again
    whole, start, stop = within
    found = records.open_complete(directory(whole), info(whole, builder.info.splits[whole].num_examples),
                                  start, stop)
    if found is not None:
      return found

  def examples(chunk=1000):
    for start in range(0, count, chunk):
      for r in source.__getitems__(list(range(start, min(start + chunk, count)))):
        yield records.center_crop_resize(r[key], size), (r[label] if label else None)

  return records.build(directory(split), examples, count, f'{name}[{split}]', info(split, count))


def _slice_of_one_split(builder, split: str):
  """(split name, start, stop) when `split` names consecutive examples of one split (`train`,
  `train[:2000]`, `train[-10%:]`, as tfds reads them), else None (e.g. `train+test`)."""
  try:
    parts = tfds.core.ReadInstruction.from_spec(split).to_absolute(builder.info.splits)
  except Exception:  # noqa: BLE001  (as_data_source has already accepted it; read it as tfds does)
    return None
  if len(parts) != 1:
    return None
  whole = parts[0].splitname
  n = builder.info.splits[whole].num_examples
  return whole, parts[0].from_ or 0, n if parts[0].to is None else parts[0].to
