"""PyTorch peer of gancu: the same presets, the same networks, the same training iteration.

gancu's presets (configs/presets/*.toml) describe G and D as lists of layer strings. This module
builds those networks (gancu_graph.py: one module per string, registered under its index, so
state-dict keys are "<index>.weight", the names gancu exports as "G.<index>.weight" /
"D.<index>.weight"; strings may name their outputs and read named inputs), trains them with the
iteration gancu runs for every objective of `train.loss` (gancu_objectives.py), and reads/writes
gancu's safetensors checkpoints. The scripts beside it (bench_pytorch.py, train_pytorch.py,
bench_compare.py, step_reference.py, dump_reference.py) are thin command lines over it.

Works with torch 1.13 and 2.x (torch.compile is feature-detected by the callers). Needs numpy;
PIL only for writing sample grids. Python 3.11+ (tomllib).

Conventions that must match gancu (see DESIGN.md):
  * gancu keeps images NHWC. `reshape h= w= c=` reads features [N, H*W*C] in NHWC order and
    `flatten` writes them in NHWC order; inside PyTorch the images are NCHW.
  * Real images: uint8 -> float32 as `u * float32(2/255) - 1`.
  * The iteration (Trainer.train_step): train.d_steps D steps, each: G(z) (with gradients only
    in the last D step), D on the real batch (forward+backward), D on the detached fake batch
    (forward+backward, its own batch-norm statistics), the penalty where the objective has one
    (wgan-gp, dragan: a D call of its own at the penalty's points; r1: on the real pass), the
    optimizer step of D, then wgan's clipping or BEGAN's k update. Then the G step: D on the SAME
    fake batch of the last D step (G is not re-run), backward into G, optimizer step of G. D's
    parameters are frozen (requires_grad=False) during the G step, so their gradients are not
    computed; D's batch-norm running statistics are still updated by that pass (PyTorch's
    train-mode behaviour).
  * A conditional model (model.classes = N > 0): G and D read the input `label`, one-hot rows
    [B, N]. The real batch's labels are gathered through the same permutation as its images; the
    fake classes are drawn uniformly each D step (torch's generator; gancu draws them from its
    Philox stream kStreamClasses, so a comparison hands gancu's over, as for the noise). D judges
    the real batch with its labels and the fakes with their classes; the penalty's points
    (wgan-gp, dragan) and R1's real pass use the real labels; the G step the last D step's
    fake classes.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The layer strings and the network graph (re-exported: callers use gancu_torch.build_network ...).
from gancu_graph import (LAYER_KEYS, POOL_KINDS, Add, Concat, ConfigError, FlattenNHWC,  # noqa: E402,F401
                         GraphNetwork, ReshapeNHWC, build_network, count_params, init_network, parse_layer,
                         parse_layer_string, shape_str)
from gancu_objectives import (DRAW_NAMES, OBJECTIVE_DEFAULTS, OBJECTIVES, Objective,  # noqa: E402,F401
                               began_update, draw_penalty_inputs, gradient_penalty, r1_real_pass,
                               reconstruction_loss)

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


# optim.g.* / optim.d.* keys that a config may leave out, with gancu's defaults.
OPTIMIZER_DEFAULTS = {"eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "alpha": 0.99}


def optional_key_default(key: str):
    """The default of a key that configs may leave out (the objectives' train.* settings, the
    optimizers' eps, weight_decay, momentum, alpha, model.classes), or None."""
    section, _, name = key.rpartition(".")
    if key == "model.classes":
        return 0  # unconditional
    if section == "train" and name in OBJECTIVE_DEFAULTS:
        return OBJECTIVE_DEFAULTS[name]
    if section in ("optim.g", "optim.d"):
        return OPTIMIZER_DEFAULTS.get(name)
    return None


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
    known = optional_key_default(key)
    if last in node or known is not None:
        old = node[last] if last in node else known
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


OPTIMIZERS = ("adam", "rmsprop", "sgd")


def validate_config(cfg: dict) -> None:
    src = cfg.get("_source", "config")
    mode = _get(cfg, "train.mode", str, "gan")
    if mode != "gan":
        # The supervised generator (no D, no noise) is gancu's alone: refused, never trained as a GAN.
        raise ConfigError(f"{src}: train.mode = {mode!r}: the PyTorch peer trains GANs only")
    objective_from_config(cfg)
    for key in ("train.batch", "train.d_steps", "model.z_dim"):
        if _get(cfg, key, int) < 1:
            raise ConfigError(f"{src}: {key} must be >= 1")
    if _get(cfg, "train.steps", int) < 0:
        raise ConfigError(f"{src}: train.steps must be >= 0")
    _get(cfg, "train.seed", int)
    ls = _get(cfg, "train.label_smoothing", float, 0.0)
    if not 0.0 <= ls < 1.0:
        raise ConfigError(f"{src}: train.label_smoothing = {ls}: expected [0, 1)")
    if _get(cfg, "train.feature_matching", str, ""):
        # Refused rather than ignored, so that no comparison runs a different G loss on this side.
        raise ConfigError(f"{src}: train.feature_matching: the PyTorch peer does not implement feature matching")
    if _get(cfg, "model.latent", str) not in ("normal", "uniform"):
        raise ConfigError(f"{src}: model.latent must be 'normal' or 'uniform'")
    if _get(cfg, "model.init", str) not in ("dcgan", "pytorch"):
        raise ConfigError(f"{src}: model.init must be 'dcgan' or 'pytorch'")
    for net in ("g", "d"):
        optimizer_settings(cfg, net)
    for net in ("generator", "discriminator"):
        specs = cfg.get("model", {}).get(net)
        if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
            raise ConfigError(f"{src}: model.{net} must be a non-empty array of layer strings")


def objective_from_config(cfg: dict) -> Objective:
    """train.loss and its train.* settings (defaults: gancu_objectives.OBJECTIVE_DEFAULTS), checked."""
    src = cfg.get("_source", "config")
    settings = {key: _get(cfg, f"train.{key}", type(default), default) for key, default in OBJECTIVE_DEFAULTS.items()}
    obj = Objective(loss=_get(cfg, "train.loss", str),
                    real_target=1.0 - _get(cfg, "train.label_smoothing", float, 0.0), **settings)
    for key, what in obj.problems():
        raise ConfigError(f"{src}: train.{key} = {getattr(obj, key)!r}: {what}")
    return obj


def optimizer_settings(cfg: dict, net: str) -> dict:
    """optim.{net}.*: name (adam, rmsprop, sgd), lr, and the chosen optimizer's keys with gancu's
    defaults: adam beta1, beta2 (required), eps 1e-8, weight_decay 0; rmsprop alpha 0.99, eps 1e-8,
    weight_decay 0 (no momentum, not centered); sgd momentum 0, weight_decay 0."""
    src, sec = cfg.get("_source", "config"), f"optim.{net}"
    name = _get(cfg, f"{sec}.name", str)
    if name not in OPTIMIZERS:
        raise ConfigError(f"{src}: {sec}.name = {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    keys = {"adam": ("beta1", "beta2", "eps"), "rmsprop": ("alpha", "eps"), "sgd": ("momentum",)}[name]
    o = {"name": name, "lr": _get(cfg, f"{sec}.lr", float)}
    for key in keys + ("weight_decay",):
        o[key] = _get(cfg, f"{sec}.{key}", float, OPTIMIZER_DEFAULTS.get(key))  # beta1, beta2: required
    for key, v in o.items():
        if key != "name" and not (v >= 0 and math.isfinite(v)):
            raise ConfigError(f"{src}: {sec}.{key} = {v!r}: must be >= 0")
    return o


def make_optimizer(params, o: dict) -> torch.optim.Optimizer:
    """The torch optimizer of optimizer_settings(...): Adam with L2 weight decay added to the
    gradient (as gancu), RMSprop (not centered, no momentum), or SGD (no dampening, not Nesterov)."""
    if o["name"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                weight_decay=o["weight_decay"])
    if o["name"] == "rmsprop":
        return torch.optim.RMSprop(params, lr=o["lr"], alpha=o["alpha"], eps=o["eps"],
                                   weight_decay=o["weight_decay"], momentum=0.0, centered=False)
    return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])


