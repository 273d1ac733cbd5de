"""PyTorch peer of gancu: the same presets, the same networks, the same training iteration.

gancu's presets (configs/presets/*.toml) describe G and D as lists of layer specs. This module
builds those networks as `torch.nn.Sequential` (one module per spec, so state-dict keys are
"<index>.weight", the names gancu exports as "G.<index>.weight" / "D.<index>.weight"), trains
them with the iteration gancu runs, and reads/writes gancu's safetensors checkpoints. The scripts
beside it (bench_pytorch.py, train_pytorch.py, bench_compare.py, dump_reference.py) are thin
command lines over it.

Works with torch 1.13 and 2.x (torch.compile is feature-detected by the callers). Needs numpy;
PIL only for writing sample grids. Python 3.11+ (tomllib).

Conventions that must match gancu (see DESIGN.md):
  * gancu keeps images NHWC. `reshape h= w= c=` reads features [N, H*W*C] in NHWC order and
    `flatten` writes them in NHWC order; inside PyTorch the images are NCHW.
  * Real images: uint8 -> float32 as `u * float32(2/255) - 1`.
  * BCE iteration (train_step): D on the real batch (forward+backward), D on the detached fake
    batch (forward+backward, its own batch-norm statistics), Adam step of D; then D on the SAME
    fake batch (G is not re-run) with target 1, backward into G, Adam step of G. D's parameters
    are frozen (requires_grad=False) during the G step, so their gradients are not computed;
    D's batch-norm running statistics are still updated by that third pass (PyTorch's train-mode
    behaviour).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import struct
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parent.parent
PRESET_DIR = REPO_ROOT / "configs" / "presets"


class ConfigError(Exception):
    """A config, preset, layer spec or data problem; the message names the file or field."""


# ----------------------------------------------------------------------------------------------
# Config: preset name or TOML file, plus --set section.key=value overrides.
# ----------------------------------------------------------------------------------------------

def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def resolve_config_path(name_or_path: str) -> Path:
    """A TOML file path, or a preset name resolved to configs/presets/NAME.toml."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or os.sep in name_or_path or p.is_file():
        if not p.is_file():
            raise ConfigError(f"config file {name_or_path}: not found")
        return p
    preset = PRESET_DIR / f"{name_or_path}.toml"
    if not preset.is_file():
        raise ConfigError(f"unknown preset '{name_or_path}' (presets: {', '.join(preset_names())})")
    return preset


def _parse_set_value(text: str):
    """A TOML value (number, bool, string, array); a bare word that is no TOML value is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_set(cfg: dict, assignment: str) -> None:
    """Applies one `section.key=value` (any depth) to cfg in place, checking the value's type."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment}: expected section.key=value")
    key, text = assignment.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment}: bad key '{key}'")
    value = _parse_set_value(text.strip())
    node = cfg
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment}: '{part}' is a value, not a section")
        node = child
    last = parts[-1]
    if last in node:
        old = node[last]
        if isinstance(old, dict):
            raise ConfigError(f"--set {assignment}: '{key}' is a section, not a value")
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(old) is not type(value):
            raise ConfigError(f"--set {assignment}: {key} expects a {type(old).__name__}, "
                              f"got {type(value).__name__} {value!r}")
    else:
        print(f"note: --set {key}: not in the config; added", file=sys.stderr)
    node[last] = value


def load_config(name_or_path: str, sets: list[str] | None = None) -> dict:
    path = resolve_config_path(name_or_path)
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    for s in sets or []:
        apply_set(cfg, s)
    cfg.setdefault("_source", str(path))
    validate_config(cfg)
    return cfg


