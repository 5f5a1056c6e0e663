"""Tests for cnnlab.data: IDX parsing and the MNIST loader, embedded digits, the photograph, synthetic images."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import data

SETTINGS = settings(max_examples=30, deadline=None)


def _shared_data() -> Path | None:
    """The team's shared copy of the original MNIST files, if this checkout has one."""
    candidates = []
    if os.environ.get("CNNLAB_SHARED_DATA"):
        candidates.append(Path(os.environ["CNNLAB_SHARED_DATA"]))
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if (c / "mnist" / "train-labels-idx1-ubyte.gz").is_file():
            return c
    return None


SHARED = _shared_data()
needs_shared = pytest.mark.skipif(SHARED is None, reason="no shared MNIST copy (set CNNLAB_SHARED_DATA)")


# ----------------------------------------------------------------------------------------------
# IDX files written by the tests
# ----------------------------------------------------------------------------------------------
def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.asarray(arr).astype(dtype).tobytes()


@pytest.fixture()
def small_set():
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    labels = np.array([5, 0, 4], dtype=np.uint8)
    return images, labels


def test_read_idx_raw_and_gzip(tmp_path, small_set):
    images, labels = small_set
    raw = tmp_path / "imgs-idx3-ubyte"
    raw.write_bytes(_idx_bytes(images))
    gz = tmp_path / "labels.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(labels)))
    out = data.read_idx(raw)
    assert out.dtype == np.uint8 and out.shape == (3, 28, 28)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(data.read_idx(str(gz)), labels)
    # compression is detected from the content, not the name
    disguised = tmp_path / "labels.raw"
    disguised.write_bytes(gzip.compress(_idx_bytes(labels)))
    np.testing.assert_array_equal(data.read_idx(disguised), labels)


@pytest.mark.parametrize("code, dtype", [(0x0B, np.int16), (0x0D, np.float32)])
def test_read_idx_other_types(tmp_path, code, dtype):
    arr = np.arange(-6, 6).reshape(3, 4).astype(dtype)
    p = tmp_path / "x.idx"
    p.write_bytes(_idx_bytes(arr, code))
    out = data.read_idx(p)
    assert out.dtype == dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_truncated_raw_names_file_and_sizes(tmp_path, small_set):
    images, _ = small_set
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(_idx_bytes(images)[:-100])
    expected = 16 + 3 * 28 * 28
    with pytest.raises(ValueError) as err:
        data.read_idx(p)
    msg = str(err.value)
    assert str(p) in msg and "truncated" in msg
    assert f"expected {expected} bytes" in msg and f"found {expected - 100} bytes" in msg


def test_read_idx_truncated_gzip(tmp_path, small_set):
    images, _ = small_set
    blob = gzip.compress(_idx_bytes(images))
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="gzip stream is damaged or truncated") as err:
        data.read_idx(p)
    assert str(p) in str(err.value)


def test_read_idx_gzip_of_truncated_content(tmp_path, small_set):
    images, _ = small_set
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(_idx_bytes(images)[:-1]))
    with pytest.raises(ValueError, match=r"expected 2368 bytes \(uncompressed\), found 2367 bytes"):
        data.read_idx(p)


def test_read_idx_bad_files(tmp_path):
    p = tmp_path / "junk"
    p.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(p)
    p.write_bytes(b"\x00")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(p)
    p.write_bytes(_idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="longer than its header says"):
        data.read_idx(p)
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        data.read_idx(tmp_path / "missing")


# ----------------------------------------------------------------------------------------------
# load_mnist on small files (checksums and counts patched for the test)
# ----------------------------------------------------------------------------------------------
def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


@pytest.fixture()
def fake_mnist(tmp_path, small_set, monkeypatch):
    """Write a 3-image 'MNIST' test split (gzip) under tmp_path/mnist and register its checksums."""
    images, labels = small_set
    raw_i, raw_l = _idx_bytes(images), _idx_bytes(labels)
    gz_i, gz_l = gzip.compress(raw_i), gzip.compress(raw_l)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gz_i)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gz_l)
    entry = dict(data.MNIST_FILES["mnist"])
    entry["test"] = {
        "images": ("t10k-images-idx3-ubyte", _md5(gz_i), _md5(raw_i)),
        "labels": ("t10k-labels-idx1-ubyte", _md5(gz_l), _md5(raw_l)),
        "count": 3,
    }
    entry["mirrors"] = ("https://mirror.invalid/mnist/",)
    monkeypatch.setitem(data.MNIST_FILES, "mnist", entry)
    return tmp_path, images, labels, dict(gz_i=gz_i, gz_l=gz_l, raw_i=raw_i, raw_l=raw_l)