# ----------------------------------------------------------------------------------------------
# Models: G and D from the config's layer strings (gancu_graph.py).
# ----------------------------------------------------------------------------------------------

def build_models(cfg: dict, seed: int | None = None) -> tuple[GraphNetwork, GraphNetwork, tuple]:
    """G and D on the CPU, initialized from the seed (torch's global RNG, so not gancu's numbers).
    Returns (G, D, sample shape): (C, H, W) for an image generator, (F,) for a point generator
    (the 2-d mixture presets). D ends in one logit per sample, or for began in a reconstruction
    of the sample; a critic with a gradient penalty may not hold batch norm."""
    src = cfg.get("_source", "config")
    z_dim = _get(cfg, "model.z_dim", int)
    obj = objective_from_config(cfg)
    torch.manual_seed(_get(cfg, "train.seed", int) if seed is None else seed)
    # A conditional model (model.classes > 0): both networks read the input `label`, one-hot rows.
    classes = _get(cfg, "model.classes", int, 0)
    labels = {"label": ("features", classes)} if classes > 0 else None
    G, g_out, _ = build_network(cfg["model"]["generator"], ("features", z_dim), "generator", labels)
    D, d_out, d_parsed = build_network(cfg["model"]["discriminator"], g_out, "discriminator", labels)
    if obj.autoencoder and d_out != g_out:
        raise ConfigError(f"{src}: train.loss = 'began' needs an auto-encoder discriminator whose output has the "
                          f"generator's shape {shape_str(g_out)}; model.discriminator ends in {shape_str(d_out)}")
    if not obj.autoencoder and d_out != ("features", 1):
        raise ConfigError(f"{src}: model.discriminator must end in one logit per image, ends in {shape_str(d_out)}")
    if obj.penalized:
        for i, (kind, _) in enumerate(d_parsed):
            if kind == "bn":
                raise ConfigError(f"{src}: model.discriminator[{i}]: batch norm in a critic with a gradient penalty "
                                  f"(train.loss = '{obj.loss}') mixes the samples' gradients; use 'ln' (layer norm)")
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


