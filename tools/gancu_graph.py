"""gancu's layer strings as a PyTorch network: a small static graph of named values.

A network is a list of layer strings, `kind key=value ...` (a bare first value fills the kind's
first key). Any string may also carry

  name=NAME        names its output, so that later strings (or the caller, as a tap) can read it;
  in=A or in=A,B   its inputs (default: the previous string's output; the first string reads
                   `input`).

`input` is the network's main external input (z for G, the image for D); the caller may declare
more external inputs (e.g. `labels`) and passes them to forward as keyword tensors. A name is
given once, and a string reads only names defined before it (the strings are already in
topological order). The network's output is the output of the LAST string.

One module per string, registered under its index (add_module(str(i), ...)), so state-dict keys
are "<index>.weight", the names gancu exports as "G.<index>.weight"; layers without parameters
(activations, reshape, concat, add) are modules too, so the indices of a chain are those of
nn.Sequential.

Shapes are ("features", F) or ("image", C, H, W) without the batch dimension; images are NCHW in
PyTorch, while gancu keeps them NHWC: `reshape` reads and `flatten` writes features in NHWC order,
and concatenating images along channels is the same in both layouts.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn as nn


class ConfigError(Exception):
    """A config, preset, layer spec or data problem; the message names the file or field."""


_REQUIRED = object()

# kind -> ordered (key, type, default); the first key is the one a bare value fills.
LAYER_KEYS: dict[str, list[tuple[str, type, object]]] = {
    "linear": [("out", int, _REQUIRED), ("bias", bool, True)],
    # kh/kw (kernel rows/columns) override k, ph/pw (padding of rows/columns) override p; parse_layer
    # resolves all four, so the settings always hold kh, kw, ph and pw (k None when not given).
    "conv": [("out", int, _REQUIRED), ("k", int, None), ("s", int, 1), ("p", int, 0), ("bias", bool, True),
             ("kh", int, None), ("kw", int, None), ("ph", int, None), ("pw", int, None)],
    "convT": [("out", int, _REQUIRED), ("k", int, None), ("s", int, 1), ("p", int, 0), ("bias", bool, True),
              ("kh", int, None), ("kw", int, None), ("ph", int, None), ("pw", int, None)],
    "bn": [("momentum", float, 0.1), ("eps", float, 1e-5)],
    "ln": [("eps", float, 1e-5)],
    "relu": [],
    "lrelu": [("slope", float, 0.2)],
    "tanh": [],
    "sigmoid": [],
    "dropout": [("p", float, 0.5)],
    "reshape": [("h", int, _REQUIRED), ("w", int, _REQUIRED), ("c", int, _REQUIRED)],
    "flatten": [],
    # s = None: the stride defaults to the kernel size (filled in by parse_layer)
    "maxpool": [("k", int, _REQUIRED), ("s", int, None), ("p", int, 0)],
    # include_pad=false: divide by the window's pixels inside the image (count_include_pad=False)
    "avgpool": [("k", int, _REQUIRED), ("s", int, None), ("p", int, 0), ("include_pad", bool, True)],
    "resize": [("h", int, _REQUIRED), ("w", int, _REQUIRED)],
    "concat": [],
    "add": [],
    "mbdisc": [("kernels", int, 100), ("dims", int, 5), ("std", float, 0.05)],
    "mbstd": [("eps", float, 1e-8)],
    "embed": [("dim", int, _REQUIRED)],
    "project": [],
}
POOL_KINDS = ("maxpool", "avgpool")
CONV_KINDS = ("conv", "convT")
MULTI_INPUT_KINDS = ("concat", "add", "project")
# Keys every kind accepts: the graph's wiring, not the layer's settings.
GRAPH_KEYS = ("name", "in")
MAIN_INPUT = "input"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def _convert(text: str, kind: type, where: str):
    if kind is bool:
        if text in ("true", "false"):
            return text == "true"
        raise ConfigError(f"{where}: expected true or false, got '{text}'")
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{where}: expected {'an integer' if kind is int else 'a number'}, got '{text}'") from None


def parse_layer_string(spec: str, where: str = "layer") -> tuple[str, dict, str | None, list[str] | None]:
    """(kind, settings, name or None, inputs or None) of one layer string."""
    words = spec.split()
    if not words:
        raise ConfigError(f"{where}: empty layer spec")
    kind = words[0]
    if kind not in LAYER_KEYS:
        raise ConfigError(f"{where}: '{spec}': unknown layer '{kind}' (known: {', '.join(LAYER_KEYS)})")
    keys = LAYER_KEYS[kind]
    names = [k for k, _, _ in keys]
    params: dict = {}
    wiring: dict = {}
    for i, word in enumerate(words[1:]):
        if "=" in word:
            key, text = word.split("=", 1)
        elif i == 0 and keys:
            key, text = keys[0][0], word
        else:
            raise ConfigError(f"{where}: '{spec}': '{word}' is not key=value")
        if key in GRAPH_KEYS:
            if key in wiring:
                raise ConfigError(f"{where}: '{spec}': '{key}' given twice")
            wiring[key] = text
            continue
        if key not in names:
            raise ConfigError(f"{where}: '{spec}': {kind} has no key '{key}'"
                              + f" (keys: {', '.join(names + list(GRAPH_KEYS))})")
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
    if kind in CONV_KINDS:
        if params["k"] is None and (params["kh"] is None or params["kw"] is None):
            raise ConfigError(f"{where}: '{spec}': {kind} needs k= or both kh= and kw=")
        for axis, square in (("kh", "k"), ("kw", "k"), ("ph", "p"), ("pw", "p")):
            if params[axis] is None:
                params[axis] = params[square]
    for key in ("out", "k", "s", "h", "w", "c", "kh", "kw"):
        if params.get(key) is not None and params[key] < 1:
            raise ConfigError(f"{where}: '{spec}': {key} must be >= 1")
    for key in ("p", "ph", "pw"):
        if kind in CONV_KINDS + POOL_KINDS and params.get(key, 0) < 0:
            raise ConfigError(f"{where}: '{spec}': {key} must be >= 0")
    if kind in POOL_KINDS and 2 * params["p"] > params["k"]:
        raise ConfigError(f"{where}: '{spec}': padding {params['p']} is more than half the kernel {params['k']}")
    if kind == "dropout" and not 0.0 <= params["p"] < 1.0:
        raise ConfigError(f"{where}: '{spec}': p must be in [0, 1)")
    if kind == "mbdisc" and not (params["kernels"] >= 1 and 1 <= params["dims"] <= 16 and params["std"] > 0.0):
        raise ConfigError(f"{where}: '{spec}': mbdisc needs kernels >= 1, 1 <= dims <= 16 and std > 0")
    if kind in ("bn", "ln", "mbstd") and not params["eps"] > 0.0:
        raise ConfigError(f"{where}: '{spec}': eps must be > 0")
    name = wiring.get("name")
    if name is not None and not _NAME.match(name):
        raise ConfigError(f"{where}: '{spec}': name '{name}' must be letters, digits and _ (not starting with a digit)")
    inputs = None
    if "in" in wiring:
        inputs = wiring["in"].split(",")
        for n in inputs:
            if not _NAME.match(n):
                raise ConfigError(f"{where}: '{spec}': in= names its inputs separated by commas, got '{wiring['in']}'")
    if kind in MULTI_INPUT_KINDS and (inputs is None or len(inputs) < 2):
        raise ConfigError(f"{where}: '{spec}': {kind} needs in= with 2 or more inputs (in=a,b)")
    if kind not in MULTI_INPUT_KINDS and inputs is not None and len(inputs) != 1:
        raise ConfigError(f"{where}: '{spec}': {kind} takes one input, in= names {len(inputs)}")
    return kind, params, name, inputs


def parse_layer(spec: str, where: str = "layer") -> tuple[str, dict]:
    """(kind, settings) of one layer string; its name= and in= are checked and left out."""
    kind, params, _, _ = parse_layer_string(spec, where)
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


class Concat(nn.Module):
    """Concatenation along channels (images of the same HxW) or features. When the output is an
    image, a feature input [N, F] becomes F constant channel maps (its values at every position);
    the inputs take their channels in the order of in=."""

    def __init__(self, out_hw: tuple[int, int] | None):
        super().__init__()
        self.out_hw = out_hw  # None: all inputs are features

    def forward(self, *xs):
        if self.out_hw is None:
            return torch.cat(xs, dim=1)
        h, w = self.out_hw
        return torch.cat([x if x.dim() == 4 else x[:, :, None, None].expand(-1, -1, h, w) for x in xs], dim=1)

    def extra_repr(self):
        return "features" if self.out_hw is None else f"images {self.out_hw[0]}x{self.out_hw[1]}, features broadcast"


class Resize(nn.Module):
    """resize h= w=: F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False,
    antialias=False), gancu's resize_bilinear op (NCHW here, the same pixels)."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.size = (h, w)

    def forward(self, x):
        return nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=False)

    def extra_repr(self):
        return f"size={self.size}, bilinear, align_corners=False"