def test_load_mnist_small_gzip(fake_mnist):
    root, images, labels, _ = fake_mnist
    x, y = data.load_mnist("mnist", "test", root=root)
    assert x.dtype == np.uint8 and x.shape == (3, 28, 28)
    assert y.dtype == np.int64 and y.tolist() == [5, 0, 4]
    np.testing.assert_array_equal(x, images)
    x[:] = 0  # callers get copies
    np.testing.assert_array_equal(data.load_mnist("mnist", "test", root=root)[0], images)


def test_load_mnist_small_raw_and_env(fake_mnist, monkeypatch):
    root, images, labels, blobs = fake_mnist
    folder = root / "mnist"
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f"{name}.gz").unlink()
    (folder / "t10k-images-idx3-ubyte").write_bytes(blobs["raw_i"])
    (folder / "t10k-labels-idx1-ubyte").write_bytes(blobs["raw_l"])
    monkeypatch.setenv("CNNLAB_DATA", str(root))
    assert data.data_root() == root
    x, y = data.load_mnist(split="test")
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == labels.tolist()


def test_load_mnist_wrong_checksum(fake_mnist):
    root, *_ = fake_mnist
    p = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad = gzip.compress(_idx_bytes(np.array([1, 2, 3], np.uint8)))
    p.write_bytes(bad)
    expected = data.MNIST_FILES["mnist"]["test"]["labels"][1]
    with pytest.raises(ValueError) as err:
        data.load_mnist("mnist", "test", root=root)
    msg = str(err.value)
    assert str(p) in msg and "wrong checksum" in msg
    assert f"expected MD5 {expected}" in msg and f"got {_md5(bad)}" in msg
    # verify=False skips the checksum and reads the file
    assert data.load_mnist("mnist", "test", root=root, verify=False)[1].tolist() == [1, 2, 3]