def _get(cfg: dict, dotted: str, kind, default=None):
    node = cfg
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.get(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{cfg.get('_source', 'config')}: {dotted}: '{p}' is not a section")
    if parts[-1] not in node:
        if default is None:
            raise ConfigError(f"{cfg.get('_source', 'config')}: missing {dotted}")
        return default
    v = node[parts[-1]]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
        raise ConfigError(f"{cfg.get('_source', 'config')}: {dotted} = {v!r}: expected {kind.__name__}")
    return v


def validate_config(cfg: dict) -> None:
    src = cfg.get("_source", "config")
    if _get(cfg, "train.loss", str) != "bce":
        raise ConfigError(f"{src}: train.loss = {cfg['train']['loss']!r}: only 'bce' is implemented here")
    for key in ("train.batch", "train.steps", "train.d_steps", "model.z_dim"):
        if _get(cfg, key, int) < 1:
            raise ConfigError(f"{src}: {key} must be >= 1")
    _get(cfg, "train.seed", int)
    ls = _get(cfg, "train.label_smoothing", float, 0.0)
    if not 0.0 <= ls < 1.0:
        raise ConfigError(f"{src}: train.label_smoothing = {ls}: expected [0, 1)")
    if _get(cfg, "model.latent", str) not in ("normal", "uniform"):
        raise ConfigError(f"{src}: model.latent must be 'normal' or 'uniform'")
    if _get(cfg, "model.init", str) not in ("dcgan", "pytorch"):
        raise ConfigError(f"{src}: model.init must be 'dcgan' or 'pytorch'")
    for net in ("g", "d"):
        if _get(cfg, f"optim.{net}.name", str) != "adam":
            raise ConfigError(f"{src}: optim.{net}.name: only 'adam' is implemented here")
        for k in ("lr", "beta1", "beta2"):
            _get(cfg, f"optim.{net}.{k}", float)
    for net in ("generator", "discriminator"):
        specs = cfg.get("model", {}).get(net)
        if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
            raise ConfigError(f"{src}: model.{net} must be a non-empty array of layer strings")


# ----------------------------------------------------------------------------------------------
# Layer specs: "kind key=value ..."; a bare first value fills the kind's first key.
# ----------------------------------------------------------------------------------------------

_REQUIRED = object()

# kind -> ordered (key, type, default); the first key is the one a bare value fills.
LAYER_KEYS: dict[str, list[tuple[str, type, object]]] = {
    "linear": [("out", int, _REQUIRED), ("bias", bool, True)],
    "conv": [("out", int, _REQUIRED), ("k", int, _REQUIRED), ("s", int, 1), ("p", int, 0), ("bias", bool, True)],
    "convT": [("out", int, _REQUIRED), ("k", int, _REQUIRED), ("s", int, 1), ("p", int, 0), ("bias", bool, True)],
    "bn": [("momentum", float, 0.1), ("eps", float, 1e-5)],
    "relu": [],
    "lrelu": [("slope", float, 0.2)],
    "tanh": [],
    "sigmoid": [],
    "dropout": [("p", float, 0.5)],
    "reshape": [("h", int, _REQUIRED), ("w", int, _REQUIRED), ("c", int, _REQUIRED)],
    "flatten": [],
    # s = None: the stride defaults to the kernel size (filled in by parse_layer)
    "maxpool": [("k", int, _REQUIRED), ("s", int, None), ("p", int, 0)],
    "avgpool": [("k", int, _REQUIRED), ("s", int, None), ("p", int, 0)],
}
POOL_KINDS = ("maxpool", "avgpool")


def _convert(text: str, kind: type, where: str):
    if kind is bool:
        if text in ("true", "false"):
            return text == "true"
        raise ConfigError(f"{where}: expected true or false, got '{text}'")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{where}: expected {'an integer' if kind is int else 'a number'}, got '{text}'") from None


def parse_layer(spec: str, where: str = "layer") -> tuple[str, dict]:
    words = spec.split()
    if not words:
        raise ConfigError(f"{where}: empty layer spec")
    kind = words[0]
    if kind not in LAYER_KEYS:
        raise ConfigError(f"{where}: '{spec}': unknown layer '{kind}' (known: {', '.join(LAYER_KEYS)})")
    keys = LAYER_KEYS[kind]
    names = [k for k, _, _ in keys]
    params: dict = {}
    for i, word in enumerate(words[1:]):
        if "=" in word:
            key, text = word.split("=", 1)
        elif i == 0 and keys:
            key, text = keys[0][0], word
        else:
            raise ConfigError(f"{where}: '{spec}': '{word}' is not key=value")
        if key not in names:
            raise ConfigError(f"{where}: '{spec}': {kind} has no key '{key}'"
                              + (f" (keys: {', '.join(names)})" if names else ""))
        if key in params:
            raise ConfigError(f"{where}: '{spec}': '{key}' given twice")
        params[key] = _convert(text, dict((k, t) for k, t, _ in keys)[key], f"{where}: '{spec}': {key}")
    for key, _, default in keys:
        if key not in params:
            if default is _REQUIRED:
                raise ConfigError(f"{where}: '{spec}': {kind} needs {key}=")
            params[key] = default
    if kind in POOL_KINDS and params["s"] is None:
        params["s"] = params["k"]
    for key in ("out", "k", "s", "h", "w", "c"):
        if key in params and params[key] < 1:
            raise ConfigError(f"{where}: '{spec}': {key} must be >= 1")
    if "p" in params and kind in ("conv", "convT") + POOL_KINDS and params["p"] < 0:
        raise ConfigError(f"{where}: '{spec}': p must be >= 0")
    if kind in POOL_KINDS and 2 * params["p"] > params["k"]:
        raise ConfigError(f"{where}: '{spec}': padding {params['p']} is more than half the kernel {params['k']}")
    if kind == "dropout" and not 0.0 <= params["p"] < 1.0:
        raise ConfigError(f"{where}: '{spec}': p must be in [0, 1)")
    return kind, params


class ReshapeNHWC(nn.Module):
    """Features [N, H*W*C] in NHWC order -> NCHW image [N, C, H, W] (a view, no copy)."""

    def __init__(self, h: int, w: int, c: int):
        super().__init__()
        self.h, self.w, self.c = h, w, c

    def forward(self, x):
        return x.view(x.shape[0], self.h, self.w, self.c).permute(0, 3, 1, 2)

    def extra_repr(self):
        return f"h={self.h}, w={self.w}, c={self.c} (features in NHWC order)"


class FlattenNHWC(nn.Module):
    """NCHW image -> features [N, H*W*C] in NHWC order."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


# A shape is ("features", F) or ("image", C, H, W); the batch dimension is left out.
def shape_str(shape) -> str:
    return f"[{shape[1]}]" if shape[0] == "features" else f"[{shape[2]}x{shape[3]}x{shape[1]}] (HxWxC)"


def build_network(specs: list[str], in_shape: tuple, name: str) -> tuple[nn.Sequential, tuple, list[tuple[str, dict]]]:
    """One module per spec, in order. Returns (network, output shape, parsed specs)."""
    modules, parsed = [], []
    shape = in_shape
    for i, spec in enumerate(specs):
        where = f"model.{name}[{i}]"
        kind, p = parse_layer(spec, where)
        parsed.append((kind, p))
        if kind == "linear":
            if shape[0] != "features":
                raise ConfigError(f"{where}: '{spec}': linear needs features, got an image {shape_str(shape)}; add 'flatten'")
            modules.append(nn.Linear(shape[1], p["out"], bias=p["bias"]))
            shape = ("features", p["out"])
        elif kind in ("conv", "convT"):
            if shape[0] != "image":
                raise ConfigError(f"{where}: '{spec}': {kind} needs an image, got features {shape_str(shape)}; add 'reshape'")
            _, c, h, w = shape
            k, s, pad = p["k"], p["s"], p["p"]
            if kind == "conv":
                if h + 2 * pad < k or w + 2 * pad < k:
                    raise ConfigError(f"{where}: '{spec}': a {k}x{k} kernel does not fit {h}x{w} padded by {pad}")
                modules.append(nn.Conv2d(c, p["out"], k, stride=s, padding=pad, bias=p["bias"]))
                shape = ("image", p["out"], (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
            else:
                oh, ow = (h - 1) * s - 2 * pad + k, (w - 1) * s - 2 * pad + k
                if oh < 1 or ow < 1:
                    raise ConfigError(f"{where}: '{spec}': output would be {oh}x{ow}")
                modules.append(nn.ConvTranspose2d(c, p["out"], k, stride=s, padding=pad, bias=p["bias"]))
                shape = ("image", p["out"], oh, ow)
        elif kind == "bn":
            bn = nn.BatchNorm1d if shape[0] == "features" else nn.BatchNorm2d
            modules.append(bn(shape[1], eps=p["eps"], momentum=p["momentum"]))
        elif kind == "relu":
            modules.append(nn.ReLU())
        elif kind == "lrelu":
            modules.append(nn.LeakyReLU(p["slope"]))
        elif kind == "tanh":
            modules.append(nn.Tanh())
        elif kind == "sigmoid":
            modules.append(nn.Sigmoid())
        elif kind == "dropout":
            modules.append(nn.Dropout(p["p"]))
        elif kind == "reshape":
            n = shape[1] if shape[0] == "features" else shape[1] * shape[2] * shape[3]
            if shape[0] != "features" or n != p["h"] * p["w"] * p["c"]:
                raise ConfigError(f"{where}: '{spec}': needs features of size {p['h'] * p['w'] * p['c']}, got {shape_str(shape)}")
            modules.append(ReshapeNHWC(p["h"], p["w"], p["c"]))
            shape = ("image", p["c"], p["h"], p["w"])
        elif kind == "flatten":
            if shape[0] != "image":
                raise ConfigError(f"{where}: '{spec}': flatten needs an image, got features {shape_str(shape)}")
            modules.append(FlattenNHWC())
            shape = ("features", shape[1] * shape[2] * shape[3])
        elif kind in POOL_KINDS:
            # gancu pools NHWC images; here they are NCHW, which pools the same windows.
            if shape[0] != "image":
                raise ConfigError(f"{where}: '{spec}': {kind} needs an image, got features {shape_str(shape)}; add 'reshape'")
            _, c, h, w = shape
            k, s, pad = p["k"], p["s"], p["p"]
            if h + 2 * pad < k or w + 2 * pad < k:
                raise ConfigError(f"{where}: '{spec}': a {k}x{k} window does not fit {h}x{w} padded by {pad}")
            if kind == "maxpool":
                modules.append(nn.MaxPool2d(k, stride=s, padding=pad))
            else:  # gancu divides by k*k, padding counted as zeros
                modules.append(nn.AvgPool2d(k, stride=s, padding=pad, count_include_pad=True))
            shape = ("image", c, (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
    return nn.Sequential(*modules), shape, parsed


def init_network(net: nn.Module, scheme: str) -> None:
    """dcgan: conv/convT/linear weights N(0, 0.02), biases 0; batch-norm weight N(1, 0.02), bias 0.
    pytorch: leave PyTorch's default init (drawn when the modules were built) as it is."""
    if scheme == "pytorch":
        return
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.normal_(0.0, 0.02)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.normal_(1.0, 0.02)
                m.bias.zero_()


def build_models(cfg: dict, seed: int | None = None) -> tuple[nn.Sequential, nn.Sequential, tuple]:
    """G and D on the CPU, initialized from the seed (torch's global RNG, so not gancu's numbers).
    Returns (G, D, sample shape): (C, H, W) for an image generator, (F,) for a point generator
    (the 2-d mixture presets)."""
    z_dim = _get(cfg, "model.z_dim", int)
    torch.manual_seed(_get(cfg, "train.seed", int) if seed is None else seed)
    G, g_out, _ = build_network(cfg["model"]["generator"], ("features", z_dim), "generator")
    D, d_out, _ = build_network(cfg["model"]["discriminator"], g_out, "discriminator")
    if d_out != ("features", 1):
        raise ConfigError(f"{cfg['_source']}: model.discriminator must end in one logit per image, ends in {shape_str(d_out)}")
    scheme = _get(cfg, "model.init", str)
    init_network(G, scheme)
    init_network(D, scheme)
    return G, D, tuple(g_out[1:])


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------------------------------------
# Data: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary batches, synthetic. Always uint8 NHWC.
# ----------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzip-compressed or not) as a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ConfigError(f"{path}: not an IDX file")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise ConfigError(f"{path}: header says {dims} but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def write_idx_u8(path: str | Path, array: np.ndarray) -> None:
    a = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes())


