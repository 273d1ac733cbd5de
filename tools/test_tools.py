#!/usr/bin/env python3
"""Self-checks of the PyTorch peer (tools/gancu_torch.py, gancu_graph.py, gancu_objectives.py,
step_reference.py). About 20 s on a laptop CPU. Run: /usr/bin/python3 tools/test_tools.py [-v]

The parameter counts below were worked out by hand from the presets; gancu checks its own
counts against the same numbers.
"""

import io
import json
import math
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import gancu_objectives as go  # noqa: E402
import gancu_torch as gt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def build_dir() -> Path:
    """The build folder the tests of gancu's binary use: $GANCU_BUILD_DIR, default build/."""
    return REPO / os.environ.get("GANCU_BUILD_DIR", "build")


def gancu_binary() -> Path:
    """The gancu binary under test: $GANCU_BINARY, default the build folder's gancu."""
    return Path(os.environ.get("GANCU_BINARY", build_dir() / "gancu"))


def built_gancu(test: unittest.TestCase) -> Path:
    """gancu_binary(), failing the test when it is missing: a test that needs the binary must not
    pass, or skip, without it (tools/test.sh builds it first)."""
    binary = gancu_binary()
    if not binary.exists():
        test.fail(f"{binary} is missing: build gancu first")
    return binary


# preset -> (G parameters, D parameters), worked out by hand:
#  mlp     G: (100*256+256) + 2*256 + (256*512+512) + 2*512 + (512*1024+1024) + 2*1024 + (1024*784+784)
#          D: (784*512+512) + (512*256+256) + (256+1)
#  dcgan   G: 100*12544 + 2*12544 + 256*128*16 + 2*128 + 128*64*16 + 2*64 + (64*9+1)
#          D: (16*64+64) + 64*128*16 + 2*128 + (6272+1)
#  dcgan32 G: 100*4096 + 2*4096 + 256*128*16 + 2*128 + 128*64*16 + 2*64 + (64*3*16+3)
#          D: (3*16*64+64) + 64*128*16 + 2*128 + 128*256*16 + 2*256 + (4096+1)
#  stacked-mnist: dcgan with 3 channels: G's last conv 64*9*3+3, D's first conv 3*16*64+64
#  mbdisc  dcgan's G; D: dcgan's D with T 6272*100*5 and the last linear (6272+100+1)
#  mbstd   dcgan's G; D: dcgan's D with the last linear over 7*7*129 features: (6321+1)
#  mlp-uniform      mlp's networks (only the noise, batch and steps differ)
#  mlp-distance     mlp's networks and G's distance head: linear 1024 -> 1 (1024+1)
#  dcgan-uniform32  dcgan with z of 32: G's first linear 32*12544 instead of 100*12544
#  cgan    dcgan with 10 one-hot label features into G's first linear (10*12544) and 10 label
#          channels into D's first conv (10*16*64)
#  cwgan-gp G: a label embedding 10*50 and 50 more features into G's first linear (50*12544);
#          D: wgan-gp's critic and the projection table 10*6272
#  ring8, grid25 G: (2*256+256) + (256*256+256) + (256*2+2)
#                D: (2*256+256) + (256*256+256) + (256+1)
PARAM_COUNTS = {
    "mlp": (1489936, 533505),
    "mlp-uniform": (1489936, 533505),
    "mlp-distance": (1489936 + 1025, 533505),
    "dcgan-uniform32": (1935809 - 68 * 12544, 138689),
    "dcgan": (1935809, 138689),
    "dcgan32": (1076611, 663361),
    # dcgan64: the PyTorch DCGAN tutorial's networks (3,576,704 and 2,765,568 parameters)
    "dcgan64": (3576704, 2765568),
    "stacked-mnist": (1936963, 140737),
    "ring8": (67074, 66817),
    "grid25": (67074, 66817),
    "wgan-gp": (1935809, 138561),
    "wgan": (1935809, 138689),
    "lsgan": (1935809, 138689),
    "hinge": (1935809, 138689),
    "dragan": (1935809, 138561),
    "r1": (1935809, 138561),
    "began": (1935809, 471297),
    "mbdisc": (1935809, 3274789),
    "mbstd": (1935809, 138738),
    "cgan": (1935809 + 10 * 12544, 138689 + 10 * 16 * 64),
    "cwgan-gp": (1935809 + 10 * 50 + 50 * 12544, 138561 + 10 * 6272),
}


# Presets the peer refuses (train.mode other than "gan"): the supervised generator has no D.
NOT_GANS = ("supervised",)


def gan_preset_names() -> list[str]:
    return [n for n in gt.preset_names() if n not in NOT_GANS]


class Presets(unittest.TestCase):
    def test_param_counts(self):
        self.assertEqual(sorted(PARAM_COUNTS), gan_preset_names())
        for name, (g, d) in PARAM_COUNTS.items():
            G, D, _ = gt.build_models(gt.load_config(name))
            self.assertEqual((gt.count_params(G), gt.count_params(D)), (g, d), name)

    def test_supervised_generator_is_refused(self):
        for name in NOT_GANS:
            with self.assertRaisesRegex(gt.ConfigError, "train.mode"):
                gt.load_config(name)

    def test_shapes(self):
        for name, shape in (("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28)), ("dcgan32", (3, 32, 32)),
                            ("dcgan64", (3, 64, 64))):
            G, D, img = gt.build_models(gt.load_config(name))
            self.assertEqual(img, shape)
            x = G(torch.randn(3, 100))
            self.assertEqual(tuple(x.shape), (3, *shape))
            self.assertEqual(tuple(D(x).shape), (3, 1))

    def test_dcgan_init(self):
        G, D, _ = gt.build_models(gt.load_config("dcgan"))
        w = G[0].weight
        self.assertAlmostEqual(w.std().item(), 0.02, delta=0.001)
        self.assertAlmostEqual(G[1].weight.mean().item(), 1.0, delta=0.002)
        self.assertEqual(G[1].bias.abs().max().item(), 0.0)
        self.assertEqual(D[0].bias.abs().max().item(), 0.0)


class Specs(unittest.TestCase):
    def test_parse(self):
        self.assertEqual(gt.parse_layer("linear 256"), ("linear", {"out": 256, "bias": True}))
        self.assertEqual(gt.parse_layer("conv out=8 k=3 bias=false"),
                         ("conv", {"out": 8, "k": 3, "s": 1, "p": 0, "bias": False, "kh": 3, "kw": 3, "ph": 0, "pw": 0}))
        self.assertEqual(gt.parse_layer("lrelu 0.1")[1]["slope"], 0.1)
        self.assertEqual(gt.parse_layer("bn")[1], {"momentum": 0.1, "eps": 1e-5})
        for bad in ("linaer 3", "linear", "linear out=3 foo=1", "linear out=x", "conv out=3",
                    "linear out=3 bias=yes", "relu 3", "linear 3 4", "dropout p=1.5", "linear out=3 out=4"):
            with self.assertRaises(gt.ConfigError, msg=bad):
                gt.parse_layer(bad)

    def test_network_errors(self):
        for specs, in_shape in ((["conv out=3 k=3"], ("features", 10)), (["linear 3"], ("image", 1, 4, 4)),
                                (["reshape h=2 w=2 c=2"], ("features", 7)), (["flatten"], ("features", 4))):
            with self.assertRaises(gt.ConfigError, msg=str(specs)):
                gt.build_network(specs, in_shape, "test")

    def test_pooling_layers(self):
        self.assertEqual(gt.parse_layer("maxpool 2"), ("maxpool", {"k": 2, "s": 2, "p": 0}))
        self.assertEqual(gt.parse_layer("avgpool k=3 s=1 p=1"),
                         ("avgpool", {"k": 3, "s": 1, "p": 1, "include_pad": True}))
        for bad in ("maxpool", "maxpool k=3 p=2", "avgpool k=2 out=3", "avgpool k=0", "maxpool k=2 s=0"):
            with self.assertRaises(gt.ConfigError, msg=bad):
                gt.parse_layer(bad)
        for specs, in_shape in ((["maxpool 2"], ("features", 10)), (["avgpool k=5"], ("image", 1, 4, 4))):
            with self.assertRaises(gt.ConfigError, msg=str(specs)):
                gt.build_network(specs, in_shape, "test")
        # The network of gancu's PoolingNetworkMatchesFiniteDifferences test: the same output shape.
        net, shape, _ = gt.build_network(["conv out=4 k=3 s=1 p=1", "relu", "maxpool k=3 s=2 p=1", "conv out=3 k=3",
                                          "avgpool k=2 s=1", "flatten", "linear out=2"], ("image", 2, 9, 9), "D")
        self.assertEqual(shape, ("features", 2))
        self.assertEqual(tuple(net(torch.randn(3, 2, 9, 9)).shape), (3, 2))
        self.assertIsInstance(net[2], torch.nn.MaxPool2d)
        self.assertTrue(net[4].count_include_pad)
        self.assertEqual(gt.count_params(net), (2 * 9 * 4 + 4) + (4 * 9 * 3 + 3) + (12 * 2 + 2))

    def test_pooling_matches_gancu_semantics(self):
        """The peer's pooling against gancu's definition (ops.h, PoolDims) written out on NHWC arrays:
        max over the window's pixels (padding ignored), or the window's sum / k^2 (padding as zeros)."""
        rng = np.random.default_rng(3)
        for k, s, pad, h, w in ((2, 2, 0, 5, 7), (3, 2, 1, 7, 5), (3, 1, 1, 6, 6), (2, 1, 1, 3, 4)):
            x = rng.standard_normal((2, h, w, 3)).astype(np.float64)  # NHWC
            p_out, q_out = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
            want_max = np.zeros((2, p_out, q_out, 3))
            want_avg = np.zeros((2, p_out, q_out, 3))
            for p in range(p_out):
                for q in range(q_out):
                    h0, w0 = p * s - pad, q * s - pad
                    win = x[:, max(h0, 0):min(h0 + k, h), max(w0, 0):min(w0 + k, w), :]
                    want_max[:, p, q, :] = win.max(axis=(1, 2))
                    want_avg[:, p, q, :] = win.sum(axis=(1, 2)) / (k * k)
            xt = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW
            for kind, want in (("maxpool", want_max), ("avgpool", want_avg)):
                net, shape, _ = gt.build_network([f"{kind} k={k} s={s} p={pad}"], ("image", 3, h, w), "D")
                self.assertEqual(shape, ("image", 3, p_out, q_out))
                got = net(xt).permute(0, 2, 3, 1).numpy()
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"{kind} k{k} s{s} p{pad}")

    def test_inception_layers(self):
        """Per-axis convolution kernels and padding, average pooling without the padding in its
        count, bilinear resize: parsing, errors, and the modules (the network of gancu's
        Network.InceptionLayersDescribeThemselves: the same shapes and parameter count)."""
        self.assertEqual(gt.parse_layer("conv out=192 kh=1 kw=7 ph=0 pw=3 bias=false"),
                         ("conv", {"out": 192, "k": None, "s": 1, "p": 0, "bias": False, "kh": 1, "kw": 7, "ph": 0,
                                   "pw": 3}))
        self.assertEqual(gt.parse_layer("convT out=2 k=3 p=1 kw=1 pw=0")[1],
                         {"out": 2, "k": 3, "s": 1, "p": 1, "bias": True, "kh": 3, "kw": 1, "ph": 1, "pw": 0})
        self.assertEqual(gt.parse_layer("avgpool k=3 s=1 p=1 include_pad=false")[1]["include_pad"], False)
        self.assertEqual(gt.parse_layer("resize h=299 w=299"), ("resize", {"h": 299, "w": 299}))
        for bad in ("conv out=3 kh=3", "conv out=3 kw=3 pw=1", "conv out=3 k=3 ph=-1", "conv out=3 kh=0 kw=3",
                    "maxpool k=3 p=1 include_pad=false", "avgpool k=3 include_pad=maybe", "resize h=4", "resize h=4 w=0"):
            with self.assertRaises(gt.ConfigError, msg=bad):
                gt.parse_layer(bad)
        with self.assertRaises(gt.ConfigError):
            gt.build_network(["resize h=4 w=4"], ("features", 10), "test")
        net, shape, _ = gt.build_network(["resize h=9 w=8", "conv out=4 kh=1 kw=7 ph=0 pw=3 bias=false",
                                          "conv out=4 k=3 p=1", "conv out=4 kh=3 kw=1 p=1 pw=0",
                                          "avgpool k=3 s=1 p=1 include_pad=false", "convT out=2 kh=1 kw=3 pw=1"],
                                         ("image", 3, 5, 5), "D")
        self.assertEqual(shape, ("image", 2, 9, 8))
        self.assertEqual(tuple(net(torch.randn(2, 3, 5, 5)).shape), (2, 2, 9, 8))
        self.assertEqual(tuple(net[1].weight.shape), (4, 3, 1, 7))
        self.assertEqual(net[1].padding, (0, 3))
        self.assertEqual(tuple(net[3].weight.shape), (4, 4, 3, 1))
        self.assertFalse(net[4].count_include_pad)
        self.assertEqual(tuple(net[5].weight.shape), (4, 2, 1, 3))
        self.assertEqual(gt.count_params(net), 84 + 148 + 52 + 26)

    def test_inception_layers_match_gancu_semantics(self):
        """The peer's resize and average pooling without the padding in the count against gancu's
        definitions (ops.h, resize_bilinear_forward; PoolDims) written out on NHWC arrays."""
        rng = np.random.default_rng(4)

        def taps(j, n_in, n_out):
            src = max((j + 0.5) * n_in / n_out - 0.5, 0.0)
            i0 = int(np.floor(src))
            return i0, min(i0 + 1, n_in - 1), src - i0

        for h, w, oh, ow in ((3, 5, 4, 3), (4, 4, 11, 7), (9, 6, 2, 13), (1, 1, 3, 2)):
            x = rng.standard_normal((2, h, w, 3))
            want = np.zeros((2, oh, ow, 3))
            for oy in range(oh):
                a0, a1, la = taps(oy, h, oh)
                for ox in range(ow):
                    b0, b1, lb = taps(ox, w, ow)
                    top = (1 - lb) * x[:, a0, b0] + lb * x[:, a0, b1]
                    bottom = (1 - lb) * x[:, a1, b0] + lb * x[:, a1, b1]
                    want[:, oy, ox] = (1 - la) * top + la * bottom
            net, shape, _ = gt.build_network([f"resize h={oh} w={ow}"], ("image", 3, h, w), "D")
            self.assertEqual(shape, ("image", 3, oh, ow))
            got = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"resize {h}x{w} -> {oh}x{ow}")
        for k, s, pad, h, w in ((3, 1, 1, 6, 5), (3, 2, 1, 7, 5), (4, 1, 2, 5, 6)):
            x = rng.standard_normal((2, h, w, 3))
            p_out, q_out = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
            want = np.zeros((2, p_out, q_out, 3))
            for p in range(p_out):
                for q in range(q_out):
                    h0, w0 = p * s - pad, q * s - pad
                    win = x[:, max(h0, 0):min(h0 + k, h), max(w0, 0):min(w0 + k, w), :]
                    want[:, p, q, :] = win.sum(axis=(1, 2)) / (win.shape[1] * win.shape[2])
            net, _, _ = gt.build_network([f"avgpool k={k} s={s} p={pad} include_pad=false"], ("image", 3, h, w), "D")
            got = net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"avgpool k{k} s{s} p{pad}")

    def test_nhwc_reshape_and_flatten(self):
        n, h, w, c = 2, 3, 4, 5
        feats = torch.arange(n * h * w * c, dtype=torch.float32).reshape(n, -1)
        img = gt.ReshapeNHWC(h, w, c)(feats)
        self.assertEqual(tuple(img.shape), (n, c, h, w))
        for (i, y, x, ch) in ((0, 0, 0, 1), (1, 2, 3, 4), (1, 1, 2, 0)):
            self.assertEqual(img[i, ch, y, x].item(), feats[i, (y * w + x) * c + ch].item())
        self.assertTrue(torch.equal(gt.FlattenNHWC()(img), feats))


