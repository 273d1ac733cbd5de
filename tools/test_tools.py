#!/usr/bin/env python3
"""Self-checks of the PyTorch peer (tools/gancu_torch.py, gancu_graph.py, gancu_objectives.py,
step_reference.py). About 20 s on a laptop CPU. Run: /usr/bin/python3 tools/test_tools.py [-v]

The parameter counts below were worked out by hand from the presets; gancu checks its own
counts against the same numbers.
"""

import io
import json
import math
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gancu_torch as gt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# preset -> (G parameters, D parameters), worked out by hand:
#  mlp     G: (100*256+256) + 2*256 + (256*512+512) + 2*512 + (512*1024+1024) + 2*1024 + (1024*784+784)
#          D: (784*512+512) + (512*256+256) + (256+1)
#  dcgan   G: 100*12544 + 2*12544 + 256*128*16 + 2*128 + 128*64*16 + 2*64 + (64*9+1)
#          D: (16*64+64) + 64*128*16 + 2*128 + (6272+1)
#  dcgan32 G: 100*4096 + 2*4096 + 256*128*16 + 2*128 + 128*64*16 + 2*64 + (64*3*16+3)
#          D: (3*16*64+64) + 64*128*16 + 2*128 + 128*256*16 + 2*256 + (4096+1)
#  stacked-mnist: dcgan with 3 channels: G's last conv 64*9*3+3, D's first conv 3*16*64+64
#  ring8, grid25 G: (2*256+256) + (256*256+256) + (256*2+2)
#                D: (2*256+256) + (256*256+256) + (256+1)
PARAM_COUNTS = {
    "mlp": (1489936, 533505),
    "dcgan": (1935809, 138689),
    "dcgan32": (1076611, 663361),
    "stacked-mnist": (1936963, 140737),
    "ring8": (67074, 66817),
    "grid25": (67074, 66817),
}


class Presets(unittest.TestCase):
    def test_param_counts(self):
        self.assertEqual(sorted(PARAM_COUNTS), gt.preset_names())
        for name, (g, d) in PARAM_COUNTS.items():
            G, D, _ = gt.build_models(gt.load_config(name))
            self.assertEqual((gt.count_params(G), gt.count_params(D)), (g, d), name)

    def test_shapes(self):
        for name, shape in (("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28)), ("dcgan32", (3, 32, 32))):
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
                         ("conv", {"out": 8, "k": 3, "s": 1, "p": 0, "bias": False}))
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
        self.assertEqual(gt.parse_layer("avgpool k=3 s=1 p=1"), ("avgpool", {"k": 3, "s": 1, "p": 1}))
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
                    ["model.latent=gaussian"], ["train.batch=0"]):
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


class Training(unittest.TestCase):
    def test_steps_run(self):
        for name in gt.preset_names():
            cfg = gt.load_config(name, ["train.batch=8", "train.d_steps=2"])
            if len(gt.build_models(cfg)[2]) != 3:
                with self.assertRaises(gt.ConfigError):  # point generators: the peer says so
                    gt.load_images("synthetic", gt.build_models(cfg)[2])
                continue
            tr = gt.Trainer(cfg, "cpu")
            tr.set_images(gt.load_images("synthetic", tr.image_shape, synthetic_count=20)[0])
            before = [p.clone() for p in tr.G_eager.parameters()]
            for _ in range(3):  # 20 images, batch 8: crosses epoch boundaries
                m = tr.train_step()
            self.assertTrue(all(math.isfinite(float(v)) for v in m.values()), name)
            self.assertTrue(any(not torch.equal(a, b) for a, b in zip(before, tr.G_eager.parameters())))
            self.assertTrue(all(p.requires_grad for p in tr.D_eager.parameters()))


class EvaluationPeer(unittest.TestCase):
    """gancu eval --samples against tools/eval_pytorch.py (the classifier in PyTorch, the metrics
    from their papers in dense numpy): the same numbers on the same images. Needs the gancu
    binary ($GANCU_BINARY or build/gancu), the shipped Fashion-MNIST classifier and the data."""

    ROOT = Path(__file__).resolve().parent.parent
    CLASSIFIER = ROOT / "models" / "fashion-mnist_classifier.safetensors"
    TEST_IMAGES = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    TRAIN_IMAGES = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

    def test_gancu_eval_matches_the_peer(self):
        import os
        import subprocess

        binary = Path(os.environ.get("GANCU_BINARY", self.ROOT / os.environ.get("GANCU_BUILD_DIR", "build") / "gancu"))
        for need in (binary, self.CLASSIFIER, self.TEST_IMAGES, self.TRAIN_IMAGES):
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


def print_param_counts():
    print("preset    G params    D params")
    for name in gt.preset_names():
        G, D, _ = gt.build_models(gt.load_config(name))
        print(f"{name:8s} {gt.count_params(G):10,d}  {gt.count_params(D):10,d}")


if __name__ == "__main__":
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print_param_counts()
    unittest.main()