def test_load_mnist_missing_files_say_where(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_mnist("fashion", "train", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz") in msg
    assert "CNNLAB_DATA" in msg and "download=True" in msg


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.data_root() == tmp_path / "cnnlab"
    assert data.data_root(tmp_path / "x") == tmp_path / "x"


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError) as err:
        data.load_mnist("mnist", "test", root=tmp_path, download=True)
    msg = str(err.value)
    assert "offline" in msg and "t10k-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg


def test_download_when_asked(fake_mnist, monkeypatch):
    root, images, labels, blobs = fake_mnist
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (root / "mnist" / name).unlink()
    served = {"t10k-images-idx3-ubyte.gz": blobs["gz_i"], "t10k-labels-idx1-ubyte.gz": blobs["gz_l"]}
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(served[url.rsplit("/", 1)[-1]])

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(FileNotFoundError):
        data.load_mnist("mnist", "test", root=root)  # no download unless asked
    assert calls == []
    x, y = data.load_mnist("mnist", "test", root=root, download=True)
    np.testing.assert_array_equal(x, images)
    assert len(calls) == 2 and (root / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_download_with_wrong_checksum_is_refused(fake_mnist, monkeypatch):
    root, *_ = fake_mnist
    (root / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"corrupt"))
    with pytest.raises(ConnectionError, match="wrong MD5"):
        data.load_mnist("mnist", "test", root=root, download=True)
    assert not (root / "mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_load_mnist_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        data.load_mnist("kmnist", root=tmp_path)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_mnist("mnist", "val", root=tmp_path)


# ----------------------------------------------------------------------------------------------
# the real files, when the shared copy is present
# ----------------------------------------------------------------------------------------------
@needs_shared
def test_real_mnist():
    x, y = data.load_mnist("mnist", "train", root=SHARED)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.shape == (60000,)
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert x.max() == 255 and x.min() == 0
    xt, yt = data.load_mnist("mnist", "test", root=SHARED)
    assert xt.shape == (10000, 28, 28)
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@needs_shared
def test_real_fashion_mnist():
    x, y = data.load_mnist("fashion", "test", root=SHARED)
    assert x.shape == (10000, 28, 28) and np.bincount(y).tolist() == [1000] * 10
    x, y = data.load_mnist("fashion", "train", root=SHARED)
    assert x.shape == (60000, 28, 28) and np.bincount(y).tolist() == [6000] * 10


# ----------------------------------------------------------------------------------------------
# embedded digits
# ----------------------------------------------------------------------------------------------
def test_digits_shapes_ranges_split():
    x_tr, y_tr, x_te, y_te = data.digits()
    assert x_tr.shape == (1437, 1, 32, 32) and x_te.shape == (360, 1, 32, 32)
    assert x_tr.dtype == np.float32 and x_te.dtype == np.float32
    assert y_tr.dtype == np.int64 and set(np.unique(y_te)) == set(range(10))
    for x in (x_tr, x_te):
        assert x.min() == 0.0 and x.max() <= 1.0 and x.max() > 0.99
        assert np.all(x[..., :2, :] == 0) and np.all(x[..., -2:, :] == 0)  # 2-pixel border like MNIST
        assert np.all(x[..., :, :2] == 0) and np.all(x[..., :, -2:] == 0)
    counts_all = np.bincount(np.concatenate([y_tr, y_te]))
    expected = counts_all * 360 / 1797
    assert np.all(np.abs(np.bincount(y_te) - expected) < 1)  # stratified


def test_digits_split_is_a_partition_of_sklearn_digits():
    from sklearn.datasets import load_digits

    x_tr, y_tr, x_te, y_te = data.digits(size=8)
    assert x_tr.shape == (1437, 1, 8, 8)
    ours = np.concatenate([x_tr, x_te])[:, 0] * 16
    np.testing.assert_allclose(ours, np.round(ours), atol=1e-5)
    key = lambda imgs, ys: sorted(zip((im.astype(np.int64).tobytes() for im in imgs), ys.tolist()))  # noqa: E731
    ref = load_digits()
    assert key(np.round(ours), np.concatenate([y_tr, y_te])) == key(ref.images, ref.target)


def test_digits_deterministic_copies_and_no_global_rng():
    data._digits_cached.cache_clear()
    state = np.random.get_state()[1].copy()
    a = data.digits()
    assert np.array_equal(np.random.get_state()[1], state)
    a[0][:] = 0
    b = data.digits()
    data._digits_cached.cache_clear()
    c = data.digits()
    for u, v in zip(b, c):
        np.testing.assert_array_equal(u, v)
    assert b[0].max() > 0
    # the same split at another size (the split depends only on the labels)
    d = data.digits(size=28)
    assert d[0].shape == (1437, 1, 28, 28)
    np.testing.assert_array_equal(d[1], b[1])


@pytest.mark.parametrize("size", [0, 10, 200, 32.0, True])
def test_digits_bad_size(size):
    with pytest.raises(ValueError, match="size must be"):
        data.digits(size)


# ----------------------------------------------------------------------------------------------
# resizing and the photograph
# ----------------------------------------------------------------------------------------------
def test_resize_block_average_and_identity():
    x = np.random.default_rng(0).random((2, 12, 18))
    np.testing.assert_allclose(data.resize(x, (6, 6)), x.reshape(2, 6, 2, 6, 3).mean(axis=(2, 4)))
    np.testing.assert_allclose(data.resize(x, (12, 18)), x)
    np.testing.assert_allclose(data.resize(np.full((5, 7), 0.3), (3, 11)), 0.3)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        data.resize(np.zeros(4), (2, 2))
    with pytest.raises(ValueError, match="pair of positive ints"):
        data.resize(np.zeros((4, 4)), (0, 2))


@SETTINGS
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 3), st.integers(0, 3))
def test_resize_up_matches_torch_bilinear(h, w, dh, dw):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(h * 10 + w).random((1, 1, h, w))
    size = (h + dh * h, w + dw * w + 1)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(data.resize(x, size), ref.numpy(), atol=1e-12)