class Config(unittest.TestCase):
    def test_set(self):
        cfg = gt.load_config("dcgan", ["train.batch=8", "optim.g.lr=1e-3", "optim.d.lr=1",
                                       "model.latent=uniform", "model.init='pytorch'"])
        self.assertEqual(cfg["train"]["batch"], 8)
        self.assertEqual(cfg["optim"]["g"]["lr"], 1e-3)
        self.assertIsInstance(cfg["optim"]["d"]["lr"], float)
        self.assertEqual(cfg["model"]["latent"], "uniform")
        self.assertEqual(cfg["model"]["init"], "pytorch")
        for bad in (["train.batch=abc"], ["train.batch=1.5"], ["train=3"], ["train.batch"], ["train.loss=wasserstein"],
                    ["model.latent=gaussian"], ["train.batch=0"], ["train.feature_matching=features"]):
            with self.assertRaises(gt.ConfigError, msg=str(bad)):
                gt.load_config("dcgan", bad)
        with self.assertRaises(gt.ConfigError):
            gt.load_config("nosuchpreset")
        with redirect_stderr(io.StringIO()):
            self.assertEqual(gt.load_config("mlp", ["train.new_key=true"])["train"]["new_key"], True)

    def test_file_path(self):
        cfg = gt.load_config(str(gt.PRESET_DIR / "mlp.toml"))
        self.assertEqual(cfg["model"]["z_dim"], 100)


class Files(unittest.TestCase):
    def test_safetensors_roundtrip(self):
        tensors = {"G.0.weight": np.random.randn(3, 4).astype(np.float32), "x_u8": np.arange(6, dtype=np.uint8).reshape(2, 3),
                   "scalar": np.array(1.5, dtype=np.float64), "i": np.array([1, -2], dtype=np.int64),
                   "empty": np.zeros((0, 3), np.float32)}
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "t.safetensors"
            gt.write_safetensors(p, tensors, {"a": "b"})
            raw = p.read_bytes()
            n = int.from_bytes(raw[:8], "little")
            self.assertEqual((8 + n) % 8, 0)
            back, meta = gt.read_safetensors(p)
            self.assertEqual(meta, {"a": "b"})
            for k, v in tensors.items():
                self.assertEqual(back[k].dtype, v.dtype, k)
                np.testing.assert_array_equal(back[k], v, k)
            try:
                from safetensors.numpy import load_file
            except ImportError:
                load_file = None
            if load_file is not None:  # the reference reader agrees
                for k, v in load_file(str(p)).items():
                    np.testing.assert_array_equal(v, tensors[k], k)
            ck = gt.load_gancu_checkpoint(p)
            self.assertTrue(torch.equal(ck["G.0.weight"], torch.from_numpy(tensors["G.0.weight"])))

    def test_safetensors_bf16(self):
        vals = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
        bf = (vals.view(np.uint32) >> 16).astype("<u2")
        header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "b.safetensors"
            p.write_bytes(len(header).to_bytes(8, "little") + header + bf.tobytes())
            np.testing.assert_array_equal(gt.read_safetensors(p)[0]["w"], vals)
            p.write_bytes(len(header).to_bytes(8, "little") + header + bf.tobytes()[:4])
            with self.assertRaises(gt.ConfigError):
                gt.read_safetensors(p)

    def test_idx_roundtrip(self):
        a = np.random.default_rng(0).integers(0, 256, (5, 7, 6), dtype=np.uint8)
        with tempfile.TemporaryDirectory() as d:
            gt.write_idx_u8(Path(d) / "x-idx3-ubyte", a)
            np.testing.assert_array_equal(gt.read_idx(Path(d) / "x-idx3-ubyte"), a)

    def test_checkpoint_apply(self):
        G, D, _ = gt.build_models(gt.load_config("dcgan"), seed=1)
        G2, D2, _ = gt.build_models(gt.load_config("dcgan"), seed=2)
        state = gt.checkpoint_state(G, D)
        self.assertNotIn("G.1.num_batches_tracked", state)
        self.assertEqual(gt.apply_checkpoint(G2, D2, state), [])
        for k, v in gt.checkpoint_state(G2, D2).items():
            self.assertTrue(torch.equal(v, state[k]), k)
        del state["D.0.weight"]
        with self.assertRaises(gt.ConfigError):
            gt.apply_checkpoint(G2, D2, state)

    def test_grid_layout(self):
        x = torch.full((10, 1, 3, 4), 1.0)  # white images
        g = gt.make_grid_u8(gt.images_to_u8(x), ncol=8, pad=2)
        self.assertEqual(g.shape, (2 + 2 * (3 + 2), 2 + 8 * (4 + 2), 1))
        self.assertEqual(g[2, 2, 0], 255)
        self.assertEqual(g[1, 2, 0], 0)
        self.assertEqual(g[2 + 5, 2 + 6 * 1, 0], 255)    # image 9: row 1, column 1
        self.assertEqual(g[2 + 5, 2 + 6 * 2, 0], 0)      # no image 10
        self.assertEqual(gt.images_to_u8(torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4)).ravel().tolist(),
                         [0, 128, 255, 255])

    def test_normalize(self):
        u = torch.arange(256, dtype=torch.uint8)
        want = u.numpy().astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
        np.testing.assert_array_equal(gt.normalize_u8(u).numpy(), want)


