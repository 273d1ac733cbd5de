#!/usr/bin/env python3
"""One training iteration of the PyTorch peer from given parameters and inputs: the reference that
gancu's C++ tests compare gancu's own iteration with, tensor by tensor, for every objective.

  /usr/bin/python3 tools/step_reference.py --config RUN_CONFIG.toml --init INIT.safetensors \\
      --inputs INPUTS.safetensors --out OUT.safetensors [--float64]

RUN_CONFIG.toml   a resolved gancu config (a run folder's config.toml: every key present; absent
                  objective keys take gancu's defaults). train.loss picks the objective,
                  train.d_steps the number of D steps, optim.g / optim.d the optimizers (fresh:
                  the iteration is the optimizers' first step).
INIT.safetensors  a gancu checkpoint: G.<i>.<p>, D.<i>.<p> and batch-norm running statistics in
                  PyTorch layouts, before the iteration. Optional "objective.k" ([1]): BEGAN's k
                  to start from (else train.began_k0). Other tensors (the optimizers' state, the
                  trainer's counters) are not read.
INPUTS.safetensors, for each D step k = 0 .. d_steps-1:
  x.k      f [B, H, W, C]  the real batch as gancu saw it (NHWC, normalized to [-1, 1]), or
           f [B, F]        points, for the 2-d presets
  z.k      f [B, z_dim]    the noise
  eps.k    f [B]           wgan-gp: the interpolation weights
  alpha.k  f [B]           dragan: the per-sample factors
  u.k      f like x.k      dragan: the per-value draws (NHWC for images)
  class.k       int [B]    a conditional model (model.classes > 0): the real batch's labels
  fake_class.k  int [B]    ... and the classes its fakes are drawn for, each in 0..classes-1
                           (both networks read them as one-hot rows, as gancu_torch.Trainer says)
  step     i64 [1]         the iteration's index (r1: D step k is D step step * d_steps + k of the
                           run, penalized when that is a multiple of train.r1_interval; default 0
                           for the other objectives)
OUT.safetensors (float32, or float64 with --float64):
  updated.G.*, updated.D.*   parameters and running statistics after the iteration (gancu's names)
  loss.d  [1]                the last D step's D loss, penalty included
  loss.g  [1]                G's loss
  penalty, grad_norm  [1]    wgan-gp, dragan, r1: the last D step's penalty and mean per-sample
                             input-gradient norm (absent when r1's interval skipped that step)
  k, convergence  [1]        began: k after the iteration, the last D step's convergence measure
  grad.D.*                   D's gradients of the last D step, before its optimizer step
  grad.G.*                   G's gradients of the G step
The iteration is gancu_torch.Trainer.train_step (its order is documented at the top of
gancu_torch.py; the objectives in gancu_objectives.py). --float64 converts the parameters and the
inputs to float64 and runs everything in it.

Prints one summary line; bad input (a missing or misshapen tensor, a bad config) exits 2 with a
message naming the file and the tensor.
"""

import argparse
import os
import sys
from pathlib import Path

# Debian's torch on the system OpenBLAS runs slower when OpenBLAS starts threads of its own beside
# torch's (see bench_pytorch.py); set before torch is loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import gancu_torch as gt  # noqa: E402
import torch  # noqa: E402


def _nchw(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 3, 1, 2).contiguous() if t.dim() == 4 else t


def _tensor(inputs: dict, name: str, shape: tuple, where: str, dtype: torch.dtype) -> torch.Tensor:
    if name not in inputs:
        raise gt.ConfigError(f"{where}: no tensor '{name}'")
    a = inputs[name]
    if a.dtype.kind != "f":
        raise gt.ConfigError(f"{where}: tensor '{name}' is {a.dtype}, expected float32 or float64")
    if tuple(a.shape) != tuple(shape):
        raise gt.ConfigError(f"{where}: tensor '{name}' has shape {list(a.shape)}, expected {list(shape)}")
    return torch.from_numpy(np.array(a)).to(dtype)


def _classes(inputs: dict, name: str, batch: int, classes: int, where: str) -> torch.Tensor:
    if name not in inputs:
        raise gt.ConfigError(f"{where}: no tensor '{name}' (a conditional model, model.classes = {classes}, "
                             "needs the real batch's labels class.k and the fake classes fake_class.k)")
    a = inputs[name]
    if a.dtype.kind not in "iu" or tuple(a.shape) != (batch,):
        raise gt.ConfigError(f"{where}: tensor '{name}' is {a.dtype} {list(a.shape)}, expected integers [{batch}]")
    if a.size and not 0 <= int(a.min()) <= int(a.max()) < classes:
        raise gt.ConfigError(f"{where}: tensor '{name}' holds classes {int(a.min())}..{int(a.max())}, outside "
                             f"the model's 0..{classes - 1}")
    return torch.from_numpy(a.astype(np.int64))