def test_photo():
    g = data.photo()
    assert g.shape == (600, 512) and g.dtype == np.float64
    assert 0.0 <= g.min() < 0.05 and 0.95 < g.max() <= 1.0
    rgb = data.photo(gray=False)
    assert rgb.shape == (600, 512, 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(g, rgb @ [0.299, 0.587, 0.114])
    small = data.photo(size=64)
    assert small.shape == (64, 64) and 0 <= small.min() and small.max() <= 1
    # block averaging by 8 of the centre square
    np.testing.assert_allclose(small, g[44:556].reshape(64, 8, 64, 8).mean(axis=(1, 3)))
    assert data.photo(gray=False, size=(100, 128)).shape == (100, 128, 3)
    g[:] = 0
    assert data.photo().max() > 0.9  # copies
    for bad in (0, "big", (1, 2, 3)):
        with pytest.raises(ValueError, match="size must"):
            data.photo(size=bad)


# ----------------------------------------------------------------------------------------------
# synthetic images: the lecture's 6x6 examples
# ----------------------------------------------------------------------------------------------
def _corr(x, k):
    kh, kw = k.shape
    return np.array([[np.sum(x[i:i + kh, j:j + kw] * k) for j in range(x.shape[1] - kw + 1)]
                     for i in range(x.shape[0] - kh + 1)])


VERTICAL = np.array([[1, 0, -1]] * 3, dtype=float)


def test_edge_images_equal_the_lecture_examples():
    np.testing.assert_array_equal(data.edge_image(), np.array([[10, 10, 10, 0, 0, 0]] * 6, float))
    np.testing.assert_array_equal(data.edge_image(flip=True), np.array([[0, 0, 0, 10, 10, 10]] * 6, float))
    np.testing.assert_array_equal(data.edge_image(orientation="horizontal"), data.edge_image().T)
    np.testing.assert_array_equal(_corr(data.edge_image(), VERTICAL), np.array([[0, 30, 30, 0]] * 4, float))
    np.testing.assert_array_equal(_corr(data.edge_image(flip=True), VERTICAL), np.array([[0, -30, -30, 0]] * 4, float))


def test_checkerboard_equals_the_lecture_example():
    expected = np.zeros((6, 6))
    expected[:3, :3] = 10
    expected[3:, 3:] = 10
    np.testing.assert_array_equal(data.checkerboard(), expected)
    np.testing.assert_array_equal(data.checkerboard(6, 3), expected)
    rows = _corr(data.checkerboard(), VERTICAL.T)
    np.testing.assert_array_equal(rows, np.array([[0] * 4, [30, 10, -10, -30], [30, 10, -10, -30], [0] * 4], float))
    assert data.checkerboard(8, 1)[0, :4].tolist() == [10, 0, 10, 0]
    assert data.checkerboard(5, 2).shape == (5, 5)


@pytest.mark.parametrize("call, fragment", [
    (lambda: data.edge_image(size=5), "even integer"),
    (lambda: data.edge_image(orientation="diagonal"), "orientation must be"),
    (lambda: data.checkerboard(0), "n must be a positive integer"),
    (lambda: data.checkerboard(6, 1.5), "block must be a positive integer"),
    (lambda: data.bar(float("nan")), "angle must be a finite"),
    (lambda: data.bar(0, size=2), "size must be an integer >= 3"),
    (lambda: data.bar(0, width=0), "width must be positive"),
    (lambda: data.bar(0, length=-1), "length must be positive"),
    (lambda: data.bars(np.zeros((2, 2))), "1-D sequence"),
])
def test_synthetic_bad_input(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()


def test_bars_orientation():
    h = data.bar(0, size=33, width=3)
    assert h.min() == 0 and h.max() == 1
    assert np.all(h[16] == 1) and np.all(h[:14] == 0) and np.all(h[19:] == 0)  # horizontal through the centre
    np.testing.assert_allclose(data.bar(90, size=33), h.T, atol=1e-12)
    np.testing.assert_allclose(data.bar(180, size=33), h, atol=1e-12)
    # 45 degrees rises to the right on screen: bright top-right and bottom-left corners
    d = data.bar(45, size=33)
    assert d[0, -1] == 1 and d[-1, 0] == 1 and d[0, 0] == 0
    np.testing.assert_allclose(data.bar(135, size=33), d[:, ::-1], atol=1e-12)
    short = data.bar(0, size=33, length=11)
    assert short[16, 16] == 1 and short[16, 0] == 0
    stack = data.bars([0, 45, 90], size=16)
    assert stack.shape == (3, 16, 16)
    np.testing.assert_array_equal(stack[1], data.bars(45, size=16))
    assert data.bars([], size=8).shape == (0, 8, 8)


@SETTINGS
@given(st.floats(-360, 360, allow_nan=False), st.floats(0.5, 6))
def test_bars_range_and_period(angle, width):
    a = data.bar(angle, size=21, width=width)
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(a, data.bar(angle + 180, size=21, width=width), atol=1e-9)


def test_a_download_says_what_where_and_that_its_md5_is_right(fake_mnist, monkeypatch, capsys):
    root, images, labels, blobs = fake_mnist
    (root / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(blobs["gz_l"]))
    data.load_mnist("mnist", "test", root=root, download=True)
    out = capsys.readouterr().out
    assert "Downloading t10k-labels-idx1-ubyte.gz from https://" in out and str(root / "mnist") in out
    assert "MD5 verified" in out and "MD5 " + data.MNIST_FILES["mnist"]["test"]["labels"][1] in out