class Graph(unittest.TestCase):
    """name=, in=, concat, add and ln against the same network written out in torch by hand."""

    def test_image_graph_matches_hand_written_torch(self):
        specs = ["conv out=3 k=3 p=1 name=a", "lrelu 0.1 name=h", "conv out=3 k=3 p=1 in=input name=b",
                 "add in=h,b name=s", "concat in=s,labels,a name=cat", "ln eps=1e-4", "flatten name=feat", "linear 2"]
        net, shape, parsed = gt.build_network(specs, ("image", 2, 5, 6), "D", {"labels": ("features", 4)})
        self.assertEqual(shape, ("features", 2))
        self.assertEqual([k for k, _ in parsed], ["conv", "lrelu", "conv", "add", "concat", "ln", "flatten", "linear"])
        self.assertEqual(list(net.state_dict()), ["0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias",
                                                  "7.weight", "7.bias"])
        self.assertEqual(tuple(net[5].weight.shape), (10,))  # 3 + 4 + 3 channels
        self.assertEqual(tuple(net[7].weight.shape), (2, 10 * 5 * 6))
        with torch.no_grad():  # not the default init, so that a swapped weight and bias would show
            net[5].weight.normal_()
            net[5].bias.normal_()
        x, labels = torch.randn(3, 2, 5, 6, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
        net.double()
        out, taps = net(x, want=["feat", "cat", "labels"], labels=labels)

        p = dict(net.named_parameters())
        a = F.conv2d(x, p["0.weight"], p["0.bias"], padding=1)
        h = torch.where(a > 0, a, 0.1 * a)
        b = F.conv2d(x, p["2.weight"], p["2.bias"], padding=1)
        cat = torch.cat([h + b, labels.view(3, 4, 1, 1).expand(3, 4, 5, 6), a], dim=1)
        mu = cat.mean(dim=(1, 2, 3), keepdim=True)
        var = ((cat - mu) ** 2).mean(dim=(1, 2, 3), keepdim=True)  # biased
        ln = (cat - mu) / torch.sqrt(var + 1e-4) * p["5.weight"].view(1, -1, 1, 1) + p["5.bias"].view(1, -1, 1, 1)
        feat = ln.permute(0, 2, 3, 1).reshape(3, -1)  # NHWC order
        want = feat @ p["7.weight"].T + p["7.bias"]
        torch.testing.assert_close(taps["cat"], cat, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(taps["feat"], feat, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
        self.assertIs(taps["labels"], labels)
        torch.testing.assert_close(net(x, labels=labels), want, rtol=1e-12, atol=1e-12)


    def test_label_layers(self):
        # gancu's embed and project: the class is the position of each label row's largest value.
        specs = ["embed dim=3 in=label name=e", "concat in=input,e", "flatten name=phi", "linear 1 name=score",
                 "project in=phi,label", "add in=score,4"]
        with self.assertRaises(gt.ConfigError):  # add reads a name that is not defined
            gt.build_network(specs, ("image", 1, 2, 2), "D", {"label": ("features", 4)})
        specs[-2] += " name=proj"
        specs[-1] = "add in=score,proj"
        net, shape, _ = gt.build_network(specs, ("image", 1, 2, 2), "D", {"label": ("features", 4)})
        self.assertEqual(shape, ("features", 1))
        self.assertEqual(list(net.state_dict()), ["0.weight", "3.weight", "3.bias", "4.weight"])
        self.assertEqual(tuple(net[4].weight.shape), (4, 4 * 4))  # classes x (1 + 3 channels) * 2 * 2
        net.double()
        x = torch.randn(3, 1, 2, 2, dtype=torch.float64)
        labels = torch.tensor([[0, 1, 0, 0], [0.5, 0, 0.2, 0], [0, 0, 0, 1]], dtype=torch.float64)
        out, taps = net(x, want=["e", "phi"], label=labels)
        cls = [1, 0, 3]
        torch.testing.assert_close(taps["e"], net[0].weight[cls])
        p = dict(net.named_parameters())
        want = taps["phi"] @ p["3.weight"].T + p["3.bias"] + (p["4.weight"][cls] * taps["phi"]).sum(1, keepdim=True)
        torch.testing.assert_close(out, want)
        for bad in (["embed dim=2"], ["flatten", "project in=input,label"]):  # an image where features belong
            with self.assertRaises(gt.ConfigError, msg=str(bad)):
                gt.build_network(bad, ("image", 1, 2, 2), "D", {"label": ("features", 4)})
    def test_feature_graph_matches_hand_written_torch(self):
        specs = ["linear 3 name=a", "tanh name=t", "concat in=input,t name=c", "ln", "linear 3 name=d", "add in=a,d,a"]
        net, shape, _ = gt.build_network(specs, ("features", 2), "G")
        self.assertEqual(shape, ("features", 3))
        self.assertEqual(tuple(net[3].weight.shape), (5,))
        net.double()
        with torch.no_grad():
            net[3].weight.normal_()
            net[3].bias.normal_()
        z = torch.randn(4, 2, dtype=torch.float64)
        p = dict(net.named_parameters())
        a = z @ p["0.weight"].T + p["0.bias"]
        c = torch.cat([z, torch.tanh(a)], dim=1)
        mu, var = c.mean(1, keepdim=True), c.var(1, unbiased=False, keepdim=True)
        ln = (c - mu) / torch.sqrt(var + 1e-5) * p["3.weight"] + p["3.bias"]
        d = ln @ p["4.weight"].T + p["4.bias"]
        torch.testing.assert_close(net(z), a + d + a, rtol=1e-12, atol=1e-12)

    def test_minibatch_layers_match_their_definitions(self):
        import numpy as np
        net, shape, _ = gt.build_network(["linear 6", "mbdisc kernels=3 dims=2 std=0.7", "mbstd"], ("features", 4), "D")
        self.assertEqual(shape, ("features", 10))
        self.assertEqual(tuple(net[1].weight.shape), (6, 3, 2))  # gancu's [F, A, C]
        net.double()
        z = torch.randn(5, 4, dtype=torch.float64)
        f = (z @ net[0].weight.T + net[0].bias).detach().numpy()
        T = net[1].weight.detach().numpy()
        m = np.einsum("bf,fac->bac", f, T)
        o = np.array([[sum(np.exp(-np.abs(m[i, a] - m[j, a]).sum()) for j in range(5)) for a in range(3)]
                      for i in range(5)])
        y = np.concatenate([f, o], 1)
        s = np.sqrt(y.var(0) + 1e-8).mean()
        want = np.concatenate([y, np.full((5, 1), s)], 1)
        np.testing.assert_allclose(net(z).detach().numpy(), want, rtol=1e-12, atol=1e-12)
        # On images the statistic is one more channel (NCHW here, the last channel in gancu's NHWC).
        img, shape, _ = gt.build_network(["mbstd"], ("image", 2, 3, 3), "D")
        self.assertEqual(shape, ("image", 3, 3, 3))
        x = torch.randn(4, 2, 3, 3, dtype=torch.float64)
        out = img(x)
        torch.testing.assert_close(out[:, :2], x)
        torch.testing.assert_close(out[:, 2], torch.full((4, 3, 3), float(torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean()),
                                                          dtype=torch.float64))
        with self.assertRaises(gt.ConfigError):
            gt.build_network(["mbdisc dims=17"], ("features", 4), "D")
        with self.assertRaises(gt.ConfigError):
            gt.build_network(["mbdisc"], ("image", 1, 2, 2), "D")

    def test_chains_keep_their_modules(self):
        net, _, _ = gt.build_network(["linear 4", "ln", "lrelu", "linear 1"], ("features", 3), "D")
        self.assertIsInstance(net[1], torch.nn.LayerNorm)
        self.assertEqual(gt.count_params(net), (3 * 4 + 4) + 2 * 4 + (4 + 1))
        self.assertEqual(len(net), 4)
        img, _, _ = gt.build_network(["conv out=3 k=3", "ln eps=0.01"], ("image", 1, 5, 5), "D")
        self.assertIsInstance(img[1], torch.nn.GroupNorm)
        self.assertEqual((img[1].num_groups, img[1].eps), (1, 0.01))

    def test_errors(self):
        img = ("image", 1, 6, 6)
        for specs, needle in (
                (["relu in=nosuch"], "unknown input 'nosuch'"),
                (["relu name=a", "relu name=a"], "given once"),
                (["relu name=input"], "given once"),
                (["relu in=b", "relu name=b"], "defined later"),
                (["conv out=2 k=3 name=c", "concat in=c,input"], "images of one size"),
                (["conv out=2 k=3 p=1 name=c", "add in=c,input"], "one shape"),
                (["concat in=input"], "2 or more"),
                (["add"], "2 or more"),
                (["relu in=input,input"], "one input"),
                (["relu name=1x"], "letters"),
                (["relu in=input in=input"], "twice"),
                (["ln momentum=0.1"], "no key"),
                (["ln eps=0"], "eps")):
            with self.assertRaises(gt.ConfigError, msg=str(specs)) as cm:
                gt.build_network(specs, img, "D")
            self.assertIn(needle, str(cm.exception))
            self.assertIn("model.D[", str(cm.exception))
        net, _, _ = gt.build_network(["concat in=input,labels"], img, "D", {"labels": ("features", 3)})
        with self.assertRaises(ValueError):  # a declared input that forward is not given
            net(torch.randn(2, 1, 6, 6))
        with self.assertRaises(ValueError):
            net(torch.randn(2, 1, 6, 6), labels=torch.randn(2, 3), other=torch.randn(2, 3))
        with self.assertRaises(ValueError):
            net(torch.randn(2, 1, 6, 6), want=["nosuch"], labels=torch.randn(2, 3))


def _softplus(v):
    return np.logaddexp(0.0, v)


class Objectives(unittest.TestCase):
    """Each objective's loss terms against its formula written in numpy."""

    def test_losses(self):
        rng = np.random.default_rng(4)
        lr, lf, lg = (rng.standard_normal((6, 1)) * 2 for _ in range(3))
        bce = lambda v, t: float(np.mean(_softplus(v) - t * v))  # noqa: E731
        want = {  # loss: (D's real term, D's fake term, G's loss)
            "bce": (bce(lr, 0.9), bce(lf, 0.0), bce(lg, 1.0)),
            "bce-minimax": (bce(lr, 0.9), bce(lf, 0.0), -bce(lg, 0.0)),
            "lsgan": (0.5 * np.mean((lr - 1) ** 2), 0.5 * np.mean(lf ** 2), 0.5 * np.mean((lg - 1) ** 2)),
            "hinge": (np.mean(np.maximum(0, 1 - lr)), np.mean(np.maximum(0, 1 + lf)), -np.mean(lg)),
            "wgan": (-np.mean(lr), np.mean(lf), -np.mean(lg)),
            "wgan-gp": (-np.mean(lr), np.mean(lf), -np.mean(lg)),
            "dragan": (bce(lr, 0.9), bce(lf, 0.0), bce(lg, 1.0)),
            "r1": (bce(lr, 0.9), bce(lf, 0.0), bce(lg, 1.0)),
        }
        t = lambda a: torch.from_numpy(a)  # noqa: E731
        for loss, (wr, wf, wg) in want.items():
            obj = gt.Objective(loss, real_target=0.9)
            got = (obj.d_real_loss(t(lr)).item(), obj.d_fake_loss(t(lf)).item(), obj.g_loss(t(lg)).item())
            np.testing.assert_allclose(got, (wr, wf, wg), rtol=1e-12, err_msg=loss)

    def test_began_update(self):
        k, m = gt.began_update(torch.tensor(0.3), torch.tensor(0.2), torch.tensor(0.05), 0.5, 0.1)
        self.assertAlmostEqual(k.item(), 0.3 + 0.1 * (0.5 * 0.2 - 0.05), places=7)
        self.assertAlmostEqual(m.item(), 0.2 + abs(0.5 * 0.2 - 0.05), places=7)
        self.assertEqual(gt.began_update(torch.tensor(0.0), torch.tensor(0.1), torch.tensor(1.0), 0.5, 1.0)[0].item(), 0.0)
        self.assertEqual(gt.began_update(torch.tensor(0.9), torch.tensor(1.0), torch.tensor(0.0), 0.5, 1.0)[0].item(), 1.0)

    def test_config_checks(self):
        err = io.StringIO()
        with redirect_stderr(err):  # keys a preset may leave out: known, typed by their defaults, no note
            cfg = gt.load_config("mlp", ["train.clip=1", "train.r1_interval=4", "optim.d.alpha=0.9"])
        self.assertEqual(err.getvalue(), "")
        self.assertEqual((cfg["train"]["clip"], type(cfg["train"]["clip"])), (1.0, float))
        self.assertEqual(gt.objective_from_config(cfg).r1_interval, 4)
        with self.assertRaises(gt.ConfigError):
            gt.load_config("mlp", ["train.r1_interval=1.5"])
        with self.assertRaises(gt.ConfigError) as cm:
            gt.load_config("mlp", ["train.loss=wasserstein"])
        self.assertIn("wgan-gp", str(cm.exception))  # lists the valid ones
        for sets, needle in ((["train.loss=wgan", "train.clip=0.0"], "train.clip"),
                             (["train.loss=r1", "train.r1_interval=0"], "train.r1_interval"),
                             (["train.loss=began", "train.began_k0=1.5"], "train.began_k0"),
                             (["optim.d.name=adagrad"], "optim.d.name")):
            with redirect_stderr(io.StringIO()), self.assertRaises(gt.ConfigError, msg=str(sets)) as cm:
                gt.load_config("mlp", sets)
            self.assertIn(needle, str(cm.exception))
        for loss in go.PENALIZED:  # dcgan's D holds batch norm at index 3
            with self.assertRaises(gt.ConfigError, msg=loss) as cm:
                gt.build_models(gt.load_config("dcgan", [f"train.loss={loss}"]))
            self.assertIn("model.discriminator[3]", str(cm.exception))
            self.assertIn("'ln'", str(cm.exception))
        with self.assertRaises(gt.ConfigError) as cm:  # a logit is no reconstruction
            gt.build_models(gt.load_config("mlp", ["train.loss=began"]))
        self.assertIn("auto-encoder", str(cm.exception))

    def test_optimizers(self):
        with redirect_stderr(io.StringIO()):
            cfg = gt.load_config("mlp", ["optim.d.name=rmsprop", "optim.d.alpha=0.9", "optim.g.name=sgd",
                                         "optim.g.momentum=0.5", "optim.d.eps=1e-6"])
        tr = gt.Trainer(cfg, "cpu")
        self.assertIsInstance(tr.opt_d, torch.optim.RMSprop)
        self.assertEqual({k: tr.opt_d.defaults[k] for k in ("alpha", "eps", "momentum", "centered")},
                         {"alpha": 0.9, "eps": 1e-6, "momentum": 0.0, "centered": False})
        self.assertIsInstance(tr.opt_g, torch.optim.SGD)
        self.assertEqual(tr.opt_g.defaults["momentum"], 0.5)


def _finite_difference_check(test, fn, params, h=1e-6, bound=1e-6):
    """The gradient of fn() (a 0-d tensor) with respect to params, by autograd, against central
    finite differences; relative error ||autograd - fd|| / ||fd|| <= bound (float64)."""
    # A parameter the value does not depend on (the critic's last bias, for an input gradient)
    # gets no gradient: zero, which the differences must confirm.
    got = [torch.zeros_like(p) if g is None else g
           for g, p in zip(torch.autograd.grad(fn(), params, allow_unused=True), params)]
    fd = []
    for p in params:
        flat = p.detach().view(-1)  # shares p's storage: writes move the parameter
        g = torch.empty_like(flat)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + h
            plus = fn().item()
            flat[i] = old - h
            minus = fn().item()
            flat[i] = old
            g[i] = (plus - minus) / (2 * h)
        fd.append(g.view_as(p))
    got, fd = torch.cat([g.reshape(-1) for g in got]), torch.cat([g.reshape(-1) for g in fd])
    err = ((got - fd).norm() / fd.norm()).item()
    test.assertLessEqual(err, bound, f"relative error {err:.3g}")
    test.assertGreater(fd.norm().item(), 0.0)
    return err


class Penalties(unittest.TestCase):
    """The peer's penalties (double backward through torch.autograd.grad) are themselves right:
    their gradients with respect to D's parameters equal finite differences of their values, and
    their values are the formulas on critics whose input gradients are known."""

    def setUp(self):
        torch.manual_seed(7)

    def objective(self, loss):
        return gt.Objective(loss, gp_weight=3.0, r1_gamma=4.0, r1_interval=3, dragan_spread=0.7)

    def test_gradients_match_finite_differences(self):
        # Smooth layers (tanh, layer norm) so that second derivatives matter; lrelu's kinks are
        # not crossed by a 1e-6 step at random points.
        cases = (("image", ["conv out=2 k=3 p=1", "ln", "tanh", "conv out=2 k=3 s=2 p=1 name=c", "lrelu 0.2 name=l",
                            "add in=c,l", "flatten", "linear 1"], ("image", 1, 4, 4)),
                 ("points", ["linear 5", "tanh", "linear 4", "ln", "lrelu 0.2", "linear 1"], ("features", 2)))
        for what, specs, shape in cases:
            D, _, _ = gt.build_network(specs, shape, "D")
            D.double()
            with torch.no_grad():
                for p in D.parameters():  # O(1) parameters: penalties far from their minimum
                    p.normal_(0.0, 0.7)
            x = torch.randn(3, *shape[1:], dtype=torch.float64)
            fake = torch.randn(3, *shape[1:], dtype=torch.float64)
            draws = {"eps": torch.rand(3, dtype=torch.float64), "alpha": torch.rand(3, dtype=torch.float64),
                     "u": torch.rand(x.shape, dtype=torch.float64)}
            params = list(D.parameters())
            for loss in ("wgan-gp", "dragan", "r1"):
                with self.subTest(what=what, loss=loss):
                    obj = self.objective(loss)
                    _finite_difference_check(self, lambda: go.penalty(obj, D, x, fake, draws)[0], params)

    def test_values_on_linear_critics(self):
        """D(v) = w . v + b has input gradient w at every point."""
        for shape, specs in ((("features", 3), ["linear 1"]), (("image", 2, 3, 3), ["flatten", "linear 1"])):
            D, _, _ = gt.build_network(specs, shape, "D")
            D.double()
            w = D[len(specs) - 1].weight.detach()
            norm = w.norm().item()
            x = torch.randn(5, *shape[1:], dtype=torch.float64)
            fake = torch.randn_like(x)
            draws = {"eps": torch.rand(5, dtype=torch.float64), "alpha": torch.rand(5, dtype=torch.float64),
                     "u": torch.rand(x.shape, dtype=torch.float64)}
            for loss, want in (("wgan-gp", 3.0 * (norm - 1) ** 2), ("dragan", 3.0 * (norm - 1) ** 2),
                               ("r1", 4.0 / 2 * 3 * norm ** 2)):
                pen, gn = go.penalty(self.objective(loss), D, x, fake, draws)
                self.assertAlmostEqual(pen.item(), want, places=10, msg=f"{loss} {shape}")
                self.assertAlmostEqual(gn.item(), norm, places=10, msg=f"{loss} {shape}")

    def test_penalty_points(self):
        x, fake = torch.randn(4, 2, 3, 3, dtype=torch.float64), torch.randn(4, 2, 3, 3, dtype=torch.float64)
        eps = torch.tensor([0.0, 1.0, 0.25, 0.5], dtype=torch.float64)
        xi = go.interpolate(x, fake, eps).numpy()
        xn, fn = x.numpy(), fake.numpy()
        for i, e in enumerate(eps.tolist()):
            np.testing.assert_allclose(xi[i], e * xn[i] + (1 - e) * fn[i], rtol=1e-14, atol=1e-14)
        alpha, u = torch.rand(4, dtype=torch.float64), torch.rand(x.shape, dtype=torch.float64)
        xp = go.perturb(x, alpha, u, 0.5).numpy()
        sigma = xn.std(ddof=1)  # unbiased, over the whole batch
        for i, a in enumerate(alpha.tolist()):
            np.testing.assert_allclose(xp[i], xn[i] + (1 - a) * 0.5 * sigma * u.numpy()[i], rtol=1e-13, atol=1e-14)


# A tiny image GAN for step_reference.py: G makes 4x4x1 images; D uses the graph (names, add) and ln.
_TINY_D = ('["conv out=4 k=3 s=2 p=1", "lrelu 0.2 name=h", "conv out=4 k=3 p=1 name=r", "add in=h,r", "ln", '
           '"lrelu 0.2", "flatten", "linear out=1"]')
_TINY_AUTOENCODER = '["conv out=4 k=3 p=1", "lrelu 0.2", "conv out=1 k=3 p=1"]'


def _tiny_config(loss, d_steps=2, discriminator=_TINY_D, generator='["linear out=16", "tanh", "reshape h=4 w=4 c=1"]',
                 z_dim=3, r1_interval=2):
    d_opt = 'name = "rmsprop"\nlr = 5e-5\nalpha = 0.99\neps = 1e-8' if loss == "wgan" else \
        'name = "adam"\nlr = 1e-3\nbeta1 = 0.5\nbeta2 = 0.999\neps = 1e-8'
    return f"""
[data]
name = "synthetic"
[model]
z_dim = {z_dim}
latent = "normal"
init = "dcgan"
generator = {generator}
discriminator = {discriminator}
[train]
loss = "{loss}"
batch = 4
steps = 1
d_steps = {d_steps}
label_smoothing = 0.0
seed = 3
gp_weight = 10.0
clip = 0.01
r1_gamma = 10.0
r1_interval = {r1_interval}
dragan_spread = 0.5
began_gamma = 0.5
began_lambda_k = 0.5
began_k0 = 0.0
[optim.g]
name = "sgd"
lr = 0.1
momentum = 0.0
weight_decay = 0.0
[optim.d]
{d_opt}
weight_decay = 0.0
"""


class StepReference(unittest.TestCase):
    """tools/step_reference.py: its interface, for every objective, and what the objectives promise."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def prepare(self, loss, d_steps=2, step=0, k0=None, points=False, **kw):
        """Writes config, init and inputs; returns (cfg, G, D, inputs) with G and D at the init."""
        if points:
            kw.update(generator='["linear out=8", "tanh", "linear out=2"]', z_dim=2,
                      discriminator='["linear out=8", "tanh", "ln", "linear out=1"]')
        (self.dir / "config.toml").write_text(_tiny_config(loss, d_steps, **kw))
        cfg = gt.load_config(str(self.dir / "config.toml"))
        G, D, sample = gt.build_models(cfg, seed=11)
        init = gt.checkpoint_state(G, D)
        if k0 is not None:
            init["objective.k"] = torch.tensor([k0])
        gt.write_safetensors(self.dir / "init.safetensors", init)
        rng = np.random.default_rng(5)
        x_shape = (4, 2) if points else (4, 4, 4, 1)
        inputs = {"step": np.array([step], np.int64)}
        for k in range(d_steps):
            inputs[f"x.{k}"] = rng.uniform(-1, 1, x_shape).astype(np.float32)
            inputs[f"z.{k}"] = rng.standard_normal((4, cfg["model"]["z_dim"])).astype(np.float32)
            inputs[f"eps.{k}"] = rng.random(4).astype(np.float32)
            inputs[f"alpha.{k}"] = rng.random(4).astype(np.float32)
            inputs[f"u.{k}"] = rng.random(x_shape).astype(np.float32)
        gt.write_safetensors(self.dir / "inputs.safetensors", inputs)
        return cfg, G, D, inputs

    def run_main(self, *extra, expect=0):
        import step_reference
        argv = ["--config", str(self.dir / "config.toml"), "--init", str(self.dir / "init.safetensors"),
                "--inputs", str(self.dir / "inputs.safetensors"), "--out", str(self.dir / "out.safetensors"), *extra]
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = step_reference.main(argv)
        self.assertEqual(rc, expect, err.getvalue())
        if expect != 0:
            return err.getvalue()
        self.assertEqual(len(out.getvalue().strip().splitlines()), 1, out.getvalue())
        return {k: torch.from_numpy(v) for k, v in gt.read_safetensors(self.dir / "out.safetensors")[0].items()}

    def test_every_objective_writes_the_documented_tensors(self):
        for loss in gt.OBJECTIVES:
            for float64 in (False, True):
                with self.subTest(loss=loss, float64=float64):
                    disc = _TINY_AUTOENCODER if loss == "began" else _TINY_D
                    _, G, D, _ = self.prepare(loss, discriminator=disc, r1_interval=1)
                    out = self.run_main(*(["--float64"] if float64 else []))
                    names = {f"updated.{k}" for k in gt.checkpoint_state(G, D)}
                    names |= {f"grad.G.{n}" for n, _ in G.named_parameters()} | {f"grad.D.{n}" for n, _ in D.named_parameters()}
                    names |= {"loss.d", "loss.g"}
                    if loss in ("wgan-gp", "dragan", "r1"):
                        names |= {"penalty", "grad_norm"}
                    if loss == "began":
                        names |= {"k", "convergence"}
                    self.assertEqual(set(out), names)
                    for n, v in out.items():
                        self.assertEqual(v.dtype, torch.float64 if float64 else torch.float32, n)
                        self.assertTrue(torch.isfinite(v).all(), n)
                        if n.startswith(("loss.", "penalty", "grad_norm", "k", "convergence")):
                            self.assertEqual(tuple(v.shape), (1,), n)
                    for n, p in G.named_parameters():
                        self.assertEqual(out[f"grad.G.{n}"].shape, p.shape)
                        self.assertFalse(torch.equal(out[f"updated.G.{n}"], p.detach()), f"G.{n} did not move")
                    for n, p in D.named_parameters():
                        self.assertEqual(out[f"grad.D.{n}"].shape, p.shape)
                    # (a critic's last bias gets no gradient from wgan's or hinge's balanced terms)
                    self.assertGreater(sum(out[f"grad.D.{n}"].norm().item() for n, _ in D.named_parameters()), 0.0)

    def test_points(self):
        _, G, D, _ = self.prepare("wgan-gp", points=True)
        out = self.run_main("--float64")
        self.assertEqual(tuple(out["updated.G.2.weight"].shape), (2, 8))
        self.assertGreater(out["penalty"].item(), 0.0)

    def test_losses_follow_the_formulas(self):
        """d_steps 1, no penalty: loss.d from D at the init on x and G(z); loss.g from the updated D
        on the same G(z) (G is not re-run); SGD moves G by -lr grad."""
        bce = lambda v, t: float(np.mean(_softplus(v) - t * v))  # noqa: E731
        formulas = {
            "bce": (lambda r, f: bce(r, 1) + bce(f, 0), lambda g: bce(g, 1)),
            "bce-minimax": (lambda r, f: bce(r, 1) + bce(f, 0), lambda g: -bce(g, 0)),
            "lsgan": (lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2), lambda g: 0.5 * np.mean((g - 1) ** 2)),
            "hinge": (lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)), lambda g: -np.mean(g)),
            "wgan": (lambda r, f: -np.mean(r) + np.mean(f), lambda g: -np.mean(g)),
        }
        for loss, (fd, fg) in formulas.items():
            with self.subTest(loss=loss):
                cfg, G, D, inputs = self.prepare(loss, d_steps=1)
                out = self.run_main("--float64")
                G.double()
                D.double()
                x = torch.from_numpy(inputs["x.0"]).double().permute(0, 3, 1, 2)
                fake = G(torch.from_numpy(inputs["z.0"]).double())
                with torch.no_grad():
                    want_d = fd(D(x).numpy(), D(fake).numpy())
                    G1, D1, _ = gt.build_models(cfg)
                    gt.apply_checkpoint(G1.double(), D1.double(),
                                        {k[len("updated."):]: v for k, v in out.items() if k.startswith("updated.")})
                    want_g = fg(D1(fake).numpy())
                self.assertAlmostEqual(out["loss.d"].item(), want_d, places=10)
                self.assertAlmostEqual(out["loss.g"].item(), want_g, places=10)
                for n, p in G.named_parameters():  # SGD, lr 0.1
                    torch.testing.assert_close(out[f"updated.G.{n}"], p.detach() - 0.1 * out[f"grad.G.{n}"],
                                               rtol=1e-12, atol=1e-14)

    def test_wgan_clips_every_parameter(self):
        _, _, D, _ = self.prepare("wgan")
        out = self.run_main()
        clipped = 0
        for n, p in D.named_parameters():
            v = out[f"updated.D.{n}"]
            self.assertLessEqual(v.abs().max().item(), 0.01, n)
            clipped += int((v.abs() == np.float32(0.01)).sum())
        self.assertGreater(clipped, 0)  # the init N(0, 0.02) exceeds the bound: clamping happened
        self.assertGreater(max(p.detach().abs().max().item() for p in D.parameters()), 0.01)

    def test_began_moves_k(self):
        for k0 in (0.3, 0.0, None):
            with self.subTest(k0=k0):
                _, G, D, inputs = self.prepare("began", d_steps=1, k0=k0, discriminator=_TINY_AUTOENCODER)
                out = self.run_main("--float64")
                G.double()
                D.double()
                x = torch.from_numpy(inputs["x.0"]).double().permute(0, 3, 1, 2)
                fake = G(torch.from_numpy(inputs["z.0"]).double()).detach()
                start = 0.0 if k0 is None else float(np.float32(k0))  # began_k0 = 0 in the config; k is stored as f32
                lr_t, lf_t = (D(x) - x).abs().mean(), (D(fake) - fake).abs().mean()
                names, params = zip(*D.named_parameters())
                for n, g in zip(names, torch.autograd.grad(lr_t - start * lf_t, params)):
                    torch.testing.assert_close(out[f"grad.D.{n}"], g, rtol=1e-10, atol=1e-13, msg=f"grad.D.{n}")
                l_real, l_fake = lr_t.item(), lf_t.item()
                balance = 0.5 * l_real - l_fake
                self.assertAlmostEqual(out["k"].item(), min(max(start + 0.5 * balance, 0.0), 1.0), places=12)
                self.assertAlmostEqual(out["convergence"].item(), l_real + abs(balance), places=12)
                self.assertAlmostEqual(out["loss.d"].item(), l_real - start * l_fake, places=12)
                if k0 == 0.3:
                    self.assertNotEqual(out["k"].item(), k0)

    def test_r1_interval_counts_d_steps(self):
        # r1_interval 2: D step s * d_steps + k is penalized when even; the last D step is reported.
        for d_steps, step, penalized in ((1, 0, True), (1, 1, False), (1, 4, True), (2, 0, False), (2, 5, False),
                                         (3, 0, True), (3, 1, False), (3, 2, True)):
            with self.subTest(d_steps=d_steps, step=step):
                self.prepare("r1", d_steps=d_steps, step=step)
                out = self.run_main("--float64")
                self.assertEqual("penalty" in out, penalized)
                self.assertEqual("grad_norm" in out, penalized)

    def test_conditional_inputs(self):
        """A conditional model reads class.k and fake_class.k (gancu's real labels and drawn
        classes); its label layers get gradients; missing or out-of-range classes exit 2."""
        text = _tiny_config("wgan-gp", d_steps=2,
                            generator='["embed dim=2 in=label name=y", "concat in=input,y", "linear out=16", "tanh", '
                                      '"reshape h=4 w=4 c=1"]',
                            discriminator='["concat in=input,label", "conv out=4 k=3 s=2 p=1", "tanh", '
                                          '"flatten name=phi", "linear out=1 name=s", "project in=phi,label name=p", '
                                          '"add in=s,p"]')
        (self.dir / "config.toml").write_text(text.replace("[model]\n", "[model]\nclasses = 3\n"))
        cfg = gt.load_config(str(self.dir / "config.toml"))
        G, D, _ = gt.build_models(cfg, seed=11)
        gt.write_safetensors(self.dir / "init.safetensors", gt.checkpoint_state(G, D))
        rng = np.random.default_rng(5)
        inputs = {"step": np.array([0], np.int64)}
        for k in range(2):
            inputs[f"x.{k}"] = rng.uniform(-1, 1, (4, 4, 4, 1)).astype(np.float32)
            inputs[f"z.{k}"] = rng.standard_normal((4, 3)).astype(np.float32)
            inputs[f"eps.{k}"] = rng.random(4).astype(np.float32)
            inputs[f"class.{k}"] = np.array([0, 1, 2, 1], np.int32)
            inputs[f"fake_class.{k}"] = np.array([2, 2, 0, 1], np.int64)
        gt.write_safetensors(self.dir / "inputs.safetensors", inputs)
        out = self.run_main("--float64")
        self.assertEqual(set(out), {f"updated.{k}" for k in gt.checkpoint_state(G, D)}
                         | {f"grad.G.{n}" for n, _ in G.named_parameters()}
                         | {f"grad.D.{n}" for n, _ in D.named_parameters()}
                         | {"loss.d", "loss.g", "penalty", "grad_norm"})
        rows = out["grad.G.0.weight"].abs().sum(1)  # the embedding: the rows of the classes drawn last
        self.assertEqual((rows > 0).tolist(), [True, True, True])
        self.assertGreater(out["grad.D.5.weight"].abs().sum().item(), 0.0)  # the projection table
        # Other fake classes give other gradients: the classes are read.
        gt.write_safetensors(self.dir / "inputs.safetensors", dict(inputs, **{"fake_class.1": np.array([1, 0, 2, 2])}))
        moved = self.run_main("--float64")
        self.assertFalse(torch.allclose(moved["grad.D.1.weight"], out["grad.D.1.weight"]))
        for bad, message in (({"class.1": None}, "no tensor 'class.1'"),
                             ({"fake_class.0": np.array([0, 1, 3, 1])}, "fake_class.0' holds classes 0..3, outside"),
                             ({"class.0": np.array([0.0, 1.0, 2.0, 1.0], np.float32)}, "'class.0' is float32"),
                             ({"class.0": np.array([0, 1, 2])}, "expected integers \\[4\\]")):
            with self.subTest(bad=message):
                changed = {k: v for k, v in dict(inputs, **bad).items() if v is not None}
                gt.write_safetensors(self.dir / "inputs.safetensors", changed)
                self.assertRegex(self.run_main(expect=2), message)

    def test_bad_input(self):
        _, _, _, inputs = self.prepare("dragan")
        gt.write_safetensors(self.dir / "inputs.safetensors", {k: v for k, v in inputs.items() if k != "u.1"})
        self.assertIn("u.1", self.run_main(expect=2))
        bad = dict(inputs, **{"z.0": inputs["z.0"][:, :2]})
        gt.write_safetensors(self.dir / "inputs.safetensors", bad)
        self.assertIn("z.0", self.run_main(expect=2))
        gt.write_safetensors(self.dir / "inputs.safetensors", inputs)
        gt.write_safetensors(self.dir / "init.safetensors", {})
        self.assertIn("no tensor G.", self.run_main(expect=2))
        # The command line as the C++ test calls it.
        import subprocess
        run = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "step_reference.py"),
                              "--config", str(self.dir / "config.toml"), "--init", str(self.dir / "nosuch.safetensors"),
                              "--inputs", str(self.dir / "inputs.safetensors"), "--out", str(self.dir / "o.safetensors")],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("nosuch.safetensors", run.stderr)


class Training(unittest.TestCase):
    def test_steps_run(self):
        for name in gan_preset_names():
            cfg = gt.load_config(name, ["train.batch=8", "train.d_steps=2"])
            if len(gt.build_models(cfg)[2]) != 3:
                with self.assertRaises(gt.ConfigError):  # point generators: the peer says so
                    gt.load_images("synthetic", gt.build_models(cfg)[2])
                continue
            if cfg["train"].get("distance_head"):  # refused, not trained with another G loss
                with self.assertRaisesRegex(gt.ConfigError, "distance_head"):
                    gt.Trainer(cfg, "cpu")
                continue
            tr = gt.Trainer(cfg, "cpu")
            images, labels, _ = gt.load_labeled_images("synthetic", tr.image_shape, synthetic_count=20)
            tr.set_images(images, labels)  # the labels are read by the conditional presets only
            before = [p.clone() for p in tr.G_eager.parameters()]
            for _ in range(3):  # 20 images, batch 8: crosses epoch boundaries
                m = tr.train_step()
            self.assertTrue(all(math.isfinite(float(v)) for v in m.values()), name)
            self.assertTrue(any(not torch.equal(a, b) for a, b in zip(before, tr.G_eager.parameters())))
            self.assertTrue(all(p.requires_grad for p in tr.D_eager.parameters()))


# A small conditional GAN: G reads [z, one-hot], D the image with 3 constant label maps; the
# critic has no batch norm so that the penalized objectives accept it.
def _conditional_config(loss="bce", d_steps=1, classes=3, batch=4):
    return gt.load_config("dcgan", [
        f"model.classes={classes}", "model.z_dim=3", f"train.loss={loss}", f"train.d_steps={d_steps}",
        f"train.batch={batch}",
        'model.generator=["concat in=input,label", "linear out=16", "tanh", "reshape h=4 w=4 c=1"]',
        'model.discriminator=["concat in=input,label", "conv out=4 k=3 s=2 p=1", "lrelu 0.2", "flatten", '
        '"linear out=1"]'])


class _Recorder(torch.nn.Module):
    """A network that records the class each call's samples are judged or drawn with (the position
    of each label row's 1), and the images it sees, then runs the wrapped network."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, x, **inputs):
        self.calls.append((x.detach().clone(), inputs["label"].argmax(1)))
        return self.net(x, **inputs)


class ConditionalTraining(unittest.TestCase):
    """The peer's own training of a conditional model (the step for step comparison with gancu,
    which hands over gancu's classes, is ObjectiveStep.Cgan*/Cwgan* in tests/objective_step_test.cpp)."""

    @staticmethod
    def labeled_images(n=10, classes=3):
        """n 4x4 images whose pixels all hold 40 * (index) + 10 * label: the batch's rows tell which
        image each is and which label it has."""
        labels = np.arange(n) % classes
        values = 40 * np.arange(n) % 200 + 10 * labels
        images = np.broadcast_to(values.astype(np.uint8)[:, None, None, None], (n, 4, 4, 1)).copy()
        return images, labels.astype(np.uint8)

    @staticmethod
    def decode(x):
        """The label of each image of an NCHW batch normalized to [-1, 1]."""
        u = torch.round((x[:, 0, 0, 0].double() + 1) * 127.5).long()
        return (u % 40) // 10

    def test_real_labels_are_gathered_with_their_images(self):
        tr = gt.Trainer(_conditional_config(), "cpu")
        images, labels = self.labeled_images()
        tr.set_images(images, labels)
        for _ in range(7):  # 10 images, batch 4: crosses epoch boundaries (the last 2 are dropped)
            x, y = tr.next_real()
            self.assertEqual(y.dtype, torch.int64)
            self.assertEqual(y.tolist(), self.decode(x).tolist())

    def test_each_pass_reads_the_labels_gancu_reads(self):
        """In the peer's own loop: D judges the real batch with its labels, the fakes with the classes
        G drew them with (new ones each D step), the penalty's points with the real labels, and the
        G step's D pass the last D step's fakes with their classes."""
        for loss in ("bce", "wgan-gp", "r1"):
            with self.subTest(loss=loss):
                tr = gt.Trainer(_conditional_config(loss, d_steps=2), "cpu")
                tr.set_images(*self.labeled_images())
                G, D = _Recorder(tr.G_eager), _Recorder(tr.D_eager)
                tr.use_modules(G, D)
                tr.train_step()
                per_step = 3 if loss == "wgan-gp" else 2  # real, fake (, penalty points)
                self.assertEqual(len(G.calls), 2)
                self.assertEqual(len(D.calls), 2 * per_step + 1)
                for k in range(2):
                    real = D.calls[k * per_step]
                    fake = D.calls[k * per_step + 1]
                    self.assertEqual(real[1].tolist(), self.decode(real[0]).tolist(), "real pass")
                    self.assertEqual(fake[1].tolist(), G.calls[k][1].tolist(), "fake pass")
                    if loss == "wgan-gp":
                        self.assertEqual(D.calls[k * per_step + 2][1].tolist(), real[1].tolist(), "penalty points")
                self.assertEqual(D.calls[-1][1].tolist(), G.calls[-1][1].tolist(), "G step")
                self.assertNotEqual(G.calls[0][1].tolist(), G.calls[1][1].tolist(), "classes drawn per D step")

    def test_fake_classes_are_uniform_and_follow_the_seed(self):
        tr = gt.Trainer(_conditional_config(classes=5), "cpu")
        draws = tr.draw_classes(5000)
        counts = torch.bincount(draws, minlength=5)
        self.assertEqual(len(counts), 5)
        self.assertLess(((counts - 1000.0) ** 2 / 1000.0).sum().item(), 20.5)  # chi-square, 4 dof: p ~ 4e-4
        again = gt.Trainer(_conditional_config(classes=5), "cpu").draw_classes(5000)
        self.assertTrue(torch.equal(draws, again))

    def test_bad_data(self):
        cfg = _conditional_config()
        images, labels = self.labeled_images()
        with self.assertRaisesRegex(gt.ConfigError, r"model.classes = 3: .* my images has none"):
            gt.Trainer(cfg, "cpu").set_images(images, None, "my images")
        with self.assertRaisesRegex(gt.ConfigError, r"model.classes = 3: .* label 5, outside the model's classes 0..2"):
            gt.Trainer(cfg, "cpu").set_images(images, np.full(10, 5, np.uint8))
        with self.assertRaisesRegex(gt.ConfigError, "9 labels for 10 images"):
            gt.Trainer(cfg, "cpu").set_images(images, labels[:9])
        with self.assertRaisesRegex(gt.ConfigError, "model.classes = -1"):
            gt.Trainer(gt.load_config("dcgan", ["model.classes=-1"]), "cpu")
        # An unconditional model ignores labels, and needs none.
        gt.Trainer(gt.load_config("dcgan", ["train.batch=4"]), "cpu").set_images(np.zeros((4, 28, 28, 1), np.uint8))

    def test_labels_are_read_where_gancu_reads_them(self):
        from PIL import Image
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            # IDX: the labels file beside the images file, as gancu's find_labels_for names it.
            gt.write_idx_u8(d / "train-images-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
            gt.write_idx_u8(d / "train-labels-idx1-ubyte", np.array([2, 0, 1], np.uint8))
            _, labels, _ = gt.load_labeled_images(str(d), (1, 4, 4))
            self.assertEqual(labels.tolist(), [2, 0, 1])
            _, labels, _ = gt.load_labeled_images(str(d / "train-images-idx3-ubyte"), (1, 4, 4))
            self.assertEqual(labels.tolist(), [2, 0, 1])
            # An image folder: classes from its first-level sub-folders, in sorted order.
            for rel in ("shoes/a.png", "bags/b.png", "bags/c.png", "shoes/d/e.png"):
                (d / "folder" / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.zeros((4, 4), np.uint8)).save(d / "folder" / rel)
            images, labels, _ = gt.load_labeled_images(str(d / "folder"), (1, 4, 4), quiet=True)
            self.assertEqual(labels.tolist(), [0, 0, 1, 1])  # bags/b, bags/c, shoes/a, shoes/d/e
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(d / "folder" / "loose.png")
            images, labels, _ = gt.load_labeled_images(str(d / "folder"), (1, 4, 4), quiet=True)
            self.assertEqual((len(images), labels), (5, None))  # an image outside the sub-folders: no classes
        images, labels, _ = gt.load_labeled_images("synthetic", (1, 4, 4), synthetic_count=500)
        self.assertEqual(sorted(set(labels.tolist())), list(range(gt.MAX_CLASSES)))

    def test_train_command_runs_cgan(self):
        import train_pytorch
        with tempfile.TemporaryDirectory() as d:
            out, err = io.StringIO(), io.StringIO()
            with redirect_stdout(out), redirect_stderr(err):
                rc = train_pytorch.main(["--preset", "cgan", "--steps", "2", "--data", "synthetic", "--out", d,
                                         "--device", "cpu", "--set", "train.batch=8"])
            self.assertEqual(rc, 0, err.getvalue())
            records = [json.loads(line) for line in (Path(d) / "metrics.jsonl").read_text().splitlines()]
            self.assertEqual([r["step"] for r in records], [1, 2])
            self.assertTrue(all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records))
            from PIL import Image
            with Image.open(Path(d) / "samples_final.png") as grid:  # one row per class: 10 x 10 images
                self.assertEqual(grid.size, (2 + 10 * 30, 2 + 10 * 30))
            ckpt, _ = gt.read_safetensors(Path(d) / "checkpoint_final.safetensors")
            self.assertEqual(tuple(ckpt["G.1.weight"].shape), (12544, 110))  # [z, one-hot] into G's linear
        with tempfile.TemporaryDirectory() as d:  # MNIST-like IDX images without a labels file
            gt.write_idx_u8(Path(d) / "train-images-idx3-ubyte", np.zeros((8, 28, 28), np.uint8))
            err = io.StringIO()
            with redirect_stdout(io.StringIO()), redirect_stderr(err):
                rc = train_pytorch.main(["--preset", "cgan", "--steps", "1", "--data", d, "--out", f"{d}/run",
                                         "--device", "cpu", "--set", "train.batch=8"])
            self.assertEqual(rc, 2)
            self.assertIn("model.classes = 10: a conditional model needs class labels", err.getvalue())


class CollapseStudy(unittest.TestCase):
    def test_each_remedy_changes_only_what_it_names(self):
        import collapse_study as cs

        for data in cs.DATA:
            g, d = cs.base_networks(data)
            for remedy in cs.REMEDIES:
                sets = dict(kv.split("=", 1) for kv in cs.remedy_settings(remedy, data))
                new_d = json.loads(sets.get("model.discriminator", json.dumps(d)))
                new_g = json.loads(sets.get("model.generator", json.dumps(g)))
                added = [s for s in new_d if s not in d] + [s for s in new_g if s not in g]
                if remedy in ("mbdisc", "mbstd"):
                    self.assertEqual(len(new_d), len(d) + 1, (data, remedy))
                    self.assertTrue(added[0].startswith(remedy), (data, remedy, added))
                    self.assertEqual(new_g, g)
                elif remedy == "feature-matching":
                    self.assertEqual(sets["train.feature_matching"], "features")
                    self.assertEqual([s.replace(" name=features", "") for s in new_d], d)
                elif remedy == "distance-head":
                    self.assertIn("name=distance", " ".join(new_g))
                    self.assertEqual(new_g[-1].replace(" in=trunk", ""), g[-1])  # the output is still the last
                    self.assertEqual(new_d, d)
                elif remedy == "wgan-gp":
                    self.assertNotIn("bn", new_d)  # a penalized critic cannot use batch norm
                    self.assertEqual(sets["train.loss"], "wgan-gp")
                else:
                    self.assertEqual((new_g, new_d), (g, d), (data, remedy))

    def test_kl_of_a_mode_histogram(self):
        import collapse_study as cs

        self.assertAlmostEqual(cs.kl_from_histogram([5, 5, 5, 5]), 0.0)
        self.assertAlmostEqual(cs.kl_from_histogram([10, 0, 0, 0]), math.log(4))
        self.assertAlmostEqual(cs.kl_from_histogram([3, 1]), 0.75 * math.log(1.5) + 0.25 * math.log(0.5))

    def test_the_table_marks_runs_not_made(self):
        import collapse_study as cs

        done = {"eval/modes": 6, "eval/modes_total": 8, "per_mode": [1, 1, 1, 1, 1, 1, 0, 0], "eval/high_quality": 0.5}
        results = {("ring8", "mbstd", 1): done, ("ring8", "mbstd", 2): {"pending": True}}
        row = cs.table(["ring8"], ["mbstd"], [1, 2], results)[-1]
        self.assertIn("| ring8 | mbstd | 1/2 | 6.0 / 8 | 0.29 |", row)
        self.assertIn("seed 2: not run yet", row)

    def test_the_docs_summary_ranks_by_modes_and_replaces_only_its_region(self):
        import collapse_study as cs

        def run(modes, kl):
            return {"eval/modes": modes, "eval/modes_total": 25, "eval/kl_uniform": kl, "eval/high_quality": 0.5}

        results = {("grid25", "baseline", 1): run(6, 1.0), ("grid25", "baseline", 2): run(8, 1.2),
                   ("grid25", "mbdisc", 1): run(3, 1.5), ("grid25", "mbdisc", 2): {"failed": "exit 1"},
                   ("grid25", "mbstd", 1): run(11, 0.8), ("grid25", "mbstd", 2): run(9, 0.8),
                   ("grid25", "d-steps", 1): {"pending": True}, ("grid25", "d-steps", 2): {"pending": True}}
        with tempfile.TemporaryDirectory() as d:
            records = Path(d) / "docs" / "study"
            records.mkdir(parents=True)
            (records / "grid25-mbstd-seed1-step_000100.png").write_bytes(b"")
            (records / "grid25-mbstd-seed1-step_016000.png").write_bytes(b"")
            lines = cs.summary("grid25", ["baseline", "mbdisc", "mbstd", "d-steps"], [1, 2], results, records,
                               Path(d) / "docs" / "page.md")
        rows = [line.split(" | ")[0].lstrip("| ") for line in lines[2:]]
        self.assertEqual(rows, ["baseline", "mbstd", "mbdisc", "d-steps (2 D steps)"])  # baseline, then most modes
        self.assertIn("| mbstd | 2 of 2 | 10.0 (9-11) | 0.80 | 50% | ![grid25 mbstd seed 1]"
                      "(study/grid25-mbstd-seed1-step_016000.png) |", lines)
        self.assertIn("| mbdisc | 1 of 2 | 3.0 | 1.50 | 50% | - |", lines)  # the failed seed is not averaged
        self.assertIn("| d-steps (2 D steps) | 0 of 2 | - | - | - | - |", lines)
        self.assertEqual(len(lines[0].split("|")), len(lines[1].split("|")))

        begin, end = cs.summary_markers("grid25")
        doc = f"before\n{begin}\nold table\n{end}\nafter\n"
        text, missing = cs.rewrite_summaries(doc, {"grid25": ["| new |"], "mnist": ["| other |"]})
        self.assertEqual(text, f"before\n{begin}\n\n| new |\n\n{end}\nafter\n")
        self.assertEqual(missing, ["mnist"])
        self.assertEqual(cs.rewrite_summaries(text, {"grid25": ["| new |"]})[0], text)  # rewriting is idempotent

    def test_equal_modes_rank_by_sample_quality(self):
        import collapse_study as cs

        def run(fid):
            return {"eval/modes": 10, "eval/modes_total": 10, "eval/kl_uniform": 0.05, "eval/fid_classifier": fid,
                    "eval/recall": 0.8}

        results = {("mnist", "baseline", 1): run(140), ("mnist", "mbstd", 1): run(150),
                   ("mnist", "feature-matching", 1): run(250), ("mnist", "mbdisc", 1): run(95)}
        with tempfile.TemporaryDirectory() as d:
            lines = cs.summary("mnist", ["baseline", "mbstd", "feature-matching", "mbdisc"], [1], results, Path(d),
                               Path(d) / "page.md")
        rows = [line.split(" | ")[0].lstrip("| ") for line in lines[2:]]
        self.assertEqual(rows, ["baseline", "mbdisc", "mbstd", "feature-matching"])  # all ten digits: lower FID first

    def test_the_plot_shows_each_finished_seeds_share_of_modes(self):
        import collapse_study as cs

        results = {("ring8", "baseline", 1): {"eval/modes": 8, "eval/modes_total": 8},
                   ("ring8", "baseline", 2): {"eval/modes": 6, "eval/modes_total": 8},
                   ("ring8", "mbstd", 1): {"failed": "exit 1"}, ("ring8", "mbstd", 2): {"pending": True}}
        self.assertEqual(cs.mode_shares("ring8", ["baseline", "mbstd"], [1, 2], results),
                         {"baseline": [1.0, 0.75], "mbstd": []})
        with tempfile.TemporaryDirectory() as d:
            png = Path(d) / "modes.png"
            cs.plot_modes(["ring8"], ["baseline", "mbstd"], [1, 2], results, png)
            self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")

    def test_a_stopped_run_is_resumed_not_started_over(self):
        import subprocess

        import objective_study as st

        binary = built_gancu(self)
        with tempfile.TemporaryDirectory() as d:
            run = Path(d) / "run"
            cmd = [str(binary), "train", "--preset", "ring8", "--steps", "6", "--backend", "cpu", "--threads", "1",
                   "--out", str(run), "--set", "log.checkpoint_every=3"]
            subprocess.run(cmd[:5] + ["4"] + cmd[6:], check=True, capture_output=True)  # "stopped" at step 4
            r = st.train_and_evaluate(binary, run, cmd, 1)
            self.assertNotIn("failed", r, r)
            log = (Path(d) / "run.log").read_text()
            self.assertIn("train --resume --out", log)  # not trained again from step 0
            self.assertIn("step_00000004.safetensors", " ".join(p.name for p in (run / "checkpoints").iterdir()))
            self.assertEqual(r["command"], " ".join(cmd))  # the record keeps the command of the whole run

    def test_every_remedy_trains_on_the_ring(self):
        import shlex
        import subprocess

        binary = built_gancu(self)
        import collapse_study as cs

        with tempfile.TemporaryDirectory() as d:
            for remedy in cs.REMEDIES:
                cmd = cs.command(binary, Path(d) / remedy, "ring8", remedy, 1, 1, 2)
                r = subprocess.run(cmd, capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, f"{shlex.join(cmd)}\n{r.stdout[-800:]}{r.stderr[-800:]}")


class Floor(unittest.TestCase):
    def test_layer_arithmetic(self):
        import floor

        # A 3x3 conv, stride 2, pad 1 on 28x28x1 -> 14x14x8: 14*14*8*9*1 multiply-adds per sample.
        net, shape = floor.passes(["conv out=8 k=3 s=2 p=1"], (28, 28, 1))
        self.assertEqual(shape, (14, 14, 8))
        self.assertEqual(net[0][5], 14 * 14 * 8 * 9)
        self.assertEqual(net[0][4], 9 * 8 + 8)
        # Per-axis kernels: a 1x7 conv padded (0, 3) keeps 17x17 and costs 7 taps, not 49.
        net, shape = floor.passes(["conv out=4 kh=1 kw=7 ph=0 pw=3"], (17, 17, 2))
        self.assertEqual(shape, (17, 17, 4))
        self.assertEqual(net[0][5], 17 * 17 * 4 * 7 * 2)
        # The transposed conv is the adjoint: 7x7 -> 14x14 with k4 s2 p1.
        net, shape = floor.passes(["convT out=2 k=4 s=2 p=1"], (7, 7, 3))
        self.assertEqual(shape, (14, 14, 2))
        self.assertEqual(net[0][5], 7 * 7 * 3 * 16 * 2)
        # An activation after a layer fuses into it (no traffic of its own).
        net, _ = floor.passes(["linear out=5", "relu"], (1, 1, 3))
        self.assertTrue(net[1][1])


class VerificationDoc(unittest.TestCase):
    """docs/verification.md states how many parity tests tests/cuda_ops_test.cpp holds; the number
    is written by hand, so this keeps it true when a test is added or removed."""

    def test_the_stated_cuda_ops_test_count_is_the_files(self):
        import re

        source = (REPO / "tests" / "cuda_ops_test.cpp").read_text()
        in_file = len(re.findall(r"^TEST(?:_F|_P)?\(", source, flags=re.M))
        doc = (REPO / "docs" / "verification.md").read_text()
        stated = re.findall(r"`tests/cuda_ops_test\.cpp`, (\d+) tests", doc)
        self.assertEqual(len(stated), 1, "docs/verification.md should state the count once")
        self.assertEqual(int(stated[0]), in_file,
                         f"docs/verification.md says {stated[0]} tests in cuda_ops_test.cpp, the file has {in_file}")


class BenchCompareVariants(unittest.TestCase):
    def test_each_variant_costs_a_multiple_of_the_last(self):
        import bench_compare

        g = {("wgan-gp", "gp", 64): {"ms_per_iter": 150.0}, ("wgan-gp", "plain", 64): {"ms_per_iter": 100.0}}
        t = {("wgan-gp", "gp", 64, "eager"): {"ms_per_iter": 900.0},
             ("wgan-gp", "plain", 64, "eager"): {"ms_per_iter": 300.0}}
        lines = bench_compare.variant_cost_lines(["wgan-gp"], [64], ["gp", "plain"], g, t)
        self.assertIn("| wgan-gp | 64 | gp | 150.0 | 1.50x | 900.0 | 3.00x |", lines)
        self.assertIn("| wgan-gp | 64 | plain | 100.0 | 1.00x | 300.0 | 1.00x |", lines)
        # A missing measurement is a dash, never a number; one variant gives no table.
        lines = bench_compare.variant_cost_lines(["wgan-gp"], [64, 256], ["gp", "plain"], g, t)
        self.assertIn("| wgan-gp | 256 | gp | - | - | - | - |", lines)
        self.assertEqual(bench_compare.variant_cost_lines(["wgan-gp"], [64], ["gp"], g, t), [])


class ScalingModel(unittest.TestCase):
    def test_allreduce_time_is_the_ring_formula(self):
        import scaling_model

        self.assertEqual(scaling_model.allreduce_seconds(8e6, 1, 400e9, 50e-6), 0.0)  # one rank: nothing
        # docs/data_parallel.md's worked example: dcgan's G over 16 ranks across nodes.
        t = scaling_model.allreduce_seconds(4 * 1935872, 16, 400e9, 50e-6)
        self.assertAlmostEqual(t, 50e-6 + 1.875 * 4 * 1935872 / 400e9, places=12)
        self.assertAlmostEqual(t * 1e6, 86.3, places=1)

    def test_table_from_bench_records(self):
        import scaling_model

        with tempfile.TemporaryDirectory() as d:
            bench = Path(d) / "bench.jsonl"
            # A GPU record (as tools/gpu_check.sh would write): 1 ms per iteration at batch 128.
            bench.write_text(json.dumps({"preset": "toy", "backend": "cuda", "params_g": 1000000, "params_d": 250000,
                                         "d_steps": 1, "ms_per_iter": 1.0, "batch": 128}) + "\n")
            out = io.StringIO()
            with redirect_stdout(out):
                scaling_model.main(["--preset", "toy", "--bench", str(bench), "--nodes", "1"])
        row = [line for line in out.getvalue().splitlines() if line.startswith("| toy")][0]
        cells = [c.strip() for c in row.strip("|").split("|")]
        self.assertEqual(cells[2], "5.00")  # MB per iteration: 4 x (1 x 250k + 1M)
        t_comm = 2 * 20e-6 + 2 * 7 / 8 * 5e6 / 450e9
        self.assertAlmostEqual(float(cells[4]), 1e3 * t_comm, places=3)
        self.assertTrue(cells[6].startswith(f"{1e-3 / (1e-3 + t_comm):.2f} at batch 128"))


class ImageFolderPipeline(unittest.TestCase):
    """gancu's image-folder reader against the PyTorch pipeline it follows (PIL's convert("RGB"),
    torchvision's Resize(32) + CenterCrop(32), which call PIL's antialiased bilinear resize; the
    PyTorch peer's reader, tools/gancu_torch.py's load_images, implements it): a
    folder of odd-sized PNG and JPEG files goes through `gancu train --data FOLDER` (one step of
    dcgan32), whose cache holds what training sees."""

    def test_matches_pil_resize_and_center_crop(self):
        import subprocess

        from PIL import Image

        binary = built_gancu(self)
        rng = np.random.default_rng(5)
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d) / "images"
            folder.mkdir()
            sizes = [(50, 37), (90, 121), (33, 33), (64, 40), (200, 201), (31, 95)]
            for i, (w, h) in enumerate(sizes):
                # Smooth images (a JPEG's blocks and a resize's taps both behave) with noise on top.
                yy, xx = np.mgrid[0:h, 0:w]
                base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], -1)
                arr = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
                im = Image.fromarray(arr if i != 2 else arr[..., 0])  # one gray image
                im.save(folder / f"{i:02d}.jpg", quality=95) if i % 2 else im.save(folder / f"{i:02d}.png")
            # torchvision.transforms.Resize(32) then CenterCrop(32), on PIL images: the peer's reader.
            want, _ = gt.load_images(str(folder), (3, 32, 32))
            env = dict(os.environ, GANCU_CACHE_DIR=str(Path(d) / "cache"))
            out = subprocess.run([str(binary), "train", "--preset", "dcgan32", "--data", str(folder), "--steps", "1",
                                  "--batch", "2", "--threads", "1", "--out", str(Path(d) / "run")],
                                 capture_output=True, text=True, env=env)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("6 images of 32x32x3", out.stderr)
            cached = list((Path(d) / "cache" / "folders").glob("*.idx"))
            self.assertEqual(len(cached), 1)
            got = gt.read_idx(cached[0])
            self.assertEqual(got.shape, (6, 32, 32, 3))
            for i, w in enumerate(want):
                diff = np.abs(got[i].astype(int) - w.astype(int))
                # PIL resamples in 8-bit fixed point with a rounded intermediate row; gancu in float.
                self.assertLessEqual(diff.max(), 2, f"image {i} {sizes[i]}")
                self.assertLess(diff.mean(), 0.3, f"image {i} {sizes[i]}")


