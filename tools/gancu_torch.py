"""PyTorch peer of gancu: the same presets, the same networks, the same training iteration.

gancu's presets (configs/presets/*.toml) describe G and D as lists of layer strings. This module
builds those networks (gancu_graph.py: one module per string, registered under its index, so
state-dict keys are "<index>.weight", the names gancu exports as "G.<index>.weight" /
"D.<index>.weight"; strings may name their outputs and read named inputs), trains them with the
iteration gancu runs, and reads/writes gancu's safetensors checkpoints. The scripts
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The layer strings and the network graph (re-exported: callers use gancu_torch.build_network ...).
from gancu_graph import (LAYER_KEYS, POOL_KINDS, Add, Concat, ConfigError, FlattenNHWC,  # noqa: E402,F401
                         GraphNetwork, ReshapeNHWC, build_network, count_params, init_network, parse_layer,
                         parse_layer_string, shape_str)

REPO_ROOT = Path(__file__).resolve().parent.parent
PRESET_DIR = REPO_ROOT / "configs" / "presets"


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
# Models: G and D from the config's layer strings (gancu_graph.py).
# ----------------------------------------------------------------------------------------------

def build_models(cfg: dict, seed: int | None = None) -> tuple[GraphNetwork, GraphNetwork, tuple]:
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
