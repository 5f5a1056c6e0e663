"""Data for the course: embedded defaults that need no network, and a checked MNIST / Fashion-MNIST loader.

Embedded (always available, no download):

- ``digits()``: scikit-learn's 1,797 handwritten 8x8 digits, resampled to 28x28 and padded to
  32x32 like MNIST for LeNet-5, with a fixed stratified train/test split (1,437 / 360).
- ``photo()``: matplotlib's sample photograph (Grace Hopper), grey or RGB, in [0, 1].
- synthetic images: ``bar`` / ``bars`` (oriented bars for tuning curves), ``edge_image`` and
  ``checkerboard`` (the small 6x6 examples of the edge-detection lecture).

Real data: ``load_mnist(kind, split)`` reads the original IDX files (gzip or raw) from
``$CNNLAB_DATA/<mnist|fashion-mnist>/`` (default ``~/.cache/cnnlab``), verifies their MD5 checksums,
and downloads them only when asked (``download=True``). ``read_idx(path)`` parses any IDX file.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "digits",
    "photo",
    "resize",
    "bar",
    "bars",
    "edge_image",
    "checkerboard",
    "read_idx",
    "load_mnist",
    "data_root",
    "MNIST_FILES",
]


# ----------------------------------------------------------------------------------------------
# resampling
# ----------------------------------------------------------------------------------------------
def _resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Return the (n_out, n_in) matrix that resamples a 1-D signal of length n_in to length n_out.

    Downsampling (n_out <= n_in) averages the input over each output pixel's footprint (area
    averaging, with fractional overlaps; exact block averaging for integer factors). Upsampling
    interpolates linearly between pixel centres (half-pixel convention, edges replicated), like
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``. Rows sum to 1.
    """
    m = np.zeros((n_out, n_in))
    if n_out <= n_in:
        scale = n_in / n_out
        for i in range(n_out):
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                m[i, j] = min(hi, j + 1) - max(lo, j)
        m /= scale
    else:
        centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        centres = np.clip(centres, 0, n_in - 1)
        left = np.floor(centres).astype(int)
        right = np.minimum(left + 1, n_in - 1)
        frac = centres - left
        m[np.arange(n_out), left] += 1 - frac
        m[np.arange(n_out), right] += frac
    return m


def resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize images to ``shape`` = (H', W') along the last two axes (area averaging down, bilinear up).

    Args:
        img: array (..., H, W) of floats; any leading axes (batch, channel) are kept. For an RGB
            photo of shape (H, W, 3), move the channel axis first.
        shape: (H', W') target size, positive ints.

    Returns:
        Float64 array (..., H', W'). Values stay within [min(img), max(img)] (convex combinations).
    """
    img = np.asarray(img, dtype=np.float64)
    if img.ndim < 2:
        raise ValueError(f"resize needs an array with at least 2 dimensions (..., H, W), got shape {img.shape}")
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
        raise ValueError(f"shape must be a pair of positive ints (H, W), got {shape!r}")
    mh = _resample_matrix(img.shape[-2], int(shape[0]))
    mw = _resample_matrix(img.shape[-1], int(shape[1]))
    return mh @ img @ mw.T  # (H', H) @ (..., H, W) @ (W, W') broadcasts over the leading axes


# ----------------------------------------------------------------------------------------------
# scikit-learn digits
# ----------------------------------------------------------------------------------------------
_DIGITS_TEST_SIZE = 360
_DIGITS_SEED = 0


def _digits_file() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as (pixels (N, 64) float64 0..16, labels (N,) int64): read from
    scikit-learn's data file directly (importing sklearn.datasets takes ten times longer than
    reading it), through ``load_digits`` where the file is not where it used to be."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(root, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            table = np.loadtxt(path, delimiter=",")
            if table.shape == (1797, 65):
                return table[:, :64], table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


@functools.lru_cache(maxsize=4)
def _digits_cached(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pixels, y = _digits_file()
    images = pixels.reshape(-1, 8, 8) / 16.0  # (1797, 8, 8) in [0, 1]
    if size == 8:
        out = images
    else:
        margin = max(1, round(size / 16))  # 32 -> 28x28 digit + 2 pixels of border, as in MNIST
        inner = size - 2 * margin
        out = np.zeros((len(images), size, size))
        out[:, margin:margin + inner, margin:margin + inner] = resize(images, (inner, inner))
    x = np.clip(out, 0.0, 1.0).astype(np.float32)[:, None, :, :]

    # fixed stratified split: per class, a share of the 360 test images proportional to the class size
    # (largest remainders decide the rounding), picked by a local seeded generator
    rng = np.random.default_rng(_DIGITS_SEED)
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * _DIGITS_TEST_SIZE / len(y)
    n_test = np.floor(exact).astype(int)
    short = _DIGITS_TEST_SIZE - n_test.sum()
    n_test[np.argsort(-(exact - n_test), kind="stable")[:short]] += 1
    test_idx = []
    for c, k in zip(classes, n_test):
        idx = np.flatnonzero(y == c)
        test_idx.append(rng.permutation(idx)[:k])
    test_idx = np.sort(np.concatenate(test_idx))
    train_mask = np.ones(len(y), bool)
    train_mask[test_idx] = False
    train_idx = rng.permutation(np.flatnonzero(train_mask))
    arrays = (x[train_idx], y[train_idx], x[test_idx], y[test_idx])
    for a in arrays:
        a.setflags(write=False)
    return arrays


def digits(size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return scikit-learn's handwritten digits as LeNet-sized images with a fixed train/test split.

    The 8x8 originals (values 0..16) are scaled to [0, 1], resampled bilinearly to the inner
    (size - 4) x (size - 4) square (28x28 for size 32) and zero-padded by 2 pixels (like MNIST's
    28x28 digits padded to 32x32 for LeNet-5). The split is stratified: 1,437 training and 360
    test images, every class in the same proportion, always the same images (a local generator with
    a fixed seed; no global random state is touched). The training set comes in a fixed shuffled
    order; the test set in the original order.

    Args:
        size: side of the output images, 8 (the originals) or 12..128. Default 32.

    Returns:
        (X_train, y_train, X_test, y_test): X float32 (N, 1, size, size) in [0, 1], y int64 (N,)
        with labels 0..9; N = 1437 and 360. Fresh copies on every call (cached underneath).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"size must be an integer, got {size!r}")
    if size != 8 and not 12 <= size <= 128:
        raise ValueError(f"size must be 8 (the original digits) or between 12 and 128, got size={size}")
    return tuple(a.copy() for a in _digits_cached(int(size)))  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# sample photograph
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _photo_rgb() -> np.ndarray:
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    img = np.asarray(mpimg.imread(path))
    if img.dtype == np.uint8:
        img = img.astype(np.float64) / 255.0
    img = np.clip(img.astype(np.float64)[..., :3], 0.0, 1.0)
    img.setflags(write=False)
    return img


def photo(gray: bool = True, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Return matplotlib's sample photograph (Grace Hopper, 600 x 512 pixels) as floats in [0, 1].

    Args:
        gray: True (default) for one luminance channel (0.299 R + 0.587 G + 0.114 B), False for RGB.
        size: None for the full image; an int s to crop the centre square (512 x 512) and resize it
            to s x s; or a pair (H, W) to resize the whole image to exactly that size. Downsizing
            averages blocks of pixels (no aliasing); enlarging interpolates bilinearly.

    Returns:
        Float64 array (H, W) if gray, else (H, W, 3), values in [0, 1]. A fresh copy each call.
    """
    img = _photo_rgb()
    if size is not None:
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            if size < 1:
                raise ValueError(f"size must be positive, got size={size}")
            h, w = img.shape[:2]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            img = img[top:top + side, left:left + side]
            target = (int(size), int(size))
        elif isinstance(size, Sequence) and len(size) == 2:
            target = tuple(size)  # validated by resize
        else:
            raise ValueError(f"size must be None, an int or an (H, W) pair, got {size!r}")
        img = np.moveaxis(resize(np.moveaxis(img, -1, 0), target), 0, -1)  # type: ignore[arg-type]
    if gray:
        img = img @ np.array([0.299, 0.587, 0.114])
    return np.clip(img, 0.0, 1.0).copy()