class EvaluationPeer(unittest.TestCase):
    """gancu eval --samples against tools/eval_pytorch.py (the classifier in PyTorch, the metrics
    from their papers in dense numpy): the same numbers on the same images. Needs the gancu
    binary ($GANCU_BINARY or build/gancu), the shipped Fashion-MNIST classifier and the data."""

    CLASSIFIER = REPO / "models" / "fashion-mnist_classifier.safetensors"
    TEST_IMAGES = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    TRAIN_IMAGES = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

    def test_gancu_eval_matches_the_peer(self):
        import subprocess

        binary = built_gancu(self)
        self.assertTrue(self.CLASSIFIER.exists(), f"{self.CLASSIFIER} is missing (it is shipped in models/)")
        for need in (self.TEST_IMAGES, self.TRAIN_IMAGES):
            if not need.exists():
                self.skipTest(f"{need} is missing")
        import eval_pytorch as ep

        # Samples of three kinds: real training images (near the best values), the same made noisy
        # (a generator early in training), and images of two classes only (collapse).
        train = gt.read_idx(self.TRAIN_IMAGES)[:1500]
        rng = np.random.default_rng(3)
        noisy = np.clip(train.astype(np.int32) + rng.integers(-60, 61, train.shape), 0, 255).astype(np.uint8)
        labels = gt.read_idx(self.TRAIN_IMAGES.parent / "train-labels-idx1-ubyte.gz")[:6000]
        two = gt.read_idx(self.TRAIN_IMAGES)[:6000][labels < 2][:800]
        net, layer, _ = ep.load_classifier(str(self.CLASSIFIER))
        _, real_f = ep.judge(net, layer, gt.read_idx(self.TEST_IMAGES))
        with tempfile.TemporaryDirectory() as tmp:
            for name, images in (("real", train), ("noisy", noisy), ("two_classes", two)):
                path = Path(tmp) / f"{name}.idx"
                gt.write_idx_u8(path, images)
                run = subprocess.run([str(binary), "eval", "--samples", str(path), "--classifier", str(self.CLASSIFIER),
                                      "--backend", "cpu", "--json"], capture_output=True, text=True, timeout=600)
                self.assertEqual(run.returncode, 0, run.stderr)
                mine = json.loads(run.stdout[run.stdout.index("{"):])
                fake_p, fake_f = ep.judge(net, layer, images)
                peer = {**ep.class_statistics(fake_p), "fid_classifier": ep.frechet_distance(fake_f, real_f),
                        **ep.prdc(real_f, fake_f)}
                with self.subTest(name):
                    # The classifier's float32 sums differ in order only: the same argmax.
                    self.assertEqual(mine["histogram"], peer["histogram"])
                    self.assertEqual(mine["eval/modes"], peer["modes"])
                    self.assertAlmostEqual(mine["eval/kl_uniform"], peer["kl_uniform"], places=9)
                    self.assertAlmostEqual(mine["eval/score"], peer["score"], delta=1e-5 * peer["score"])
                    self.assertAlmostEqual(mine["eval/fid_classifier"], peer["fid_classifier"],
                                           delta=1e-4 * max(1.0, peer["fid_classifier"]))
                    # k-NN counts may flip only where a distance ties a radius to float32 rounding.
                    for key in ("precision", "recall", "density", "coverage"):
                        self.assertAlmostEqual(mine[f"eval/{key}"], peer[key], delta=0.002, msg=key)
                if name == "two_classes":
                    self.assertLessEqual(peer["modes"], 4)
                    self.assertLess(peer["coverage"], 0.3)