# The most classes a data set's labels may have (gancu's kMaxClasses).
MAX_CLASSES = 10

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


def _read_cifar10_bin(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """CIFAR-10's binary batches: images [N, 32, 32, 3] and their labels (each record's first byte)."""
    for d in (directory, directory / "cifar-10-batches-bin"):
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
        files = [d / n for n in names if (d / n).is_file()]
        if files:
            rec = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 3073) for f in files])
            return rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), rec[:, 0].copy()  # CHW -> HWC
    return None


def _idx_labels_for(images: Path) -> np.ndarray | None:
    """The labels file beside an IDX images file, as gancu finds it (src/data/sets.cpp,
    find_labels_for): NAME-images-idx3-REST -> NAME-labels-idx1-REST, raw before gzip; None if absent."""
    name = images.name[:-3] if images.name.endswith(".gz") else images.name
    for tag in ("-images-idx3-", "-images-idx4-"):
        if tag in name:
            labels = name.replace(tag, "-labels-idx1-", 1)
            for candidate in (images.parent / labels, images.parent / f"{labels}.gz"):
                if candidate.is_file():
                    return read_idx(candidate)
    return None


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _folder_classes(path: Path, files: list[Path]) -> list[int] | None:
    """Each file's class as gancu gives it (src/data/image_folder.cpp): when every image lies in a
    first-level sub-folder and there are 2 to MAX_CLASSES of them, the index of its sub-folder's
    name in their sorted list; else None (no labels)."""
    firsts = []
    for f in files:
        parts = f.relative_to(path).parts
        if len(parts) < 2:
            return None
        firsts.append(parts[0])
    names = sorted(set(firsts))
    if not 2 <= len(names) <= MAX_CLASSES:
        return None
    return [names.index(n) for n in firsts]