class Add(nn.Module):
    """The elementwise sum of inputs of one shape."""

    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


class MinibatchDiscrimination(nn.Module):
    """mbdisc (Salimans et al. 2016): y = [f, o] with M = f T ([B, A, C]) and
    o[i, a] = sum_j exp(-sum_c |M[i,a,c] - M[j,a,c]|) (j = i included). Written the usual way, by
    broadcasting M[None] - M[:, None] into a [B, B, A, C] tensor; gancu's fused op never forms it."""

    def __init__(self, features: int, kernels: int, dims: int, std: float):
        super().__init__()
        self.weight = nn.Parameter(std * torch.randn(features, kernels, dims))  # gancu's [F, A, C]

    def forward(self, f):
        feats, kernels, dims = self.weight.shape
        m = (f @ self.weight.reshape(feats, kernels * dims)).reshape(-1, kernels, dims)
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # [B, B, A]
        return torch.cat([f, torch.exp(-dist).sum(0)], 1)


class MinibatchStd(nn.Module):
    """mbstd (Karras et al. 2018) over the whole batch: one more channel (or feature) holding the
    mean over all features of sqrt(biased batch variance + eps)."""

    def __init__(self, eps: float):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        s = torch.sqrt(x.var(0, unbiased=False) + self.eps).mean()
        extra = list(x.shape)
        extra[1] = 1  # NCHW images and [B, F] features both append along dim 1
        return torch.cat([x, s.expand(extra)], 1)