# Where each data set is looked for, in order: the Debian package's directory, the shared data
# folder beside the repository (../shared) or inside it (shared/, as on the device machines),
# then data/ in the repository.
_DATA_DIRS = {
    name: ([f"/usr/share/datasets/{name}"] if name != "cifar10" else [])
    + [REPO_ROOT.parent / "shared/data" / name, REPO_ROOT / "shared/data" / name, REPO_ROOT / "data" / name]
    for name in ("fashion-mnist", "mnist", "cifar10")
}


def _idx_images_in(directory: Path, split: str) -> Path | None:
    prefixes = ["train", "t10k"] if split == "train" else ["t10k"]
    for prefix in prefixes:
        for suffix in (".gz", ""):
            p = directory / f"{prefix}-images-idx3-ubyte{suffix}"
            if p.is_file():
                return p
    return None


def _read_cifar10_bin(directory: Path, split: str) -> np.ndarray | None:
    for d in (directory, directory / "cifar-10-batches-bin"):
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
        files = [d / n for n in names if (d / n).is_file()]
        if files:
            rec = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 3073) for f in files])
            return rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()  # CHW -> HWC
    return None


def load_images(source: str, image_shape: tuple, split: str = "train", seed: int = 1,
                synthetic_count: int = 10000, quiet: bool = False) -> tuple[np.ndarray, str]:
    """uint8 images [N, H, W, C] and a description. `source` is a data-set name (fashion-mnist,
    mnist, cifar10, synthetic), a directory holding IDX or CIFAR-10 .bin files, or an IDX file.
    `image_shape` is (C, H, W), the generator's output; the data must have it."""
    if len(image_shape) != 3:
        raise ConfigError(f"the generator makes {image_shape[0]}-d points, not images: the PyTorch peer trains image presets only")
    c, h, w = image_shape
    images, desc = None, source
    if source == "synthetic":
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(synthetic_count, h, w, c), dtype=np.uint8)
        desc = f"synthetic ({synthetic_count} random uint8 images)"
    else:
        p = Path(source)
        if p.is_file():
            candidates = [("file", p)]
        elif p.is_dir():
            candidates = [("dir", p)]
        elif source in _DATA_DIRS:
            candidates = [("dir", Path(d)) for d in _DATA_DIRS[source] if Path(d).is_dir()]
        else:
            raise ConfigError(f"data '{source}': not a file, a directory or a known data set "
                              f"(fashion-mnist, mnist, cifar10, synthetic)")
        for kind, path in candidates:
            if kind == "file":
                images, desc = read_idx(path), str(path)
                break
            f = _idx_images_in(path, split)
            if f is not None:
                images, desc = read_idx(f), str(f)
                if split == "train" and f.name.startswith("t10k") and not quiet:
                    print(f"note: no training split in {path}; using {f.name}", file=sys.stderr)
                break
            arr = _read_cifar10_bin(path, split)
            if arr is not None:
                images, desc = arr, f"{path} (CIFAR-10 binary)"
                break
        if images is None:
            looked = ", ".join(str(p) for _, p in candidates) or ", ".join(str(d) for d in _DATA_DIRS.get(source, []))
            raise ConfigError(f"data '{source}': no images found (looked in {looked})")
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"{desc}: expected uint8 images [N, H, W] or [N, H, W, C], got {images.dtype} {images.shape}")
    if images.shape[1:] != (h, w, c):
        raise ConfigError(f"{desc}: images are {images.shape[1]}x{images.shape[2]}x{images.shape[3]} (HxWxC) "
                          f"but the generator makes {h}x{w}x{c}")
    return images, desc