def run_reference(cfg: dict, init: dict[str, torch.Tensor], inputs: dict[str, np.ndarray], float64: bool = False,
                  init_name: str = "init", inputs_name: str = "inputs") -> tuple[dict, str, list[str]]:
    """The iteration from `init` (checkpoint tensors) and `inputs` (INPUTS' arrays by name).
    Returns (OUT's tensors, a summary, notes)."""
    dtype = torch.float64 if float64 else torch.float32
    trainer = gt.Trainer(cfg, "cpu", dtype=dtype)
    obj, d_steps, batch = trainer.objective, trainer.d_steps, trainer.batch
    notes = gt.apply_checkpoint(trainer.G_eager, trainer.D_eager, init, init_name)
    if "objective.k" in init:
        k0 = init["objective.k"]
        if k0.numel() != 1:
            raise gt.ConfigError(f"{init_name}: objective.k has shape {list(k0.shape)}, expected [1]")
        trainer.began_k = k0.reshape(()).to(dtype).clone()
        if not obj.autoencoder:
            notes.append(f"{init_name}: objective.k is read by began only (train.loss = '{obj.loss}')")
    sample = trainer.image_shape
    x_shape = (batch, sample[1], sample[2], sample[0]) if len(sample) == 3 else (batch, *sample)
    real, noise, draws, real_classes, fake_classes = [], [], [], [], []
    for k in range(d_steps):
        real.append(_nchw(_tensor(inputs, f"x.{k}", x_shape, inputs_name, dtype)))
        noise.append(_tensor(inputs, f"z.{k}", (batch, trainer.z_dim), inputs_name, dtype))
        if trainer.classes > 0:
            real_classes.append(_classes(inputs, f"class.{k}", batch, trainer.classes, inputs_name))
            fake_classes.append(_classes(inputs, f"fake_class.{k}", batch, trainer.classes, inputs_name))
        d = {}
        if obj.loss == "wgan-gp":
            d["eps"] = _tensor(inputs, f"eps.{k}", (batch,), inputs_name, dtype)
        elif obj.loss == "dragan":
            d["alpha"] = _tensor(inputs, f"alpha.{k}", (batch,), inputs_name, dtype)
            d["u"] = _nchw(_tensor(inputs, f"u.{k}", x_shape, inputs_name, dtype))
        draws.append(d)
    if "step" in inputs:
        s = inputs["step"]
        if s.dtype.kind not in "iu" or s.size != 1 or int(s.reshape(-1)[0]) < 0:
            raise gt.ConfigError(f"{inputs_name}: tensor 'step' must be one non-negative integer, got {s.dtype} {list(s.shape)}")
        trainer.step_count = int(s.reshape(-1)[0])
    elif obj.loss == "r1":
        raise gt.ConfigError(f"{inputs_name}: no tensor 'step' (r1 needs the iteration's index for train.r1_interval)")
    per_step = ("x", "z", *gt.DRAW_NAMES.get(obj.loss, ()), *(("class", "fake_class") if trainer.classes else ()))
    used = {f"{n}.{k}" for k in range(d_steps) for n in per_step} | {"step"}
    unused = sorted(set(inputs) - used)
    if unused:
        notes.append(f"{inputs_name}: not used by {obj.loss} with d_steps {d_steps}: {', '.join(unused[:8])}"
                     f"{' ...' if len(unused) > 8 else ''}")

    record = {}
    conditional = trainer.classes > 0
    metrics = trainer.train_step(real=real, noise=noise, draws=draws, record=record,
                                 real_classes=real_classes if conditional else None,
                                 fake_classes=fake_classes if conditional else None)
    out = {f"updated.{k}": v for k, v in gt.checkpoint_state(trainer.G_eager, trainer.D_eager).items()}
    for key, name in (("loss_d", "loss.d"), ("loss_g", "loss.g"), ("penalty", "penalty"), ("grad_norm", "grad_norm"),
                      ("k", "k"), ("convergence", "convergence")):
        if key in metrics:
            out[name] = metrics[key].detach().reshape(1).to(dtype)
    out.update({f"grad.D.{n}": g for n, g in record["grad_D"].items()})
    out.update({f"grad.G.{n}": g for n, g in record["grad_G"].items()})
    shown = " ".join(f"{k} {float(metrics[k]):.6g}" for k in ("loss_d", "loss_g", "penalty", "grad_norm", "k",
                                                             "convergence") if k in metrics)
    classes = f", {trainer.classes} classes" if conditional else ""
    summary = (f"{obj.loss}{classes}, iteration {trainer.step_count - 1} ({d_steps} D step{'s' if d_steps > 1 else ''}, "
               f"batch {batch}, {str(dtype).replace('torch.', '')}): {shown}")
    return out, summary, notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="resolved gancu config (TOML)")
    ap.add_argument("--init", required=True, help="gancu checkpoint with the parameters before the iteration")
    ap.add_argument("--inputs", required=True, help="the iteration's inputs (safetensors)")
    ap.add_argument("--out", required=True, help="where to write the results (safetensors)")
    ap.add_argument("--float64", action="store_true", help="run in float64")
    args = ap.parse_args(argv)
    try:
        for flag, path in (("--config", args.config), ("--init", args.init), ("--inputs", args.inputs)):
            if not Path(path).is_file():
                raise gt.ConfigError(f"{flag} {path}: no such file")
        cfg = gt.load_config(args.config)
        init = gt.load_gancu_checkpoint(args.init)
        inputs, _ = gt.read_safetensors(args.inputs)
        out, summary, notes = run_reference(cfg, init, inputs, args.float64, args.init, args.inputs)
    except gt.ConfigError as e:
        print(f"step_reference: {e}", file=sys.stderr)
        return 2
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    meta = {"producer": "tools/step_reference.py", "config": args.config, "init": args.init, "inputs": args.inputs,
            "loss": cfg["train"]["loss"], "torch_version": torch.__version__,
            "dtype": "float64" if args.float64 else "float32"}
    try:
        gt.write_safetensors(args.out, out, meta)
    except OSError as e:
        print(f"step_reference: --out {args.out}: {e}", file=sys.stderr)
        return 2
    print(f"step_reference: {summary}; {len(out)} tensors -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
