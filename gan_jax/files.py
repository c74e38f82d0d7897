"""Files of a workdir, a local directory or a bucket (`gs://...`, through etils.epath and gcsfs).

A local file is replaced atomically by writing a temporary file and renaming it. A bucket has no
atomic rename of a folder, but an object appears only once its upload is complete, whole or not
at all: there a file is written in one upload, and a folder is moved by copying every object
before deleting the originals (a crash in between leaves both copies, never neither).
"""
import os
import shutil
import socket
import threading
import urllib.parse

from etils import epath

from gan_jax.errors import UserError

REACH_SECONDS = 8  # a bucket that does not answer within this is reported, not waited for
CONNECT_SECONDS = 5


def is_local(path) -> bool:
  return '://' not in str(path)


def resolve(path) -> str:
  """An absolute local path, or a bucket URL as given."""
  return os.path.abspath(path) if is_local(path) else str(path).rstrip('/')


def join(*parts) -> str:
  return os.path.join(*(str(p) for p in parts))


def exists(path) -> bool:
  return epath.Path(path).exists()


def isdir(path) -> bool:
  return epath.Path(path).is_dir()


def listdir(path) -> list:
  return [p.name for p in epath.Path(path).iterdir()] if isdir(path) else []


def makedirs(path) -> None:
  if is_local(path):  # a bucket has no folders: a file's name makes its own
    os.makedirs(path, exist_ok=True)


def open_file(path, mode: str = 'r'):
  if 'w' in mode or 'a' in mode:
    makedirs(os.path.dirname(str(path)) or '.')
  return epath.Path(path).open(mode)


def read_text(path) -> str:
  return epath.Path(path).read_text()


def write_text(path, text: str) -> None:
  """The whole file, replaced atomically (see the module doc)."""
  makedirs(os.path.dirname(str(path)) or '.')
  if not is_local(path):
    epath.Path(path).write_text(text)
    return
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def append_line(path, line: str) -> None:
  """A line at the end of a text file (a bucket's object is rewritten: objects cannot grow)."""
  if is_local(path):
    with open(path, 'a') as f:
      f.write(line + '\n')
  else:
    write_text(path, (read_text(path) if exists(path) else '') + line + '\n')


def remove(path) -> None:
  epath.Path(path).unlink()


def walk_files(root) -> list:
  """Every file under `root`, as paths relative to it."""
  # os.path.relpath would fold a URL's '//', and a bucket's walk names folders without 'gs://'
  base = str(root).split('://', 1)[-1].rstrip('/') + '/'
  return [str(folder / n).split(base, 1)[1] for folder, _, names in epath.Path(root).walk() for n in names]


def move_tree(src, dst) -> None:
  """A folder moved: renamed on a local disk; copied then deleted in a bucket."""
  if is_local(src):
    os.rename(src, dst)
    return
  for rel in walk_files(src):
    epath.Path(src, rel).copy(epath.Path(dst, rel))
  epath.Path(src).rmtree()


def copy_files(src, dst, rels) -> None:
  """The files `rels` (relative paths) under `src` copied to `dst`, in that order; either may be a
  bucket (streamed: epath's copy cannot cross a disk and a bucket)."""
  for rel in rels:
    with open_file(join(src, rel), 'rb') as f, open_file(join(dst, rel), 'wb') as g:
      shutil.copyfileobj(f, g, 1 << 24)


def check_reachable(path, flag: str = '--workdir') -> None:
  """For a gs:// path, one connection to the storage endpoint (STORAGE_EMULATOR_HOST when set):
  a host that cannot be reached fails here in seconds, where gcsfs would retry for half a minute."""
  if is_local(path) or not str(path).startswith('gs://'):
    return
  url = urllib.parse.urlsplit(os.environ.get('STORAGE_EMULATOR_HOST') or 'https://storage.googleapis.com')
  if not url.hostname:  # e.g. 'localhost:9023' without a scheme
    url = urllib.parse.urlsplit('http://' + os.environ['STORAGE_EMULATOR_HOST'])
  port = url.port or (443 if url.scheme == 'https' else 80)
  try:
    socket.create_connection((url.hostname, port), timeout=CONNECT_SECONDS).close()
  except OSError as e:
    raise UserError(f'{flag}={path}: Cloud Storage at {url.hostname}:{port} cannot be reached '
                    f'({e.strerror or type(e).__name__}); check the network (and STORAGE_EMULATOR_HOST '
                    'if you use an emulator).') from None


def check_writable(workdir: str, process_index: int = 0) -> None:
  """Fails in one line, within REACH_SECONDS, when `workdir` cannot be created and written (a
  bucket that does not exist or does not answer, missing credentials, a read-only directory)."""
  probe = join(workdir, f'.write_test_{process_index}')
  outcome = {}

  def attempt():
    try:
      makedirs(workdir)
      epath.Path(probe).write_text('ok')
      remove(probe)
      outcome['ok'] = True
    except Exception as e:  # noqa: BLE001  (OSError locally; gcsfs and google-auth raise their own)
      outcome['error'] = e

  worker = threading.Thread(target=attempt, daemon=True)  # a stuck client cannot hold the exit
  worker.start()
  worker.join(REACH_SECONDS)
  if outcome.get('ok'):
    return
  if 'error' not in outcome:
    raise UserError(f'--workdir={workdir} did not answer within {REACH_SECONDS} s; check the bucket '
                    'name, the network and your credentials (gcloud auth application-default login).')
  e = outcome['error']
  why = e.strerror if isinstance(e, OSError) and e.strerror else ' '.join(str(e).split())[:200]
  raise UserError(f'--workdir={workdir} is not a writable directory ({type(e).__name__}: {why}); '
                  'choose a directory or bucket you can write to.')