# ----------------------------------------------------------------------------------------------
# synthetic images
# ----------------------------------------------------------------------------------------------
def bar(angle: float, size: int = 32, width: float = 3.0, length: float | None = None) -> np.ndarray:
    """Return a bright bar on a dark background, through the image centre, at ``angle`` degrees.

    The angle is measured counter-clockwise from the horizontal as the image is displayed
    (row 0 at the top): 0 gives a horizontal bar, 90 a vertical one. Edges are anti-aliased
    (a pixel's value falls linearly from 1 to 0 across one pixel at the bar's border), so small
    angle changes change the image smoothly, as a tuning curve needs.

    Args:
        angle: orientation in degrees (any real number; 180-periodic).
        size: image side in pixels, >= 3.
        width: bar thickness in pixels, > 0.
        length: bar length in pixels; None (default) runs across the whole image.

    Returns:
        Float64 array (size, size) with values in [0, 1].
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3:
        raise ValueError(f"size must be an integer >= 3, got {size!r}")
    if not np.isfinite(angle):
        raise ValueError(f"angle must be a finite number of degrees, got {angle!r}")
    if not width > 0:
        raise ValueError(f"width must be positive, got width={width!r}")
    if length is not None and not length > 0:
        raise ValueError(f"length must be positive or None, got length={length!r}")
    theta = np.deg2rad(angle)
    c = (size - 1) / 2.0
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = cols - c, c - rows  # y points up on screen
    along = x * np.cos(theta) + y * np.sin(theta)
    across = -x * np.sin(theta) + y * np.cos(theta)
    img = np.clip(width / 2.0 + 0.5 - np.abs(across), 0.0, 1.0)
    if length is not None:
        img *= np.clip(length / 2.0 + 0.5 - np.abs(along), 0.0, 1.0)
    return img


def bars(angles: float | Sequence[float] | np.ndarray, size: int = 32, width: float = 3.0,
         length: float | None = None) -> np.ndarray:
    """Return one bar image per angle (see ``bar``): (len(angles), size, size), or (size, size) for a scalar angle."""
    if np.ndim(angles) == 0:
        return bar(float(angles), size, width, length)  # type: ignore[arg-type]
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 1:
        raise ValueError(f"angles must be a number or a 1-D sequence, got shape {angles.shape}")
    return np.stack([bar(a, size, width, length) for a in angles]) if len(angles) else np.zeros((0, size, size))


def edge_image(size: int = 6, orientation: str = "vertical", flip: bool = False,
               high: float = 10.0, low: float = 0.0) -> np.ndarray:
    """Return a step-edge image: one half ``high``, the other half ``low`` (the lecture's 6x6 example).

    Args:
        size: image side (even, >= 2); default 6.
        orientation: "vertical" (left half bright, right half dark) or "horizontal" (top bright,
            bottom dark).
        flip: swap the halves (dark-to-light instead of light-to-dark).
        high, low: the two pixel values (default 10 and 0, as in the lecture).

    Returns:
        Float64 array (size, size). ``edge_image()`` is six rows of [10, 10, 10, 0, 0, 0];
        ``edge_image(flip=True)`` its mirror.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2 or size % 2:
        raise ValueError(f"size must be an even integer >= 2, got {size!r}")
    if orientation not in ("vertical", "horizontal"):
        raise ValueError(f"orientation must be 'vertical' or 'horizontal', got {orientation!r}")
    first, second = (low, high) if flip else (high, low)
    line = np.where(np.arange(size) < size // 2, first, second).astype(np.float64)
    img = np.tile(line, (size, 1))
    return img if orientation == "vertical" else img.T.copy()


def checkerboard(n: int = 6, block: int = 3, high: float = 10.0, low: float = 0.0) -> np.ndarray:
    """Return an n x n checkerboard of block x block squares, the top-left square ``high``.

    ``checkerboard()`` is the lecture's 6x6 example: 10 in the top-left and bottom-right 3x3 blocks,
    0 elsewhere.

    Args:
        n: image side, >= 1. block: square side, >= 1 (n need not be a multiple of it).
        high, low: the two values (default 10 and 0).

    Returns:
        Float64 array (n, n).
    """
    for name, v in (("n", n), ("block", block)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={v!r}")
    idx = np.arange(n) // block
    return np.where((idx[:, None] + idx[None, :]) % 2 == 0, high, low).astype(np.float64)


# ----------------------------------------------------------------------------------------------
# IDX files and MNIST / Fashion-MNIST
# ----------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    """Read a file, decompressing it when it is gzip (detected by its first two bytes, not its name)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(f"{path}: the gzip stream is damaged or truncated ({err}); "
                             f"delete the file and download it again") from None
    return data


def _parse_idx(data: bytes, path: Path | str) -> np.ndarray:
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(data)} bytes, the header alone needs at least 4)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        magic = struct.unpack(">I", data[:4])[0]
        raise ValueError(f"{path}: not an IDX file (magic number {magic}, 0x{magic:08x}; "
                         f"IDX images have 2051 and labels 2049)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header: expected {header} bytes for {ndim} dimensions, "
                         f"found {len(data)} bytes")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise ValueError(f"{path}: file is {what}: the header gives dimensions {dims}, so expected "
                         f"{expected} bytes (uncompressed), found {len(data)} bytes")
    arr = np.frombuffer(data, dtype=dtype, count=int(np.prod(dims, dtype=np.int64)), offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the format of MNIST and Fashion-MNIST), gzip-compressed or raw.

    The header is checked: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions and the big-endian dimension sizes; the
    file's length must match them exactly.

    Args:
        path: the file; compression is detected from its content, not its name.

    Returns:
        Array with the file's dimensions and type (native byte order), e.g. uint8 (60000, 28, 28).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an IDX file, a damaged gzip stream, or a truncated/over-long file (the message
            names the file and gives the expected and actual byte counts).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    return _parse_idx(_read_bytes(path), path)


