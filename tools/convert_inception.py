#!/usr/bin/env python3
"""Converts Inception-v3 weights a user already has into the file `gancu eval --inception` reads.

gancu downloads nothing. Two sources are understood:

- the FID weights of the common PyTorch FID tools (pytorch-fid, torch-fidelity and others use the
  same file, pt_inception-2015-12-05-6726825d.pth: the TensorFlow FID graph ported to PyTorch;
  1,008 logits) -> variant "fid";
- torchvision's ImageNet weights (inception_v3_google-*.pth, what
  `torchvision.models.inception_v3(weights="DEFAULT")` caches under ~/.cache/torch/hub/checkpoints/;
  1,000 logits) -> variant "torchvision".

The input is a PyTorch state dict (.pth, or a pickled module, whose state dict is taken). The
output keeps PyTorch's tensor names and layouts (conv weights [out, in, kh, kw]); gancu maps the
names onto its layers when it loads the file. The auxiliary classifier (AuxLogits.*) is dropped:
FID never reads it. The variant follows from the number of logits unless --variant says otherwise.

  /usr/bin/python3 tools/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception-fid.safetensors
"""

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gancu_torch import write_safetensors  # noqa: E402

FORMAT = "gancu-inception/1"
LOGITS_TO_VARIANT = {1008: "fid", 1000: "torchvision"}


def load_state_dict(path: Path) -> dict:
    obj = torch.load(str(path), map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SystemExit(f"convert_inception: {path}: not a PyTorch state dict of tensors")
    return obj


def convert(state: dict, variant: str | None) -> tuple[dict, str]:
    if "fc.weight" not in state:
        raise SystemExit("convert_inception: the weights have no 'fc.weight': not an Inception-v3 state dict")
    logits, features = state["fc.weight"].shape
    if features != 2048:
        raise SystemExit(f"convert_inception: fc.weight is {list(state['fc.weight'].shape)}, expected [classes, 2048]")
    if variant is None:
        if logits not in LOGITS_TO_VARIANT:
            raise SystemExit(f"convert_inception: {logits} logits: say --variant fid or --variant torchvision")
        variant = LOGITS_TO_VARIANT[logits]
    out = {}
    for name, t in state.items():
        if name.startswith("AuxLogits."):
            continue
        if name.endswith("num_batches_tracked"):
            out[name] = t.to(torch.int64).reshape(())
        else:
            out[name] = t.detach().to(torch.float32).contiguous()
    # Older state dicts (before PyTorch 0.4.1) have no batch counters; gancu's batch norm keeps one.
    for name in list(out):
        if name.endswith(".running_mean"):
            counter = name[: -len("running_mean")] + "num_batches_tracked"
            out.setdefault(counter, torch.zeros((), dtype=torch.int64))
    return out, variant


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path, help="the PyTorch weights file (.pth)")
    ap.add_argument("out", type=Path, help="the safetensors file to write")
    ap.add_argument("--variant", choices=["fid", "torchvision"],
                    help="the network the weights are for (default: from the number of logits)")
    args = ap.parse_args(argv)
    if not args.weights.is_file():
        raise SystemExit(f"convert_inception: {args.weights}: no such file")
    state = load_state_dict(args.weights)
    tensors, variant = convert(state, args.variant)
    digest = hashlib.sha256(args.weights.read_bytes()).hexdigest()
    write_safetensors(args.out, {k: v.numpy() if v.dim() else np.array(v.item(), dtype=np.int64)
                                 for k, v in tensors.items()},
                      {"format": FORMAT, "variant": variant, "source": args.weights.name, "source_sha256": digest})
    print(f"{args.out}: {len(tensors)} tensors, variant {variant}, from {args.weights.name} (sha256 {digest[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