class Embed(nn.Embedding):
    """A learned class embedding read from one-hot label rows [N, classes]: the row of each
    sample's class, the position of its largest value (the first on ties, as torch.argmax and
    gancu). nn.Embedding's N(0, 1) init under both schemes, as gancu."""

    def forward(self, rows):
        return super().forward(rows.argmax(dim=1))


class Project(nn.Module):
    """The projection discriminator's term (Miyato & Koyama 2018): <weight[class], phi> per sample,
    [N, 1], from the features phi [N, F] and one-hot label rows [N, classes]. weight [classes, F]:
    N(0, 0.02) under the dcgan scheme (init_network), U(+-1/sqrt(F)) under pytorch's."""

    def __init__(self, features: int, classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, features))
        bound = 1.0 / math.sqrt(features)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, phi, rows):
        return (self.weight[rows.argmax(dim=1)] * phi).sum(dim=1, keepdim=True)


def shape_str(shape) -> str:
    return f"[{shape[1]}]" if shape[0] == "features" else f"[{shape[2]}x{shape[3]}x{shape[1]}] (HxWxC)"


class GraphNetwork(nn.Module):
    """The layers of a list of layer strings, run in their order.

    forward(x, want=None, **inputs): `x` is the main input (`input`), `inputs` the declared
    external inputs by name. Returns the last layer's output, or with `want` (a list of names)
    (output, {name: value}) with the named values (taps, heads) besides. Indexing, len() and
    iteration give the layers in order, as for nn.Sequential."""

    def __init__(self, modules: list[nn.Module], sources: list[list], names: dict, external: tuple[str, ...]):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)
        # sources[i]: the values layer i reads, each an int (a layer's index) or a str (an external input).
        self.sources = sources
        self.names = dict(names)  # name -> int | str, as in sources
        self.external = external
        self.is_chain = all(s == [i - 1] for i, s in enumerate(sources) if i > 0) and sources[0] == [MAIN_INPUT]
        # The layers whose output is no longer read after layer i (freed then, as a chain would).
        last_read: dict[int, int] = {}
        for i, srcs in enumerate(sources):
            for s in srcs:
                if isinstance(s, int):
                    last_read[s] = i
        self._free_after = [[] for _ in sources]
        for j, i in last_read.items():
            self._free_after[i].append(j)

    def __getitem__(self, i: int) -> nn.Module:
        return self._modules[str(i if i >= 0 else len(self) + i)]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x, want: list[str] | None = None, **inputs):
        unknown = sorted(set(inputs) - set(self.external))
        missing = sorted(set(self.external) - set(inputs) - {MAIN_INPUT})
        if unknown or missing:
            raise ValueError(f"network inputs: {'unknown ' + ', '.join(unknown) if unknown else ''}"
                             f"{'; ' if unknown and missing else ''}{'missing ' + ', '.join(missing) if missing else ''}"
                             f" (declared: {', '.join(self.external)})")
        layers = list(self._modules.values())
        if self.is_chain and not want:
            for m in layers:
                x = m(x)
            return x
        for n in want or []:
            if n not in self.names:
                raise ValueError(f"no value named '{n}' (names: {', '.join(self.names) or 'none'})")
        external = {MAIN_INPUT: x, **inputs}
        keep = {self.names[n] for n in want or [] if isinstance(self.names[n], int)}
        values: dict[int, torch.Tensor] = {}
        for i, m in enumerate(layers):
            values[i] = m(*[values[s] if isinstance(s, int) else external[s] for s in self.sources[i]])
            for j in self._free_after[i]:
                if j not in keep and j != len(layers) - 1:
                    del values[j]
        out = values[len(layers) - 1]
        if want is None:
            return out
        return out, {n: values[self.names[n]] if isinstance(self.names[n], int) else external[self.names[n]]
                     for n in want}


