"""A Cloud Storage emulator (gcp-storage-emulator, in memory) for gs:// workdirs, offline.

In tests: the `gcs` fixture starts one with a fresh, empty bucket per test, points this process
and every launch.py it starts (they inherit os.environ) at it, and stops it afterwards.

By hand, to try a gs:// workdir locally:

  python -m tests.gcs_emulator --port 9023     # prints the `export ...` lines; Ctrl-C stops it

The environment it sets, one reason each (ENV below):
  STORAGE_EMULATOR_HOST                gcsfs (epath's gs:// files) sends its requests here (read per request)
  TENSORSTORE_GCS_HTTP_URL             tensorstore (orbax's arrays) sends its requests here (read per open)
  GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT    false: no 60 s gRPC bucket-type probe on every open()
  NO_GCE_CHECK                         google-auth never probes the GCE metadata server (seconds offline)
  GOOGLE_AUTH_TOKEN_FOR_TESTING        tensorstore uses this fixed token instead of looking for credentials
  TENSORSTORE_GCS_REQUEST_CONCURRENCY  4: the emulator serves one request at a time; more only queue and time out
  FSSPEC_GCS                           gcsfs defaults for epath's instance: anonymous, no stale listings cache

Importing this module mends two gaps of the emulator (2026.7.19): it lacks objects.moveTo, which
gcsfs's rename uses (and then retries for ~33 s): added, as a copy then a delete (as on GCS,
renaming a folder is one move per object, not atomic); and its media downloads lack the
x-goog-generation header, which tensorstore needs to read an existing OCDBT manifest: added.
`start` also widens its listen backlog: http.server's 5 cost ~1 s per checkpoint saved (see there).
"""
import argparse
import json
import logging
import shlex
import signal
import sys
import time
from http import HTTPStatus

import pytest
from gcp_storage_emulator import server as gse_server
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects as gse_objects

BUCKET = 'bkt'
FSSPEC_GCS = {'token': 'anon', 'use_listings_cache': False}


def env(url: str) -> dict:
  """The environment that points gcsfs, tensorstore and google-auth at the emulator at `url`."""
  return {
      'STORAGE_EMULATOR_HOST': url,
      'TENSORSTORE_GCS_HTTP_URL': url,
      'GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT': 'false',
      'NO_GCE_CHECK': 'true',
      'GOOGLE_AUTH_TOKEN_FOR_TESTING': 'emulator',
      'TENSORSTORE_GCS_REQUEST_CONCURRENCY': '4',
      'FSSPEC_GCS': json.dumps(FSSPEC_GCS),
  }


def _move_to(req, res, storage):
  """objects.moveTo: copy, then delete the source."""
  p = req.params
  try:
    obj = gse_objects._copy(req.base_url, storage, p['bucket_name'], p['object_id'],
                            p['bucket_name'], p['dest_object_id'])
  except NotFound:
    res.status = HTTPStatus.NOT_FOUND
    return
  gse_objects._delete(storage, p['bucket_name'], p['object_id'])
  res.json(obj)


_MOVE_ROUTE = (r'^/storage/v1/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)'
               r'/moveTo/o/(?P<dest_object_id>.*[^/]+)$', {'POST': _move_to})
if _MOVE_ROUTE not in gse_server.HANDLERS:
  gse_server.HANDLERS = (_MOVE_ROUTE,) + tuple(gse_server.HANDLERS)


_download = gse_objects.download


def _download_with_generation(req, res, storage, *args, **kwargs):
  """A media download with the object's generation in x-goog-generation, as GCS sends it:
  tensorstore reads it from there (without it every read of an existing OCDBT manifest, as a
  re-save of a step or a restore does, fails with 'Malformed StorageGeneration')."""
  _download(req, res, storage, *args, **kwargs)
  if res.status in (HTTPStatus.OK, HTTPStatus.PARTIAL_CONTENT):
    obj = storage.get_file_obj(req.params['bucket_name'], req.params['object_id'])
    res['x-goog-generation'] = str(obj['generation'])
    res['x-goog-metageneration'] = str(obj['metageneration'])


if getattr(_download, '__name__', '') == 'download':  # not yet patched (a re-import)
  gse_objects.download = _download_with_generation  # objects.get(alt=media) calls it by name
  gse_server.HANDLERS = tuple((regex, {verb: _download_with_generation if fn is _download else fn
                                       for verb, fn in handlers.items()})
                              for regex, handlers in gse_server.HANDLERS)