class InceptionAgainstPyTorch(unittest.TestCase):
    """gancu's Inception-v3 (`gancu eval --inception`) against the PyTorch networks it follows, with
    the same random weights (no pretrained weights are available offline): torchvision's
    inception_v3, and the FID network of pytorch-fid (its own code, tools/setup_pytorch_fid.sh,
    whose weights download is replaced by our random state dict). Batch norm's running statistics
    are set from a calibration batch so that activations neither vanish nor overflow (random
    running statistics would let them grow or vanish through 94 layers). Also checks the FID, KID
    that gancu computes from those features against numpy (the Inception score's splits are checked
    in tests/inception_test.cpp)."""

    # fp32, different summation orders (im2col + OpenBLAS against PyTorch's convolutions), 94
    # layers: measured max |diff| / max |value| ~1e-6; asserted with headroom.
    RTOL = 2e-5

    def setUp(self):
        self.binary = built_gancu(self)

    @staticmethod
    def calibrated(model, channels=3):
        torch.manual_seed(1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # cumulative: after one batch, the running statistics are that batch's
                m.reset_running_stats()
                torch.nn.init.normal_(m.weight, 1.0, 0.1)
                torch.nn.init.normal_(m.bias, 0.0, 0.1)
        model.train()
        with torch.no_grad():
            model(torch.rand(2, 3, 299, 299) * 2 - 1)
        model.eval()
        return model

    @staticmethod
    def images(n, h, w, c, seed):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w]
        out = []
        for i in range(n):
            base = np.stack([(xx * (i + 1) * 37 + yy * 11) % 256, (yy * (i + 2) * 19) % 256, (xx + yy) * 3 % 256], -1)
            out.append(np.clip(base[..., :c] + rng.normal(0, 25, (h, w, c)), 0, 255).astype(np.uint8))
        return np.stack(out)

    def gancu_eval(self, weights, samples, tmp, reference=None):
        import subprocess
        spath, fpath = Path(tmp) / "samples.idx", Path(tmp) / "features.safetensors"
        gt.write_idx_u8(spath, samples if samples.shape[-1] != 1 else samples[..., 0])
        cmd = [str(self.binary), "eval", "--samples", str(spath), "--inception", str(weights), "--features-out",
               str(fpath), "--backend", "cpu", "--json"]
        if reference is not None:
            rpath = Path(tmp) / "reference.idx"
            gt.write_idx_u8(rpath, reference)
            cmd += ["--reference", str(rpath)]
        env = dict(os.environ, GANCU_CACHE_DIR=str(Path(tmp) / "cache"))
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        self.assertEqual(run.returncode, 0, run.stderr)
        tensors, meta = gt.read_safetensors(fpath)
        return json.loads(run.stdout[run.stdout.index("{"):]), tensors["features"], tensors["logits"], meta

    def convert(self, model, tmp, variant):
        import subprocess
        pth, out = Path(tmp) / "weights.pth", Path(tmp) / "weights.safetensors"
        torch.save(model.state_dict(), pth)
        run = subprocess.run([sys.executable, str(REPO / "tools" / "convert_inception.py"), str(pth), str(out)],
                             capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn(f"variant {variant}", run.stdout)
        return out

    def assert_close(self, got, want, what):
        scale = float(np.abs(want).max())
        err = float(np.abs(got - want).max())
        print(f"inception {what}: max |diff| {err:.3g}, max |value| {scale:.3g}, ratio {err / scale:.3g}",
              file=sys.stderr)
        self.assertGreater(scale, 1e-3, f"{what}: the features vanished; the check would be empty")
        self.assertLessEqual(err, self.RTOL * scale, what)

    def test_torchvision_variant_on_gray_images(self):
        from torchvision.models import inception_v3
        torch.manual_seed(0)
        model = self.calibrated(inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False))
        pool = {}
        model.avgpool.register_forward_hook(lambda m, i, o: pool.__setitem__("x", o.flatten(1)))
        samples = self.images(3, 28, 28, 1, seed=4)  # MNIST-sized: gancu repeats the channel
        with tempfile.TemporaryDirectory() as tmp:
            weights = self.convert(model, tmp, "torchvision")
            result, features, logits, meta = self.gancu_eval(weights, samples, tmp)
        x = torch.from_numpy(samples).permute(0, 3, 1, 2).float().repeat(1, 3, 1, 1) / 255 * 2 - 1
        with torch.no_grad():
            want_logits = model(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)).numpy()
        self.assertEqual(meta["variant"], "torchvision")
        self.assertEqual(features.shape, (3, 2048))
        self.assert_close(features, pool["x"].numpy(), "torchvision pool3")
        self.assert_close(logits, want_logits, "torchvision logits")
        self.assertEqual(result["inception/samples"], 3)
        self.assertNotIn("inception/fid", result)  # no reference: the Inception score only

    def test_fid_variant_against_pytorch_fid(self):
        sys.path.insert(0, os.environ.get("GANCU_PYTORCH_FID_PATH",
                                          str(build_dir() / "pytorch-fid")))
        try:
            import pytorch_fid.inception as pfi
        except ImportError:
            self.fail("pytorch-fid is missing: run tools/setup_pytorch_fid.sh (tools/test.sh does)")
        # pytorch-fid's own FID network and pipeline (resize to 299, [0, 1] -> [-1, 1], pool3), with our
        # random weights in place of the download.
        real_loader = pfi.load_state_dict_from_url
        state = {}
        pfi.load_state_dict_from_url = lambda *a, **k: state
        try:
            torch.manual_seed(0)
            fid_net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=True)
            for name, block in (("Mixed_5b", pfi.FIDInceptionA(192, pool_features=32)),
                                ("Mixed_5c", pfi.FIDInceptionA(256, pool_features=64)),
                                ("Mixed_5d", pfi.FIDInceptionA(288, pool_features=64)),
                                ("Mixed_6b", pfi.FIDInceptionC(768, channels_7x7=128)),
                                ("Mixed_6c", pfi.FIDInceptionC(768, channels_7x7=160)),
                                ("Mixed_6d", pfi.FIDInceptionC(768, channels_7x7=160)),
                                ("Mixed_6e", pfi.FIDInceptionC(768, channels_7x7=192)),
                                ("Mixed_7b", pfi.FIDInceptionE_1(1280)), ("Mixed_7c", pfi.FIDInceptionE_2(2048))):
                setattr(fid_net, name, block)
            for m in fid_net.modules():  # the new blocks' convs: torchvision's init, as in the rest
                if isinstance(m, torch.nn.Conv2d):
                    torch.nn.init.trunc_normal_(m.weight, std=0.1, a=-2, b=2)
            self.calibrated(fid_net)
            state.update(fid_net.state_dict())
            net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                  normalize_input=True, use_fid_inception=True).eval()
        finally:
            pfi.load_state_dict_from_url = real_loader
        samples, reference = self.images(4, 32, 32, 3, seed=7), self.images(4, 32, 32, 3, seed=8)
        with tempfile.TemporaryDirectory() as tmp:
            weights = self.convert(fid_net, tmp, "fid")
            result, features, logits, meta = self.gancu_eval(weights, samples, tmp, reference)
        with torch.no_grad():
            x = torch.from_numpy(samples).permute(0, 3, 1, 2).float() / 255
            want = net(x)[0].flatten(1).numpy()
            want_logits = fid_net.fc(torch.from_numpy(want)).numpy()
            # The reference's features from pytorch-fid (gancu's agree with them as the samples' do).
            ref_features = net(torch.from_numpy(reference).permute(0, 3, 1, 2).float() / 255)[0].flatten(1).numpy()
        self.assertEqual(meta["variant"], "fid")
        self.assert_close(features, want, "fid pool3 (pytorch-fid)")
        self.assert_close(logits, want_logits, "fid logits")
        # The scores from gancu's own features, recomputed in numpy from their definitions.
        f, r = features.astype(np.float64), ref_features.astype(np.float64)
        # With centred rows A, B: S1 = A'A / (n-1), S2 = B'B / (n-1), and tr (S1 S2)^(1/2) is the sum of the
        # singular values of A B' / (n-1) (the nonzero eigenvalues of S1 S2 are those of C C', C = A B' / (n-1)).
        a, b = f - f.mean(0), r - r.mean(0)
        n1 = len(f) - 1
        fid = (((f.mean(0) - r.mean(0)) ** 2).sum() + (a * a).sum() / n1 + (b * b).sum() / n1
               - 2 * np.linalg.svd(a @ b.T / n1, compute_uv=False).sum())
        self.assertAlmostEqual(result["inception/fid"], fid, delta=1e-3 * abs(fid))

        def k(a, b):
            return (a @ b.T / 2048 + 1) ** 3
        m, n = len(f), len(r)
        kxx, kyy = k(f, f), k(r, r)
        kid = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2 * k(f, r).mean())
        # 4 rows each: every subset gancu draws is the whole set, so its mean is the exact estimate.
        self.assertAlmostEqual(result["inception/kid"], kid, delta=1e-3 * abs(kid))


def print_param_counts():
    print("preset    G params    D params")
    for name in gan_preset_names():
        G, D, _ = gt.build_models(gt.load_config(name))
        print(f"{name:8s} {gt.count_params(G):10,d}  {gt.count_params(D):10,d}")


if __name__ == "__main__":
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print_param_counts()
    unittest.main()