def normalize_u8(x_u8: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [-1, 1] exactly as gancu: u * float32(2/255) - 1 (the Python scalar
    is rounded to float32, which is the correctly rounded 2/255)."""
    return x_u8.to(torch.float32) * (2.0 / 255.0) - 1.0


def nhwc_to_nchw_u8(images: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.array(images.transpose(0, 3, 1, 2), order="C", copy=True)).to(device)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

@dataclass(eq=False)
class Trainer:
    """G, D, their Adam optimizers, the data on the device, noise and data-order generators.

    `images` is uint8 [N, H, W, C] (numpy); it is uploaded once as NCHW uint8 and each step gathers
    its batch through a per-epoch permutation and normalizes it (as gancu does on its device).
    """
    cfg: dict
    device: torch.device
    images: np.ndarray | None = field(default=None, repr=False)
    G: nn.Module | None = None
    D: nn.Module | None = None
    seed: int | None = None
    batch: int = 0
    z_dim: int = 0
    image_shape: tuple = ()
    step_count: int = 0
    _epoch_perm: torch.Tensor | None = field(default=None, repr=False)
    _epoch_pos: int = 0

    def __post_init__(self):
        cfg = self.cfg
        self.device = torch.device(self.device)
        self.seed = _get(cfg, "train.seed", int) if self.seed is None else self.seed
        G, D, self.image_shape = build_models(cfg, self.seed)
        self.G_eager = self.G = G.to(self.device)
        self.D_eager = self.D = D.to(self.device)
        self.batch = _get(cfg, "train.batch", int)
        self.d_steps = _get(cfg, "train.d_steps", int)
        self.z_dim = _get(cfg, "model.z_dim", int)
        self.latent = _get(cfg, "model.latent", str)
        self.real_target_value = 1.0 - _get(cfg, "train.label_smoothing", float, 0.0)

        def adam(net, which):
            o = cfg["optim"][which]
            return torch.optim.Adam(net.parameters(), lr=float(o["lr"]),
                                    betas=(float(o["beta1"]), float(o["beta2"])), eps=1e-8)
        self.opt_g = adam(self.G, "g")
        self.opt_d = adam(self.D, "d")
        self.noise_gen = torch.Generator(device=self.device)
        self.noise_gen.manual_seed(self.seed + 1000003)
        self.data_gen = torch.Generator(device=self.device)
        self.data_gen.manual_seed(self.seed + 2000003)
        self.data = None
        if self.images is not None:
            self.set_images(self.images)
        self._targets = {}
        self._mark_step = None

    def set_images(self, images: np.ndarray):
        if images.shape[0] < self.batch:
            raise ConfigError(f"the data set holds {images.shape[0]} images, fewer than a batch of {self.batch}")
        self.data = nhwc_to_nchw_u8(images, self.device)
        self._epoch_perm, self._epoch_pos = None, 0

    def use_modules(self, G: nn.Module, D: nn.Module):
        """Run the iteration through other callables with the same parameters (torch.compile).
        On CUDA each iteration is then marked as a new step for CUDA-graph trees (torch >= 2.1),
        which max-autotune uses."""
        self.G, self.D = G, D
        compiler = getattr(torch, "compiler", None)
        if self.device.type == "cuda" and compiler is not None:
            self._mark_step = getattr(compiler, "cudagraph_mark_step_begin", None)

    def noise(self, n: int) -> torch.Tensor:
        if self.latent == "normal":
            return torch.randn(n, self.z_dim, generator=self.noise_gen, device=self.device)
        return torch.rand(n, self.z_dim, generator=self.noise_gen, device=self.device) * 2.0 - 1.0

    def next_real(self) -> torch.Tensor:
        """The next real batch, float32 NCHW in [-1, 1]. The last partial batch of an epoch is dropped."""
        n = self.data.shape[0]
        if self._epoch_perm is None or self._epoch_pos + self.batch > n:
            self._epoch_perm = torch.randperm(n, generator=self.data_gen, device=self.device)
            self._epoch_pos = 0
        idx = self._epoch_perm[self._epoch_pos:self._epoch_pos + self.batch]
        self._epoch_pos += self.batch
        return normalize_u8(self.data.index_select(0, idx))

    def _target(self, value: float, like: torch.Tensor) -> torch.Tensor:
        """A constant BCE target shaped and typed like the logits `like` (cached)."""
        key = (value, tuple(like.shape), like.dtype)
        if key not in self._targets:
            self._targets[key] = torch.full(like.shape, value, dtype=like.dtype, device=self.device)
        return self._targets[key]

    def train_step(self, real: list[torch.Tensor] | None = None, noise: list[torch.Tensor] | None = None,
                   record: dict | None = None) -> dict:
        """One iteration: d_steps discriminator steps, then one generator step on the fake batch of
        the last D step. `real` / `noise` (one tensor per D step, NCHW float / [B, z_dim]) replace
        the drawn ones. `record`, when given, receives the intermediate tensors and gradients (for
        dump_reference.py). Returns 0-d tensors (no host sync): loss_d, loss_g, d_x, d_g_z."""
        G, D = self.G, self.D
        bce = F.binary_cross_entropy_with_logits
        if self._mark_step is not None:
            self._mark_step()
        fake = None
        for k in range(self.d_steps):
            x = real[k] if real is not None else self.next_real()
            z = noise[k] if noise is not None else self.noise(x.shape[0])
            last = k == self.d_steps - 1
            with torch.set_grad_enabled(last):  # only the last D step's fake feeds the G step
                fake = G(z)
            self.opt_d.zero_grad(set_to_none=True)
            out_real = D(x)
            loss_real = bce(out_real, self._target(self.real_target_value, out_real))
            loss_real.backward()
            # Metrics are taken at once: a compiled D's outputs may live in a CUDA-graph pool
            # that its next call reuses.
            with torch.no_grad():
                d_x = torch.sigmoid(out_real).mean()
            out_fake = D(fake.detach())
            loss_fake = bce(out_fake, self._target(0.0, out_fake))
            loss_fake.backward()
            with torch.no_grad():
                d_g_z = torch.sigmoid(out_fake).mean()
                loss_d = loss_real.detach() + loss_fake.detach()
            if record is not None and last:
                record.update(x=x.detach().clone(), z=z.detach().clone(), fake=fake.detach().clone(),
                              d_real=out_real.detach().clone(), d_fake=out_fake.detach().clone(),
                              loss_d_real=loss_real.detach().clone(), loss_d_fake=loss_fake.detach().clone(),
                              grad_D={n: p.grad.detach().clone() for n, p in self.D_eager.named_parameters()})
            self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        for p in self.D_eager.parameters():
            p.requires_grad_(False)
        try:
            if record is not None:
                fake.retain_grad()
            out_g = D(fake)
            loss_g = bce(out_g, self._target(1.0, out_g))
            loss_g.backward()
        finally:
            for p in self.D_eager.parameters():
                p.requires_grad_(True)
        if record is not None:
            record.update(d_fake_g=out_g.detach().clone(), loss_g=loss_g.detach().clone(),
                          grad_fake=fake.grad.detach().clone(),
                          grad_G={n: p.grad.detach().clone() for n, p in self.G_eager.named_parameters()})
        self.opt_g.step()
        self.step_count += 1
        return {"loss_d": loss_d, "loss_g": loss_g.detach(), "d_x": d_x, "d_g_z": d_g_z}


# ----------------------------------------------------------------------------------------------
# Sample grids: 8 columns, 2-pixel padding around every image (also the outer border).
# ----------------------------------------------------------------------------------------------

def images_to_u8(x: torch.Tensor) -> np.ndarray:
    """NCHW float in [-1, 1] -> uint8 NHWC, round((x + 1) * 127.5) clamped to [0, 255]."""
    y = ((x.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return y.permute(0, 2, 3, 1).numpy()


def make_grid_u8(images_nhwc: np.ndarray, ncol: int = 8, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    n, h, w, c = images_nhwc.shape
    ncol = min(ncol, n)
    nrow = math.ceil(n / ncol)
    grid = np.full((pad + nrow * (h + pad), pad + ncol * (w + pad), c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        grid[y0:y0 + h, x0:x0 + w] = images_nhwc[i]
    return grid


def save_grid(x: torch.Tensor, path: str | Path, ncol: int = 8, pad: int = 2, pad_value: int = 0) -> None:
    """NCHW images in [-1, 1] -> PNG grid (grayscale for 1 channel, RGB for 3); written atomically."""
    from PIL import Image
    grid = make_grid_u8(images_to_u8(x), ncol, pad, pad_value)
    img = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid, mode="L" if grid.shape[2] == 1 else "RGB")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, raw little-endian data.
# ----------------------------------------------------------------------------------------------

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
              "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}
_NP_TO_ST = {np.dtype(v).str.replace("|", ""): k for k, v in _ST_DTYPES.items()}


def read_safetensors(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """All tensors of a safetensors file as numpy arrays (BF16 widened to float32), and the metadata."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ConfigError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ConfigError(f"{path}: header length {n} exceeds the file")
    try:
        header = json.loads(raw[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: bad safetensors header: {e}") from None
    data = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if not 0 <= b <= e <= len(data):
            raise ConfigError(f"{path}: tensor {name}: data offsets {b}..{e} outside the data ({len(data)} bytes)")
        count = int(np.prod(shape)) if shape else 1
        if dt == "BF16":
            if e - b != 2 * count:
                raise ConfigError(f"{path}: tensor {name}: {e - b} bytes for {count} bf16 values")
            u = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            out[name] = u.view(np.float32).reshape(shape)
            continue
        if dt not in _ST_DTYPES:
            raise ConfigError(f"{path}: tensor {name}: unsupported dtype {dt}")
        npdt = np.dtype(_ST_DTYPES[dt])
        if e - b != npdt.itemsize * count:
            raise ConfigError(f"{path}: tensor {name}: {e - b} bytes for shape {shape} of {dt}")
        out[name] = np.frombuffer(data[b:e], dtype=npdt).reshape(shape).copy()
    return out, meta


def write_safetensors(path: str | Path, tensors: dict, metadata: dict | None = None) -> None:
    """numpy arrays or torch tensors -> safetensors, tensors in name order; written atomically."""
    arrays = {}
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.ascontiguousarray(t)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype.str.replace("|", "") not in _NP_TO_ST:
            raise ValueError(f"{name}: dtype {a.dtype} cannot be written to safetensors")
        arrays[name] = a
    header, offset = {}, 0
    for name in sorted(arrays):
        a = arrays[name]
        header[name] = {"dtype": _NP_TO_ST[a.dtype.str.replace("|", "")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name in sorted(arrays):
            f.write(arrays[name].tobytes())
    os.replace(tmp, path)


def load_gancu_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A gancu checkpoint (safetensors, names like G.0.weight / D.3.running_mean, PyTorch layouts)
    as torch tensors."""
    arrays, _ = read_safetensors(path)
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def checkpoint_state(G: nn.Module, D: nn.Module) -> dict[str, torch.Tensor]:
    """G.* and D.* parameters and batch-norm running statistics (no num_batches_tracked)."""
    out = {}
    for prefix, net in (("G", G), ("D", D)):
        for k, v in net.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                out[f"{prefix}.{k}"] = v.detach().cpu()
    return out


def apply_checkpoint(G: nn.Module, D: nn.Module, tensors: dict[str, torch.Tensor], path: str = "checkpoint") -> list[str]:
    """Copies G.* / D.* tensors into the networks, checking shapes. Every parameter must be present;
    missing batch-norm running statistics keep their initial values. Returns notes."""
    notes = []
    used = set()
    for prefix, net in (("G", G), ("D", D)):
        params = {n for n, _ in net.named_parameters()}
        for k, v in net.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            name = f"{prefix}.{k}"
            if name not in tensors:
                if k in params:
                    raise ConfigError(f"{path}: no tensor {name}")
                notes.append(f"{name} not in {path}; kept its initial value")
                continue
            t = tensors[name]
            if tuple(t.shape) != tuple(v.shape):
                raise ConfigError(f"{path}: {name} has shape {list(t.shape)}, the model needs {list(v.shape)}")
            with torch.no_grad():
                v.copy_(t.to(v.dtype))
            used.add(name)
    extra = sorted(n for n in tensors if n.startswith(("G.", "D.")) and n not in used)
    if extra:
        notes.append(f"{path}: tensors the model does not use: {', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}")
    return notes


def compile_available() -> bool:
    return hasattr(torch, "compile")


def describe_cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()