def start(host: str = '127.0.0.1', port: int = 0, bucket: str = BUCKET):
  """(server, url): an in-memory emulator holding one empty bucket, serving on a daemon thread."""
  logging.getLogger('gcp_storage_emulator').setLevel(logging.CRITICAL)  # 'Resource not found' per miss
  srv = gse_server.create_server(host, port, in_memory=True, default_bucket=bucket)
  srv._api.daemon = True  # a stop() never reached must not hang the interpreter's exit
  srv.start()  # returns once the socket is bound
  httpd = srv._api._httpd
  httpd.handle_error = lambda request, client_address: None  # BrokenPipe tracebacks when a client leaves
  # http.server listens with a backlog of 5 and serves one connection at a time (HTTP/1.0, one per
  # request); gcsfs and tensorstore open more at once, and the kernel drops the surplus connection
  # attempts, which the client repeats after TCP's 1 s timeout: ~1 s lost per checkpoint saved.
  httpd.socket.listen(128)
  return srv, f'http://{host}:{httpd.server_address[1]}'


class Bucket:
  """One emulated bucket: gs:// paths into it, and its objects, for assertions and damage."""

  def __init__(self, url: str, bucket: str):
    self.url, self.bucket = url, bucket

  def path(self, rel: str = '') -> str:
    return f'gs://{self.bucket}/{rel}'.rstrip('/') if rel else f'gs://{self.bucket}'

  @property
  def fs(self):
    import gcsfs  # its own instance: the library's (epath's) stays untouched
    return gcsfs.GCSFileSystem(**FSSPEC_GCS)

  def _key(self, rel: str) -> str:
    return f'{self.bucket}/{rel}'.rstrip('/')

  def list(self, rel: str = '') -> list:
    """Every object under `rel`, as paths relative to it, sorted."""
    prefix = self._key(rel) + '/'
    return sorted(k[len(prefix):] for k in self.fs.find(self._key(rel)) if k.startswith(prefix))

  def names(self, rel: str = '') -> list:
    """The entries directly under `rel` (objects and 'folders'), as os.listdir would give them."""
    return sorted({name.split('/')[0] for name in self.list(rel)})

  def exists(self, rel: str) -> bool:
    return self.fs.exists(self._key(rel))

  def read(self, rel: str) -> bytes:
    return self.fs.cat_file(self._key(rel))

  def write(self, rel: str, data: bytes) -> None:
    self.fs.pipe_file(self._key(rel), data)

  def delete(self, rel: str) -> None:
    """The object `rel`, or every object under it."""
    self.fs.rm(self._key(rel), recursive=True)


def _point_this_process_at(monkeypatch, url: str) -> None:
  for key, value in env(url).items():
    monkeypatch.setenv(key, value)
  # fsspec read FSSPEC_* when it was imported (maybe before this test): set its config too.
  import fsspec
  monkeypatch.setitem(fsspec.config.conf, 'gcs', dict(fsspec.config.conf.get('gcs', {}), **FSSPEC_GCS))
  try:  # epath caches its gcsfs instance, built with whatever config held then
    from etils.epath import backend
    backend.fsspec_backend._get_filesystem.cache_clear()
  except (ImportError, AttributeError):
    pass


@pytest.fixture
def gcs(monkeypatch):
  """A fresh emulator with an empty bucket 'bkt'; this process and its children pointed at it."""
  srv, url = start()
  _point_this_process_at(monkeypatch, url)
  try:
    yield Bucket(url, BUCKET)
  finally:
    srv.stop()
    try:
      from etils.epath import backend
      backend.fsspec_backend._get_filesystem.cache_clear()
    except (ImportError, AttributeError):
      pass


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m tests.gcs_emulator', description=__doc__.split('\n')[0])
  parser.add_argument('--host', default='127.0.0.1')
  parser.add_argument('--port', type=int, default=9023)
  parser.add_argument('--bucket', default=BUCKET)
  args = parser.parse_args(argv)
  srv, url = start(args.host, args.port, args.bucket)
  print(f'# Cloud Storage emulator at {url}, bucket {args.bucket!r}, in memory (gone when stopped).')
  print('# In the shell that runs launch.py:')
  for key, value in env(url).items():
    print(f'export {key}={shlex.quote(value)}')
  print(f'# then: python launch.py --config=configs/ring2d.py --workdir=gs://{args.bucket}/run')
  print('# Ctrl-C stops the emulator.', flush=True)

  def stop(signum, frame):
    raise KeyboardInterrupt

  for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's `&` starts it ignored
    signal.signal(signum, stop)
  try:
    while srv._api.is_alive():  # (the thread's join() shuts the server down: poll instead)
      time.sleep(0.5)
  except KeyboardInterrupt:
    pass
  finally:
    srv.stop()


if __name__ == '__main__':
  sys.exit(main())
