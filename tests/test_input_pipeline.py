"""The data path: real MNIST/Fashion-MNIST archives through tfds (no TF), other tfds datasets on
tfds mock data, a folder of images, decoded-once records, grain batching and its resumable state,
and clear errors for bad input."""
import os
import shutil

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from configs import default, mnist
from gan_jax import data
from gan_jax.data import folder, index_shuffle, pipeline, records, synthetic, tfds_source
from gan_jax.errors import UserError


def _mnist_data(mnist_dir, tfds_dir):
  c = mnist.get_config()
  c.data.manual_dir, c.data.data_dir = mnist_dir, tfds_dir
  return c.data


def test_mnist_from_the_official_archives(mnist_dir, tfds_dir):
  d = _mnist_data(mnist_dir, tfds_dir)
  train = data.open_split(d, 'train[:50000]')
  test = data.open_split(d, 'test').read_all()
  assert len(train) == 50000 and train.shape == (28, 28, 1) and test.shape == (10000, 28, 28, 1)
  images = train.read_all()
  assert images.dtype == np.uint8 and images.min() == 0 and images.max() == 255
  # MNIST's well-known pixel mean (0.1307 on all 60k) pins down that these are the real digits
  assert abs(images.mean() / 255 - 0.1307) < 0.002
  np.testing.assert_allclose(train.mean(), images.mean(axis=0) / 255, atol=1e-6)
  assert np.bincount(train.labels, minlength=10).min() > 4000  # labels kept beside
  # decoded once: opening again reads the same record file, not the tfds source
  meta = os.path.join(train.directory, 'meta.json')
  before = os.stat(meta).st_mtime_ns
  np.testing.assert_array_equal(data.open_split(d, 'train[:50000]').read([7, 3]), images[[7, 3]])
  assert os.stat(meta).st_mtime_ns == before
  it = pipeline.train_iterator(train, 100, k=2, num_devices=4, device_offset=0, local_devices=4, seed=0)
  batches = [next(it) for _ in range(250)]  # 250 steps × k=2 minibatches = one epoch
  assert batches[0].shape == (4, 2, 25, 28, 28, 1) and batches[0].dtype == np.uint8
  # the epoch holds each image of the split once: equal as multisets of rows (sorted raw bytes;
  # np.unique(axis=0) over 50,000 rows took ~7 s a side)
  rows = lambda a: sorted(map(bytes, a.reshape(-1, 784)))
  assert rows(np.concatenate(batches)) == rows(images)
  assert it.get_state() == {'next_index': 250}


def test_a_slice_of_a_decoded_split_is_read_from_its_records(mnist_dir, tfds_dir, tmp_path):
  """A slice decoded alone and the same slice read from its whole split's records give the same
  examples in the same order (tfds' slicing: counts, percents, from the end); a slice of a split
  not decoded yet, or across two splits, is decoded alone."""
  d = _mnist_data(mnist_dir, tfds_dir)
  d.cache_dir = str(tmp_path / 'cache')
  slices = ['test[2000:2200]', 'test[-5%:]', 'test[:1%]', 'test[9990:]']
  alone = {s: data.open_split(d, s) for s in slices}
  whole = data.open_split(d, 'test')
  for s in slices:
    view = data.open_split(d, s)
    assert view.directory == whole.directory != alone[s].directory, s
    assert len(view) == len(alone[s]) == {'test[-5%:]': 500, 'test[:1%]': 100, 'test[9990:]': 10}.get(s, 200)
    np.testing.assert_array_equal(view.read_all(), alone[s].read_all(), s)
    np.testing.assert_array_equal(view.labels, alone[s].labels, s)
    rows = [len(view) - 1, 0, 3]
    np.testing.assert_array_equal(view.read(rows), alone[s].read(rows), s)
    np.testing.assert_array_equal(view.mean(), alone[s].mean(), s)
    with pytest.raises(IndexError):
      view.read([len(view)])
  both = data.open_split(d, 'test[:10]+train[:10]')
  assert both.directory != whole.directory and len(both) == 20


