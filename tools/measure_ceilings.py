#!/usr/bin/env python3
"""The two ceilings of a GPU, measured once (for tools/floor.py and docs/benchmarks/gpu.md).

  bandwidth  a large device-to-device copy: (bytes read + bytes written) / time
  arithmetic a large square matrix product in fp32, TF32 and bf16: 2 n^3 / time

Timed with CUDA events after warm-up; the median of --repeats runs. Prints one JSON object.
Checks the product against a float64 reference on a slice before timing it.
"""
import argparse
import json
import statistics

import torch


def timed(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copy-gib", type=float, default=4.0)
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}

    n_bytes = int(args.copy_gib * 2**30) // 4 * 4
    src = torch.rand(n_bytes // 4, device=dev)
    dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src), args.repeats)
    assert torch.equal(dst[:1000], src[:1000])
    out["copy_bytes"] = 2 * n_bytes
    out["bandwidth_gbs"] = 2 * n_bytes / t / 1e9

    n = args.n
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(n, n, device=dev).to(dtype)
        b = torch.randn(n, n, device=dev).to(dtype)
        c = a @ b
        ref = a[:64].double() @ b.double()
        err = ((c[:64].double() - ref).norm() / ref.norm()).item()
        t = timed(lambda: torch.matmul(a, b, out=c), args.repeats)
        out[f"{name}_tflops"] = 2 * n**3 / t / 1e12
        out[f"{name}_rel_err"] = err
    torch.backends.cuda.matmul.allow_tf32 = False
    print(json.dumps(out))


if __name__ == "__main__":
    main()