def _layer_module(kind: str, p: dict, ins: list[tuple], where: str, spec: str) -> tuple[nn.Module, tuple]:
    """The module of one layer string and its output shape, from its input shapes."""
    shape = ins[0]
    if kind == "concat":
        images = [s for s in ins if s[0] == "image"]
        if not images:
            return Concat(None), ("features", sum(s[1] for s in ins))
        hw = images[0][2:]
        for s in images[1:]:
            if s[2:] != hw:
                raise ConfigError(f"{where}: '{spec}': concat needs images of one size, got "
                                  f"{' and '.join(shape_str(s) for s in images)}")
        return Concat(hw), ("image", sum(s[1] for s in ins), *hw)
    if kind == "add":
        if any(s != shape for s in ins[1:]):
            raise ConfigError(f"{where}: '{spec}': add needs inputs of one shape, got {', '.join(shape_str(s) for s in ins)}")
        return Add(), shape
    if kind == "embed":
        if shape[0] != "features":
            raise ConfigError(f"{where}: '{spec}': embed reads class labels [N, classes] (in=label), got {shape_str(shape)}")
        if p["dim"] < 1:
            raise ConfigError(f"{where}: '{spec}': embed dim must be at least 1")
        return Embed(shape[1], p["dim"]), ("features", p["dim"])
    if kind == "project":
        if len(ins) != 2 or ins[0][0] != "features" or ins[1][0] != "features":
            raise ConfigError(f"{where}: '{spec}': project reads features and class labels (in=features,label), "
                              f"got {', '.join(shape_str(s) for s in ins)}")
        return Project(ins[0][1], ins[1][1]), ("features", 1)
    if kind == "linear":
        if shape[0] != "features":
            raise ConfigError(f"{where}: '{spec}': linear needs features, got an image {shape_str(shape)}; add 'flatten'")
        return nn.Linear(shape[1], p["out"], bias=p["bias"]), ("features", p["out"])
    if kind in ("conv", "convT"):
        if shape[0] != "image":
            raise ConfigError(f"{where}: '{spec}': {kind} needs an image, got features {shape_str(shape)}; add 'reshape'")
        _, c, h, w = shape
        kh, kw, s, ph, pw = p["kh"], p["kw"], p["s"], p["ph"], p["pw"]
        if kind == "conv":
            if h + 2 * ph < kh or w + 2 * pw < kw:
                raise ConfigError(f"{where}: '{spec}': a {kh}x{kw} kernel does not fit {h}x{w} padded by {ph}x{pw}")
            return (nn.Conv2d(c, p["out"], (kh, kw), stride=s, padding=(ph, pw), bias=p["bias"]),
                    ("image", p["out"], (h + 2 * ph - kh) // s + 1, (w + 2 * pw - kw) // s + 1))
        oh, ow = (h - 1) * s - 2 * ph + kh, (w - 1) * s - 2 * pw + kw
        if oh < 1 or ow < 1:
            raise ConfigError(f"{where}: '{spec}': output would be {oh}x{ow}")
        return (nn.ConvTranspose2d(c, p["out"], (kh, kw), stride=s, padding=(ph, pw), bias=p["bias"]),
                ("image", p["out"], oh, ow))
    if kind == "bn":
        bn = nn.BatchNorm1d if shape[0] == "features" else nn.BatchNorm2d
        return bn(shape[1], eps=p["eps"], momentum=p["momentum"]), shape
    if kind == "ln":
        # Normalize over all values of a sample, per-channel affine, biased variance: for images
        # GroupNorm with one group is exactly that (LayerNorm would want an affine per value).
        if shape[0] == "features":
            return nn.LayerNorm(shape[1], eps=p["eps"]), shape
        return nn.GroupNorm(1, shape[1], eps=p["eps"]), shape
    if kind == "mbdisc":
        if shape[0] != "features":
            raise ConfigError(f"{where}: '{spec}': mbdisc needs features, got an image {shape_str(shape)}; add 'flatten'")
        return (MinibatchDiscrimination(shape[1], p["kernels"], p["dims"], p["std"]),
                ("features", shape[1] + p["kernels"]))
    if kind == "mbstd":
        return MinibatchStd(p["eps"]), (shape[0], shape[1] + 1, *shape[2:])
    if kind == "relu":
        return nn.ReLU(), shape
    if kind == "lrelu":
        return nn.LeakyReLU(p["slope"]), shape
    if kind == "tanh":
        return nn.Tanh(), shape
    if kind == "sigmoid":
        return nn.Sigmoid(), shape
    if kind == "dropout":
        return nn.Dropout(p["p"]), shape
    if kind == "reshape":
        n = p["h"] * p["w"] * p["c"]
        if shape[0] != "features" or shape[1] != n:
            raise ConfigError(f"{where}: '{spec}': needs features of size {n}, got {shape_str(shape)}")
        return ReshapeNHWC(p["h"], p["w"], p["c"]), ("image", p["c"], p["h"], p["w"])
    if kind == "resize":
        if shape[0] != "image":
            raise ConfigError(f"{where}: '{spec}': resize needs an image, got features {shape_str(shape)}; add 'reshape'")
        return Resize(p["h"], p["w"]), ("image", shape[1], p["h"], p["w"])
    if kind == "flatten":
        if shape[0] != "image":
            raise ConfigError(f"{where}: '{spec}': flatten needs an image, got features {shape_str(shape)}")
        return FlattenNHWC(), ("features", shape[1] * shape[2] * shape[3])
    assert kind in POOL_KINDS, kind
    # gancu pools NHWC images; here they are NCHW, which pools the same windows.
    if shape[0] != "image":
        raise ConfigError(f"{where}: '{spec}': {kind} needs an image, got features {shape_str(shape)}; add 'reshape'")
    _, c, h, w = shape
    k, s, pad = p["k"], p["s"], p["p"]
    if h + 2 * pad < k or w + 2 * pad < k:
        raise ConfigError(f"{where}: '{spec}': a {k}x{k} window does not fit {h}x{w} padded by {pad}")
    out = ("image", c, (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
    if kind == "maxpool":
        return nn.MaxPool2d(k, stride=s, padding=pad), out
    # gancu divides by k*k, or with include_pad=false by the window's pixels inside the image
    return nn.AvgPool2d(k, stride=s, padding=pad, count_include_pad=p["include_pad"]), out


def build_network(specs: list[str], in_shape: tuple, name: str, inputs: dict | None = None
                  ) -> tuple[GraphNetwork, tuple, list[tuple[str, dict]]]:
    """One module per layer string, in order. `in_shape` is the shape of `input`; `inputs` maps
    the names of further external inputs to their shapes. Returns (network, output shape, parsed
    (kind, settings) per string)."""
    external = {MAIN_INPUT: in_shape, **(inputs or {})}
    for n in external:
        if not _NAME.match(n):
            raise ConfigError(f"model.{name}: external input name '{n}' must be letters, digits and _")
    if not specs:
        raise ConfigError(f"model.{name}: no layers")
    wired = [parse_layer_string(spec, f"model.{name}[{i}]") for i, spec in enumerate(specs)]
    defined_at = {n: i for i, (_, _, n, _) in enumerate(wired) if n is not None}
    modules, parsed, sources, shapes = [], [], [], []
    names: dict = {n: n for n in external}
    for i, (spec, (kind, p, own, ins)) in enumerate(zip(specs, wired)):
        where = f"model.{name}[{i}]"
        srcs = []
        for n in ins if ins is not None else [MAIN_INPUT if i == 0 else None]:
            if n is None:
                srcs.append(i - 1)
            elif n in names:
                srcs.append(names[n])
            elif n in defined_at:
                raise ConfigError(f"{where}: '{spec}': in={n} is defined later (model.{name}[{defined_at[n]}]); "
                                  f"a layer reads only outputs of the layers before it")
            else:
                raise ConfigError(f"{where}: '{spec}': unknown input '{n}' (known here: {', '.join(names)})")
        in_shapes = [shapes[s] if isinstance(s, int) else external[s] for s in srcs]
        module, out_shape = _layer_module(kind, p, in_shapes, where, spec)
        if own is not None:
            if own in names:
                first = names[own]
                was = "an external input" if isinstance(first, str) else f"the name of model.{name}[{first}]"
                raise ConfigError(f"{where}: '{spec}': name={own} is already {was}; a name is given once")
            names[own] = i
        modules.append(module)
        parsed.append((kind, p))
        sources.append(srcs)
        shapes.append(out_shape)
    return GraphNetwork(modules, sources, names, tuple(external)), shapes[-1], parsed


def init_network(net: nn.Module, scheme: str) -> None:
    """dcgan: conv/convT/linear weights N(0, 0.02), biases 0; batch-norm weight N(1, 0.02), bias 0.
    Layer norm keeps weight 1, bias 0 under both schemes (the DCGAN scheme is about batch norm).
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
            elif isinstance(m, Project):
                m.weight.normal_(0.0, 0.02)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