def test_two_runs_preparing_one_dataset_at_once_both_start(fashion_mnist_dir, tmp_path):
  """Two runs started together on unprepared data (the README's conv pair) both prepare it; tfds'
  final rename failed for the second ("already exists") until preparing took a lock. What they
  prepared from the official Fashion-MNIST archives is its test split: 10,000, 1,000 per class."""
  import subprocess
  import sys
  code = ('import sys; from gan_jax.data import tfds_source; '
          'b = tfds_source.prepare("fashion_mnist", sys.argv[1], sys.argv[2]); print(b.is_prepared())')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  runs = [subprocess.Popen([sys.executable, '-c', code, str(tmp_path / 'tfds'), fashion_mnist_dir], cwd=root,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
  outs = [r.communicate(timeout=300) for r in runs]
  for r, (out, err) in zip(runs, outs):
    assert r.returncode == 0 and out.strip().splitlines()[-1] == 'True', err[-800:]
    assert '\x1b[' not in err  # tfds' progress bars redraw with cursor codes: only on a terminal
  assert sum('Waiting for another process preparing' in err for _, err in outs) <= 1
  c = mnist.get_config()
  c.data.name, c.data.manual_dir, c.data.data_dir = 'fashion_mnist', fashion_mnist_dir, str(tmp_path / 'tfds')
  test = data.open_split(c.data, 'test')
  assert test.read_all().shape == (10000, 28, 28, 1)
  assert np.array_equal(np.bincount(test.labels), [1000] * 10)


def test_cifar10_on_tfds_mock_data(tmp_path, cifar10_mock):
  c = default.get_config()
  c.data.name, c.data.cache_dir = 'cifar10', str(tmp_path / 'cache')
  with cifar10_mock(64):
    images = data.open_split(c.data, 'train').read_all()
  assert images.shape == (64, 32, 32, 3) and images.dtype == np.uint8
  scaled = data.scale(images, 'symmetric')
  assert scaled.min() >= -1 and scaled.max() <= 1


def test_any_tfds_image_dataset_cropped_and_resized(tmp_path, cifar10_mock):
  """celeb_a is none of the project's builders: tfds' registry and data_source serve it."""
  c = default.get_config()
  c.data.name, c.data.cache_dir, c.data.image_size = 'celeb_a', str(tmp_path / 'cache'), 32
  with cifar10_mock(12):
    split = data.open_split(c.data, 'train')
    raw = tfds.data_source('celeb_a', split='train')[5]['image']   # the same mock example
    c.data.image_key = 'landmarks'
    with pytest.raises(UserError, match="data.image_key='landmarks' is not an image feature of celeb_a; it has"):
      data.open_split(c.data, 'train')
  assert len(split) == 12 and split.shape == (32, 32, 3) and split.labels is None
  assert raw.shape == (218, 178, 3)
  # center crop (20 rows off top and bottom) then a Lanczos resize, computed here by hand
  expected = PIL.Image.fromarray(raw[20:198]).resize((32, 32), PIL.Image.LANCZOS)
  np.testing.assert_array_equal(split.read([5])[0], np.asarray(expected))


def test_unknown_dataset_is_a_one_line_error():
  with pytest.raises(UserError, match="data.name='svhnx' is not a tfds dataset"):
    tfds_source.prepare('svhnx', None, None)


def test_unprepared_and_offline_fails_fast(tmp_path, monkeypatch):
  monkeypatch.setattr(tfds_source, 'unreachable', lambda hosts: f'{hosts[0]}: Name or service not known')
  with pytest.raises(UserError, match=r'cifar10 is not prepared in .* cannot be downloaded \(www.cs.toronto.edu: '
                     r'.*cifar-10-binary.tar.gz.*--config.data.manual_dir=DIR'):
    tfds_source.prepare('cifar10', str(tmp_path), None)


def _index_source(n):
  return synthetic.ArraySource(np.arange(n, dtype=np.float32)[:, None])


def test_epochs_are_permutations_and_resume_is_exact():
  make = lambda: pipeline.train_iterator(_index_source(103), 10, k=3, num_devices=2, device_offset=0,
                                         local_devices=2, seed=5)
  it = make()
  first_epoch = [next(it).reshape(-1) for _ in range(3)]
  step4 = next(it)
  first_epoch = np.concatenate(first_epoch + [step4[:, :1].reshape(-1)])
  assert len(set(first_epoch.tolist())) == 100  # 10 batches of 10 from 103: no repeats
  # minibatches 10..19: the rest of step 4, steps 5-6, two thirds of step 7
  second_epoch = np.concatenate([step4[:, 1:].reshape(-1)] + [next(it).reshape(-1) for _ in range(2)]
                                + [next(it)[:, :2].reshape(-1)])
  assert len(set(second_epoch.tolist())) == 100
  assert not np.array_equal(np.sort(first_epoch), first_epoch)  # shuffled...
  assert not np.array_equal(first_epoch[:30], second_epoch[:30])  # ...differently each epoch
  saved = it.get_state()
  expected = [next(it) for _ in range(5)]
  resumed = make()
  resumed.set_state(saved)
  for e in expected:
    np.testing.assert_array_equal(next(resumed), e)


# sizes far below grain's smallest block (2^16 values) and on each side of a block-size boundary,
# powers of two (grain's block then drops the top bit of max_index: positions collide, and the
# batched form must collide alike), MNIST's, ImageNet's, and sizes past 2^32
SHUFFLE_SIZES = (1, 2, 3, 5, 103, 257, 12000, 50000, 65535, 65536, 65537, 65538, 131073, 1281167,
                 2**20 + 1, 10**7, 2**31 + 5, 2**40 + 3)


@pytest.mark.parametrize('n', SHUFFLE_SIZES)
def test_batched_index_shuffle_equals_grains_position_by_position(n):
  """index_shuffle (positions walked as grain walks them; used above pipeline.StepIndices'
  WHOLE_EPOCH, where the walks are short) and permutation (an epoch whole) against grain's C++
  index_shuffle, called a position at a time."""
  from grain._src.python.experimental.index_shuffle.python import index_shuffle_module as grain_shuffle
  rng = np.random.default_rng(n)
  positions = np.unique(np.concatenate([np.arange(min(n, 200)), rng.integers(0, n, 300), [n - 1]]))
  for seed in (0, 1, 2**31, 2**32 - 1, int(rng.integers(2**32))):
    grains = [grain_shuffle.index_shuffle(int(i), max_index=n - 1, seed=seed, rounds=4) for i in positions]
    if n > 2**15:
      np.testing.assert_array_equal(index_shuffle.index_shuffle(positions, n - 1, seed), grains, f'n={n} seed={seed}')
    if n <= 2 * pipeline.StepIndices.WHOLE_EPOCH:
      np.testing.assert_array_equal(index_shuffle.permutation(n, seed)[positions], grains, f'n={n} seed={seed}')


@pytest.mark.parametrize('n, batch, k, seed', [(103, 10, 3, 5), (1000, 64, 2, 1), (50000, 100, 1, 0),
                                                (60000, 256, 4, 2**32 + 7), (7, 7, 2, 3)])
def test_step_indices_are_grains_shuffle_batch_repeat_batch(n, batch, k, seed, monkeypatch):
  """The pipeline's indices are those grain's own transformations give, over several epochs (an
  epoch boundary inside a step with k > 1 included), whether an epoch is drawn whole or a step at
  a time (as above WHOLE_EPOCH); an iterator state saved by grain's composed pipeline resumes
  into this one."""
  import grain
  composed = (grain.MapDataset.range(n).shuffle(seed=seed % 2**32).batch(batch, drop_remainder=True)
              .repeat().batch(k, drop_remainder=True))
  expected = {s: np.asarray(composed[s]) for s in [*range(2 * n // (batch * k) + 2), 12345]}
  for whole_epoch in (pipeline.StepIndices.WHOLE_EPOCH, 0) if n > 2**15 else (pipeline.StepIndices.WHOLE_EPOCH,):
    monkeypatch.setattr(pipeline.StepIndices, 'WHOLE_EPOCH', whole_epoch)
    ours = pipeline.StepIndices(n, batch, k, seed)
    for s, indices in expected.items():
      got = ours(s)
      assert got.dtype == indices.dtype, s
      np.testing.assert_array_equal(got, indices, f'step {s}')
  # read where it is called: grain's default (16 threads, 500 steps ahead) would go on shuffling
  # in the background after the test, ~60 s of a core taken from the tests after it
  old = iter(composed.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)))
  for _ in range(3):
    next(old)
  resumed = pipeline.train_iterator(_index_source(n), batch, k, 1, 0, 1, seed=seed)
  resumed.set_state(old.get_state())
  np.testing.assert_array_equal(next(resumed)[0, ..., 0], next(old))


def test_hosts_and_devices_see_one_global_batch():
  source = _index_source(1000)
  make = lambda offset, local: pipeline.train_iterator(source, 64, 2, 4, offset, local, seed=1)
  one_host = next(make(0, 4))
  two_hosts = np.concatenate([next(make(0, 2)), next(make(2, 2))])
  np.testing.assert_array_equal(one_host, two_hosts)
  single = next(pipeline.train_iterator(source, 64, 2, 1, 0, 1, seed=1))  # [1, k, 64]
  np.testing.assert_array_equal(one_host.swapaxes(0, 1).reshape(2, 64, 1), single[0])


def test_batch_not_divisible_by_devices_is_a_clear_error():
  with pytest.raises(UserError, match='not divisible by the 3 devices'):
    pipeline.train_iterator(_index_source(100), 32, 1, 3, 0, 3, seed=0)


def test_manual_dir_missing_files(tmp_path):
  with pytest.raises(UserError, match='train-images-idx3-ubyte.gz is missing'):
    tfds_source.prepare('mnist', str(tmp_path / 'tfds'), str(tmp_path))
  assert not os.path.exists(tmp_path / 'tfds' / 'mnist')


def test_manual_dir_wrong_checksum(mnist_dir, tmp_path):
  bad = tmp_path / 'archives'
  shutil.copytree(mnist_dir, bad)
  labels = bad / 't10k-labels-idx1-ubyte.gz'
  os.chmod(labels, 0o644)
  raw = bytearray(labels.read_bytes())
  raw[100] ^= 0xFF
  labels.write_bytes(bytes(raw))
  with pytest.raises(UserError, match='t10k-labels-idx1-ubyte.gz does not match the official file'):
    tfds_source.prepare('mnist', str(tmp_path / 'tfds'), str(bad))


def make_image_folder(root, n=24, corrupt=2, seed=0):
  """n images of varied sizes and formats in nested folders, `corrupt` undecodable files, and a
  file that is not an image. Returns {relative path: RGB array} of the good ones."""
  rng = np.random.default_rng(seed)
  os.makedirs(root, exist_ok=True)
  made = {}
  for i in range(n):
    h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ext = ('png', 'webp', 'png')[i % 3]  # lossless, so the decoded pixels are known here
    rel = os.path.join(f'class{i % 3}', 'deeper' if i % 2 else '', f'img{i:03d}.{ext}')
    os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
    PIL.Image.fromarray(rgb).save(os.path.join(root, rel), lossless=True) if ext == 'webp' else \
        PIL.Image.fromarray(rgb).save(os.path.join(root, rel))
    made[os.path.normpath(rel)] = rgb
  for i in range(corrupt):
    with open(os.path.join(root, f'broken{i}.jpg'), 'wb') as f:
      f.write(b'\xff\xd8 not really a jpeg' * (i + 1))
  with open(os.path.join(root, 'notes.txt'), 'w') as f:
    f.write('not an image')
  return made


def _folder_data(path, cache, size=16):
  c = default.get_config()
  c.data.name, c.data.path, c.data.cache_dir, c.data.image_size = 'folder', str(path), str(cache), size
  return c.data


def test_folder_of_images(tmp_path):
  made = make_image_folder(tmp_path / 'photos')
  d = _folder_data(tmp_path / 'photos', tmp_path / 'cache')
  source = data.open_split(d, 'train')
  assert len(source) == 24 and source.shape == (16, 16, 3) and source.meta['skipped'] == 2
  # the records are in sorted path order, each the center crop resized with Lanczos (by hand here)
  for i, rel in enumerate(sorted(made)):
    rgb = made[rel]
    side = min(rgb.shape[:2])
    top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
    expected = PIL.Image.fromarray(rgb[top:top + side, left:left + side]).resize((16, 16), PIL.Image.LANCZOS)
    np.testing.assert_array_equal(source.read([i])[0], np.asarray(expected), err_msg=rel)
  # tfds' split syntax takes parts of the one split
  assert len(data.open_split(d, 'train[:75%]')) == 18 and len(data.open_split(d, 'train[-4:]')) == 4
  np.testing.assert_array_equal(data.open_split(d, 'train[-4:]').read_all(), source.read_all()[-4:])
  # indexed once: unchanged files reuse the records; a new file makes new ones
  meta = os.path.join(source.directory, 'meta.json')
  before = os.stat(meta).st_mtime_ns
  assert data.open_split(d, 'train').directory == source.directory and os.stat(meta).st_mtime_ns == before
  PIL.Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / 'photos' / 'new.png')
  assert len(data.open_split(d, 'train')) == 25


def test_folder_errors(tmp_path):
  (tmp_path / 'empty' / 'sub').mkdir(parents=True)
  (tmp_path / 'empty' / 'sub' / 'readme.txt').write_text('x')
  with pytest.raises(UserError, match="data.path=.*empty' holds no jpg/jpeg/png/webp images"):
    data.open_split(_folder_data(tmp_path / 'empty', tmp_path / 'cache'), 'train')
  with pytest.raises(UserError, match="data.path=.*nowhere' is not a directory"):
    data.open_split(_folder_data(tmp_path / 'nowhere', tmp_path / 'cache'), 'train')
  make_image_folder(tmp_path / 'mixed', n=3, corrupt=0)
  with pytest.raises(UserError, match='images of different sizes .* --config.data.image_size=N'):
    data.open_split(_folder_data(tmp_path / 'mixed', tmp_path / 'cache', size=None), 'train')
  with pytest.raises(UserError, match="split 'valid' of an image folder"):
    data.open_split(_folder_data(tmp_path / 'mixed', tmp_path / 'cache'), 'valid')
  only_broken = tmp_path / 'broken'
  make_image_folder(only_broken, n=0, corrupt=2)
  with pytest.raises(UserError, match=r'no example could be read \(2 skipped\)'):
    data.open_split(_folder_data(only_broken, tmp_path / 'cache'), 'train')


def test_records_written_by_a_killed_run_are_not_used(tmp_path):
  """A record file is complete or absent: a decode cut short leaves only a temporary directory."""
  def dying():
    yield np.zeros((2, 2, 1), np.uint8), 0
    raise KeyboardInterrupt
  target = str(tmp_path / 'rec')
  with pytest.raises(KeyboardInterrupt):
    records.build(target, dying, 2, 'test', {'v': 1})
  assert not os.path.exists(target)
  out = records.build(target, lambda: iter([(np.full((2, 2, 1), 7, np.uint8), 3)] * 2), 2, 'test', {'v': 1})
  assert len(out) == 2 and out.read([1])[0, 0, 0, 0] == 7 and list(out.labels) == [3, 3]