#: Folder name, file names and MD5 checksums (of the .gz files and of their uncompressed content) for
#: each dataset and split. The .gz checksums are the official published ones.
MNIST_FILES: dict[str, dict] = {
    "mnist": {
        "folder": "mnist",
        "mirrors": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"),
        "train": {
            "images": ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
            "labels": ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
            "count": 60000,
        },
        "test": {
            "images": ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
            "labels": ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
            "count": 10000,
        },
    },
    "fashion": {
        "folder": "fashion-mnist",
        "mirrors": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "train": {
            "images": ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            "labels": ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
            "count": 60000,
        },
        "test": {
            "images": ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
            "labels": ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
            "count": 10000,
        },
    },
}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the data folder: ``root`` if given, else ``$CNNLAB_DATA``, else ``$XDG_CACHE_HOME/cnnlab`` (~/.cache/cnnlab)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("CNNLAB_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "cnnlab"


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download(name: str, mirrors: Sequence[str], folder: Path, md5: str) -> Path:
    """Download ``name`` (a .gz file) from the first mirror that answers, verify its MD5, and return its path.

    Says what it fetches, from where and to where, shows a progress bar (``cnnlab.progress``) and
    writes the file only once its MD5 matches.
    """
    from .progress import Progress

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    errors = []
    for base in mirrors:
        url = base + name
        print(f"Downloading {name} from {url} into {folder}/ (checked against MD5 {md5}) ...", flush=True)
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                size = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
                total = int(size) // 1024 if size and str(size).isdigit() else 0
                chunks = []
                with Progress(total, name, "kB") as bar:
                    while True:
                        chunk = resp.read(1 << 16)
                        if not chunk:
                            break
                        chunks.append(chunk)
                        bar.update(len(chunk) // 1024)
                payload = b"".join(chunks)
        except (urllib.error.URLError, OSError, ValueError) as err:
            errors.append(f"{url}: {err}")
            continue
        actual = hashlib.md5(payload).hexdigest()
        if actual != md5:
            errors.append(f"{url}: wrong MD5 {actual} (expected {md5})")
            continue
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(payload)
        tmp.replace(target)
        print(f"  {name}: {len(payload):,} bytes, MD5 verified", flush=True)
        return target
    raise ConnectionError(
        f"could not download {name} (are you offline?). Tried:\n  " + "\n  ".join(errors)
        + f"\nDownload it by hand and put it in {folder}/ (keep the name {name})."
    )


def _find_verified(folder: Path, base: str, md5_gz: str, md5_raw: str, mirrors: Sequence[str],
                   download: bool, verify: bool, what: str, kind_folder: str) -> Path:
    gz, raw = folder / (base + ".gz"), folder / base
    path = gz if gz.is_file() else raw if raw.is_file() else None
    if path is None:
        if download:
            path = _download(base + ".gz", mirrors, folder, md5_gz)
        else:
            raise FileNotFoundError(
                f"{what} not found: expected {gz} (or the uncompressed {raw.name} in the same folder). "
                f"Put the original files {base}.gz etc. in {folder}/, or set the environment variable "
                f"CNNLAB_DATA to a folder that contains {kind_folder}/, or pass download=True to fetch them."
            )
    if verify:
        expected = md5_gz if path.suffix == ".gz" else md5_raw
        actual = _md5(path)
        if actual != expected:
            raise ValueError(f"{path}: wrong checksum: expected MD5 {expected}, got {actual}. "
                             f"The file is damaged or not the original {path.name}; delete it and get it again.")
    return path


@functools.lru_cache(maxsize=4)
def _load_cached(img_path: Path, lbl_path: Path, stamp: tuple, count: int) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, 28, 28) (magic 2051), "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lbl_path}: expected a 1-D uint8 label file (magic 2049), got {labels.dtype} {labels.shape}")
    if len(images) != count or len(labels) != count:
        raise ValueError(f"expected {count} images and labels, found {len(images)} in {img_path} "
                         f"and {len(labels)} in {lbl_path}")
    if labels.max(initial=0) > 9:
        raise ValueError(f"{lbl_path}: labels must be 0..9, found {int(labels.max())}")
    labels = labels.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_mnist(kind: str = "mnist", split: str = "train", root: str | os.PathLike | None = None,
               download: bool = False, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST from the original IDX files, checking their MD5 checksums.

    Files are looked up in ``<root>/mnist/`` or ``<root>/fashion-mnist/`` with their original names
    (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``; uncompressed copies without ``.gz`` work too). ``root`` defaults to
    ``$CNNLAB_DATA``, else ``~/.cache/cnnlab``. Nothing is downloaded unless ``download=True``.

    Args:
        kind: "mnist" or "fashion".
        split: "train" (60,000 images) or "test" (10,000).
        root: data folder (see above).
        download: fetch missing files once from the public mirrors (needs a network connection):
            each download says what it fetches, from where and to where, shows a progress bar, and
            keeps the file only when its MD5 is the official one. Nothing is ever downloaded unless
            this is True (a notebook asks you to set it).
        verify: check MD5 checksums (default True).

    Returns:
        (images, labels): images uint8 (N, 28, 28) with values 0..255; labels int64 (N,) in 0..9.
        Fresh copies on every call (parsed files are cached in memory).

    Raises:
        FileNotFoundError: a file is missing and download is False (the message says where to put which file).
        ConnectionError: download=True but no mirror could be reached.
        ValueError: bad kind/split, a wrong checksum (names the file, expected and actual MD5), a
            truncated or malformed file.
    """
    if kind not in MNIST_FILES:
        raise ValueError(f"kind must be one of {sorted(MNIST_FILES)}, got {kind!r}")
    info = MNIST_FILES[kind]
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = data_root(root) / info["folder"]
    paths = []
    for part in ("images", "labels"):
        base, md5_gz, md5_raw = info[split][part]
        paths.append(_find_verified(folder, base, md5_gz, md5_raw, info["mirrors"], download, verify,
                                    f"{kind} {split} {part}", info["folder"]))
    stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    images, labels = _load_cached(paths[0], paths[1], stamp, info[split]["count"])
    return images.copy(), labels.copy()