def _read_image_folder(path: Path, c: int, size: int, quiet: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A folder of PNG/JPEG files (recursively, sorted by relative path) as gancu reads one
    (src/data/image_folder.cpp): PIL's convert to "L" or "RGB", then torchvision's Resize(size) +
    CenterCrop(size) (PIL's antialiased bilinear), and the classes of its sub-folders
    (_folder_classes). Unreadable files are skipped with a note. None when the folder holds no
    image files."""
    from PIL import Image

    files = sorted((f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES),
                   key=lambda f: f.relative_to(path).as_posix())
    if not files:
        return None
    classes = _folder_classes(path, files)
    out, labels, skipped = [], [], []
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("RGB" if c == 3 else "L")
                w, h = im.size
                rw, rh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
                im = im.resize((rw, rh), Image.BILINEAR)
                top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
                out.append(np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8))
                if classes is not None:
                    labels.append(classes[i])
        except Exception as e:  # PIL raises many kinds for broken files
            skipped.append(f"{f.name} ({e})")
    if skipped and not quiet:
        print(f"note: {path}: skipped {len(skipped)} of {len(files)} image files: {'; '.join(skipped[:5])}",
              file=sys.stderr)
    if not out:
        raise ConfigError(f"{path}: no readable image among {len(files)} image files")
    arr = np.stack(out)
    return (arr[..., None] if arr.ndim == 3 else arr), (np.array(labels, np.uint8) if classes is not None else None)


def load_images(source: str, image_shape: tuple, split: str = "train", seed: int = 1,
                synthetic_count: int = 10000, quiet: bool = False) -> tuple[np.ndarray, str]:
    """uint8 images [N, H, W, C] and a description (load_labeled_images without the labels)."""
    images, _, desc = load_labeled_images(source, image_shape, split, seed, synthetic_count, quiet)
    return images, desc


def load_labeled_images(source: str, image_shape: tuple, split: str = "train", seed: int = 1,
                        synthetic_count: int = 10000, quiet: bool = False
                        ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """uint8 images [N, H, W, C], their class labels (uint8 [N], or None when the data set has
    none) and a description. `source` is a data-set name (fashion-mnist, mnist, cifar10,
    synthetic), a directory holding IDX or CIFAR-10 .bin files or PNG/JPEG images (read at the
    generator's size, as gancu reads an image folder; classes from its sub-folders), or an IDX
    file. Labels come from where gancu reads them: the IDX labels file beside the images, CIFAR-10's
    records, an image folder's sub-folders; synthetic images get random labels 0..MAX_CLASSES-1
    (like gancu's synthetic sets, though not the same numbers). `image_shape` is (C, H, W), the
    generator's output; the data must have it."""
    if len(image_shape) != 3:
        raise ConfigError(f"the generator makes {image_shape[0]}-d points, not images: the PyTorch peer trains image presets only")
    c, h, w = image_shape
    images, labels, desc = None, None, source
    if source == "synthetic":
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(synthetic_count, h, w, c), dtype=np.uint8)
        labels = rng.integers(0, MAX_CLASSES, size=synthetic_count, dtype=np.uint8)
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
                images, labels, desc = read_idx(path), _idx_labels_for(path), str(path)
                break
            f = _idx_images_in(path, split)
            if f is not None:
                images, labels, desc = read_idx(f), _idx_labels_for(f), str(f)
                if split == "train" and f.name.startswith("t10k") and not quiet:
                    print(f"note: no training split in {path}; using {f.name}", file=sys.stderr)
                break
            found = _read_cifar10_bin(path, split)
            if found is not None:
                (images, labels), desc = found, f"{path} (CIFAR-10 binary)"
                break
            if kind == "dir" and h == w:
                found = _read_image_folder(path, c, h, quiet)
                if found is not None:
                    images, labels = found
                    desc = f"{path} (image folder, {len(images)} images)"
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
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != images.shape[0]:
            raise ConfigError(f"{desc}: {labels.shape[0]} labels for {images.shape[0]} images")
        if labels.size and int(labels.max()) >= MAX_CLASSES:
            raise ConfigError(f"{desc}: label {int(labels.max())} is out of range (labels are 0..{MAX_CLASSES - 1})")
        labels = labels.astype(np.uint8)
    return images, labels, desc


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
    """G, D, their optimizers, the objective, the data on the device, noise and data-order generators.

    `images` is uint8 [N, H, W, C] (numpy); it is uploaded once as NCHW uint8 and each step gathers
    its batch through a per-epoch permutation and normalizes it (as gancu does on its device).
    `labels` (uint8 [N]) are the images' classes, gathered through the same permutation; a
    conditional model (model.classes > 0) needs them. `dtype` is the networks' and the step's
    floating type (float64 for tight comparisons).
    """
    cfg: dict
    device: torch.device
    images: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    G: nn.Module | None = None
    D: nn.Module | None = None
    seed: int | None = None
    dtype: torch.dtype = torch.float32
    batch: int = 0
    z_dim: int = 0
    image_shape: tuple = ()
    step_count: int = 0  # iterations done; D step k of iteration s is D step s * d_steps + k of the run
    _epoch_perm: torch.Tensor | None = field(default=None, repr=False)
    _epoch_pos: int = 0

    def __post_init__(self):
        cfg = self.cfg
        if _get(cfg, "train.distance_head", str, ""):
            # Refused rather than ignored: no comparison may run another G loss on this side. The
            # networks themselves build (parameter counts of the mlp-distance preset).
            raise ConfigError(f"{cfg.get('_source', 'config')}: train.distance_head: the PyTorch peer does not "
                              "train the distance head")
        self.classes = _get(cfg, "model.classes", int, 0)
        if self.classes < 0:
            raise ConfigError(f"{cfg.get('_source', 'config')}: model.classes = {self.classes}: must be >= 0 "
                              "(0: an unconditional model)")
        self.device = torch.device(self.device)
        self.seed = _get(cfg, "train.seed", int) if self.seed is None else self.seed
        G, D, self.image_shape = build_models(cfg, self.seed)
        self.G_eager = self.G = G.to(self.device, self.dtype)
        self.D_eager = self.D = D.to(self.device, self.dtype)
        self.batch = _get(cfg, "train.batch", int)
        self.d_steps = _get(cfg, "train.d_steps", int)
        self.z_dim = _get(cfg, "model.z_dim", int)
        self.latent = _get(cfg, "model.latent", str)
        self.objective = objective_from_config(cfg)
        self.began_k = torch.tensor(self.objective.began_k0, dtype=self.dtype, device=self.device)
        self.opt_g = make_optimizer(self.G.parameters(), optimizer_settings(cfg, "g"))
        self.opt_d = make_optimizer(self.D.parameters(), optimizer_settings(cfg, "d"))
        self.noise_gen = torch.Generator(device=self.device)
        self.noise_gen.manual_seed(self.seed + 1000003)
        self.data_gen = torch.Generator(device=self.device)
        self.data_gen.manual_seed(self.seed + 2000003)
        self.penalty_gen = torch.Generator(device=self.device)
        self.penalty_gen.manual_seed(self.seed + 3000017)
        self.class_gen = torch.Generator(device=self.device)  # a conditional model's fake classes
        self.class_gen.manual_seed(self.seed + 4000037)
        self.data = self.data_labels = None
        if self.images is not None:
            self.set_images(self.images, self.labels)
        self._mark_step = None

    def set_images(self, images: np.ndarray, labels: np.ndarray | None = None, what: str = "the data set"):
        """The images to train on and their labels (needed by a conditional model, which must have
        a class for every label; ignored by an unconditional one). `what` names the data in errors."""
        if images.shape[0] < self.batch:
            raise ConfigError(f"the data set holds {images.shape[0]} images, fewer than a batch of {self.batch}")
        self.data_labels = None
        if self.classes > 0:
            src = self.cfg.get("_source", "config")
            if labels is None:
                raise ConfigError(f"{src}: model.classes = {self.classes}: a conditional model needs class labels, "
                                  f"but {what} has none (an image folder gets classes from its sub-folders; or "
                                  "set model.classes = 0 and an unconditional preset)")
            labels = np.asarray(labels).reshape(-1)
            if labels.shape[0] != images.shape[0]:
                raise ConfigError(f"{what}: {labels.shape[0]} labels for {images.shape[0]} images")
            if labels.size and not 0 <= int(labels.min()) <= int(labels.max()) < self.classes:
                bad = int(labels.max()) if int(labels.max()) >= self.classes else int(labels.min())
                raise ConfigError(f"{src}: model.classes = {self.classes}: {what} has a label {bad}, outside the "
                                  f"model's classes 0..{self.classes - 1}")
            self.data_labels = torch.from_numpy(labels.astype(np.int64)).to(self.device)
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
            z = torch.randn(n, self.z_dim, generator=self.noise_gen, device=self.device)
        else:
            z = torch.rand(n, self.z_dim, generator=self.noise_gen, device=self.device) * 2.0 - 1.0
        return z.to(self.dtype)

    def next_real(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next real batch, NCHW in [-1, 1] (normalized in float32, as gancu), and its classes
        (int64 [B], gathered through the same permutation; None for an unconditional model). The
        last partial batch of an epoch is dropped."""
        n = self.data.shape[0]
        if self._epoch_perm is None or self._epoch_pos + self.batch > n:
            self._epoch_perm = torch.randperm(n, generator=self.data_gen, device=self.device)
            self._epoch_pos = 0
        idx = self._epoch_perm[self._epoch_pos:self._epoch_pos + self.batch]
        self._epoch_pos += self.batch
        classes = self.data_labels.index_select(0, idx) if self.data_labels is not None else None
        return normalize_u8(self.data.index_select(0, idx)).to(self.dtype), classes

    def draw_classes(self, n: int) -> torch.Tensor:
        """n fake classes, uniform over the model's classes (int64 [n]; torch's generator, not
        gancu's Philox stream kStreamClasses)."""
        return torch.randint(0, self.classes, (n,), generator=self.class_gen, device=self.device)

    def label_inputs(self, classes: torch.Tensor | None) -> dict:
        """The networks' other inputs for these classes: {"label": one-hot rows [B, classes]} for a
        conditional model, {} for an unconditional one."""
        if self.classes == 0:
            return {}
        return {"label": torch.nn.functional.one_hot(classes.long(), self.classes).to(self.dtype)}

    def train_step(self, real: list[torch.Tensor] | None = None, noise: list[torch.Tensor] | None = None,
                   draws: list[dict] | None = None, record: dict | None = None,
                   real_classes: list[torch.Tensor] | None = None,
                   fake_classes: list[torch.Tensor] | None = None) -> dict:
        """One iteration: d_steps discriminator steps, then one generator step on the fake batch of
        the last D step (G is not re-run). `real`, `noise` and `draws` (one item per D step: an NCHW
        image batch or [B, F] points; [B, z_dim]; a dict of the penalty's draws, eps [B] for
        wgan-gp, alpha [B] and u shaped like the real batch for dragan) replace the drawn ones, and
        for a conditional model `real_classes` and `fake_classes` (one int [B] per D step: the real
        batch's labels, the classes the fakes are drawn for) replace the gathered and drawn ones.
        `record`, when given, receives grad_D (D's gradients of the last D step, before its
        optimizer step) and grad_G (G's gradients), by parameter name.

        A conditional model's networks read one-hot rows (label_inputs) as gancu's Gan::train_step
        feeds them: D judges the real batch with its labels and each fake with the class it was
        drawn for; the penalty's points (wgan-gp, dragan) and R1's real pass with the real labels;
        the G step's D pass with the fakes' classes of the last D step.

        Returns 0-d tensors (no host sync), of the last D step where not said otherwise: loss_d
        (with the penalty), loss_g; d_x, d_g_z (D's mean verdict on the real and the fake batch:
        probabilities for the BCE objectives, raw scores otherwise); penalty and grad_norm (mean
        input-gradient norm) where that step computed a penalty; k (after its update) and
        convergence for began."""
        G, D, obj = self.G, self.D, self.objective
        if self._mark_step is not None:
            self._mark_step()
        if self.classes > 0 and real is not None and real_classes is None:
            raise ValueError("train_step: a conditional model given real batches needs their real_classes")
        fake, fake_in, m = None, {}, {}
        for k in range(self.d_steps):
            if real is not None:
                x, y_real = real[k], real_classes[k] if real_classes is not None else None
            else:
                x, y_real = self.next_real()
            z = noise[k] if noise is not None else self.noise(x.shape[0])
            y_fake = None
            if self.classes > 0:
                y_fake = fake_classes[k] if fake_classes is not None else self.draw_classes(x.shape[0])
            real_in, fake_in = self.label_inputs(y_real), self.label_inputs(y_fake)
            last = k == self.d_steps - 1
            with torch.set_grad_enabled(last):  # only the last D step's fake feeds the G step
                fake = G(z, **fake_in)
            self.opt_d.zero_grad(set_to_none=True)
            if obj.autoencoder:
                m, losses = self._began_d_step(x, fake.detach(), real_in, fake_in)
            else:
                penalize = obj.penalizes_d_step(self.step_count * self.d_steps + k)
                step_draws = {}
                if penalize and obj.loss in DRAW_NAMES:
                    step_draws = draws[k] if draws is not None else draw_penalty_inputs(obj, x, self.penalty_gen)
                m = self._d_step(x, fake.detach(), step_draws, penalize, real_in, fake_in)
            if record is not None and last:
                record["grad_D"] = _gradients(self.D_eager)
            self.opt_d.step()
            if obj.loss == "wgan":
                with torch.no_grad():
                    for p in self.D_eager.parameters():
                        p.clamp_(-obj.clip, obj.clip)
            if obj.autoencoder:
                with torch.no_grad():
                    self.began_k, m["convergence"] = began_update(self.began_k, *losses, obj.began_gamma,
                                                                  obj.began_lambda_k)
                m["k"] = self.began_k

        self.opt_g.zero_grad(set_to_none=True)
        for p in self.D_eager.parameters():
            p.requires_grad_(False)
        try:
            if obj.autoencoder:
                loss_g = reconstruction_loss(D, fake, fake_in)  # reaches fake through D and directly
            else:
                loss_g = obj.g_loss(D(fake, **fake_in))
            loss_g.backward()
        finally:
            for p in self.D_eager.parameters():
                p.requires_grad_(True)
        if record is not None:
            record["grad_G"] = _gradients(self.G_eager)
        self.opt_g.step()
        self.step_count += 1
        return {"loss_d": m.pop("loss_d"), "loss_g": loss_g.detach(), **m}

    def _d_step(self, x: torch.Tensor, fake: torch.Tensor, draws: dict, penalize: bool, real_in: dict,
                fake_in: dict) -> dict:
        """Gradients of one D step (not began): the real pass, the fake pass, the penalty's D call
        (wgan-gp, dragan) or R1 on the real pass, each backward as soon as its loss is known.
        `real_in` and `fake_in` are D's other inputs (label_inputs) for the real and the fake batch;
        the penalty's points are judged with the real batch's. Metrics are taken at once: a
        compiled D's outputs may live in a CUDA-graph pool that its next call reuses."""
        D, obj = self.D, self.objective
        m = {}
        r1 = penalize and obj.loss == "r1"
        if r1:
            out_real, pen, norm = r1_real_pass(obj, D, x, real_in)
            loss_real = obj.d_real_loss(out_real)
            (loss_real + pen).backward()
        else:
            out_real = D(x, **real_in)
            loss_real = obj.d_real_loss(out_real)
            loss_real.backward()
        with torch.no_grad():
            m["d_x"] = obj.score(out_real)
        out_fake = D(fake, **fake_in)
        loss_fake = obj.d_fake_loss(out_fake)
        loss_fake.backward()
        with torch.no_grad():
            m["d_g_z"] = obj.score(out_fake)
        if penalize and not r1:
            pen, norm = gradient_penalty(obj, D, x, fake, draws, real_in)
            pen.backward()
        m["loss_d"] = loss_real.detach() + loss_fake.detach()
        if penalize:
            m["penalty"], m["grad_norm"] = pen.detach(), norm
            m["loss_d"] = m["loss_d"] + m["penalty"]
        return m

    def _began_d_step(self, x: torch.Tensor, fake: torch.Tensor, real_in: dict, fake_in: dict
                      ) -> tuple[dict, tuple]:
        """Gradients of BEGAN's D loss L(x) - k L(fake); returns the metrics and (L(x), L(fake))."""
        l_real = reconstruction_loss(self.D, x, real_in)
        l_real.backward()
        l_fake = reconstruction_loss(self.D, fake, fake_in)
        (-self.began_k * l_fake).backward()
        l_real, l_fake = l_real.detach(), l_fake.detach()
        return {"loss_d": l_real - self.began_k * l_fake}, (l_real, l_fake)


def _gradients(net: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of a network's parameter gradients by name (zeros where a parameter got none)."""
    return {n: p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
            for n, p in net.named_parameters()}


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
        # ascontiguousarray would turn a 0-d array (a batch counter) into shape [1].
        a = np.ascontiguousarray(t) if np.ndim(t) else np.array(t)
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
