#!/usr/bin/env python3
"""Shows that the emulated CUDA tests can fail: plants known kinds of GPU bug in kernels/, one at a
time, rebuilds the emulated build (GANCU_CUDA_EMULATION) and runs the tests that should catch it in
each scheduling order (forward, reverse, shuffled). Each bug must be caught in at least one order;
the table of what caught what goes to stdout and, with --out, to a Markdown file (docs/).

    tools/plant_bugs.py [--build build-emu] [--out docs/planted_bugs.md]

The kernel sources are restored after each bug (copied back from a saved copy, whatever happens),
and the build is rebuilt clean at the end. Takes a few minutes: one kernel file recompiles per bug.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, file, text to replace, replacement, gtest filter)
BUGS = [
    ("removed __syncthreads in the bias-gradient reduction (reduce.cu, tree loop)", "kernels/reduce.cu",
     "      sh[threadIdx.y * blockDim.x + threadIdx.x] += sh[(threadIdx.y + s) * blockDim.x + threadIdx.x];\n"
     "    __syncthreads();\n",
     "      sh[threadIdx.y * blockDim.x + threadIdx.x] += sh[(threadIdx.y + s) * blockDim.x + threadIdx.x];\n",
     "CudaOps.LinearBackward"),
    ("removed __syncthreads in batch norm's statistics (batchnorm.cu, Chan merge tree)", "kernels/batchnorm.cu",
     "      sh_m2[t] = a_m2;\n    }\n    __syncthreads();\n",
     "      sh_m2[t] = a_m2;\n    }\n",
     "CudaOps.BatchNormForward"),
    ("removed __syncthreads in softmax cross-entropy (softmax.cu, per-warp partials)", "kernels/softmax.cu",
     "    sh[warp][1] = acc_correct;\n  }\n  __syncthreads();\n",
     "    sh[warp][1] = acc_correct;\n  }\n",
     "CudaOps.SoftmaxCrossEntropy"),
    ("half-warp sum (softmax.cu, warp_sum from offset 8)", "kernels/softmax.cu",
     "  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);",
     "  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);",
     "CudaOps.Softmax"),
    ("divergent shuffle (softmax.cu, warp_max in half the lanes)", "kernels/softmax.cu",
     "  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));",
     "  if ((threadIdx.x & 31) < 16)\n"
     "    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));",
     "CudaOps.Softmax"),
    ("off-by-one in the bias + activation epilogue (elementwise.cu, scalar tail)", "kernels/elementwise.cu",
     "  for (uint32_t i = start + tid; i < n; i += stride) {\n    float v = y[i];",
     "  for (uint32_t i = start + tid; i + 1 < n; i += stride) {\n    float v = y[i];",
     "CudaOps.LinearForward:CudaOps.Conv2dForwardBackward"),
    ("the first sample left out of the embedding's table gradient (embedding.cu)", "kernels/embedding.cu",
     "      if (label_class(label + s * d.classes, d.classes) != c) continue;",
     "      if (s == 0 || label_class(label + s * d.classes, d.classes) != c) continue;",
     "CudaLabelOps.EmbeddingAndProjectionAgreeWithTheCpu"),
    ("wrong tap in the bilinear resize (resize.cu, forward: the lower row's right pixel)", "kernels/resize.cu",
     "th.l1 * (tw.l0 * e + tw.l1 * f)", "th.l1 * (tw.l0 * e + tw.l1 * e)",
     "CudaOps.ResizeBilinearForwardBackward"),
    ("dropped column weight in the resize's gather (resize.cu, backward)", "kernels/resize.cu",
     "acc += wh * ww * dy_n[", "acc += wh * dy_n[",
     "CudaOps.ResizeBilinearForwardBackward"),
    ("square count of a clipped window (pool.cu, average pooling without the padding)", "kernels/pool.cu",
     "return d.include_pad ? d.k * d.k : (r1 - r0) * (s1 - s0);",
     "return d.include_pad ? d.k * d.k : (r1 - r0) * (r1 - r0);",
     "CudaOps.AvgPoolForwardBackward"),
]
ORDERS = ["forward", "reverse", "shuffle:1"]


def build(build_dir):
    subprocess.run(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)


def run_tests(build_dir, gtest_filter, order):
    env = dict(os.environ, GANCU_SIMT_ORDER=order, GANCU_TEST_QUICK="1", GANCU_REQUIRE_CUDA="1",
               GANCU_SIMT_QUIET="1", OMP_WAIT_POLICY="passive")
    p = subprocess.run([os.path.join(build_dir, "gancu_tests"), "--gtest_filter=" + gtest_filter], cwd=ROOT,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    failed = [l.split("]", 1)[1].strip().split(" ")[0] for l in p.stdout.splitlines()
              if l.startswith("[  FAILED  ]") and "(" in l]
    launch_failure = "simt:" in p.stdout or "launch failure" in p.stdout
    return p.returncode != 0, failed, launch_failure


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build-emu")
    ap.add_argument("--out", help="write the table here (Markdown)")
    args = ap.parse_args()
    build_dir = os.path.join(ROOT, args.build)
    if not os.path.exists(os.path.join(build_dir, "gancu_tests")):
        sys.exit(f"plant_bugs: {args.build}/gancu_tests missing: configure with -DGANCU_CUDA_EMULATION=ON first")
    build(build_dir)
    rows, all_caught = [], True
    saved = tempfile.mkdtemp(prefix="plant_bugs_")
    t_start = time.time()
    for name, path, old, new, gtest_filter in BUGS:
        src = os.path.join(ROOT, path)
        text = open(src).read()
        if text.count(old) != 1:
            sys.exit(f"plant_bugs: the text to replace for '{name}' is not in {path} exactly once")
        backup = os.path.join(saved, os.path.basename(path))
        shutil.copy2(src, backup)
        try:
            with open(src, "w") as f:
                f.write(text.replace(old, new))
            build(build_dir)
            results = {order: run_tests(build_dir, gtest_filter, order) for order in ORDERS}
        finally:
            shutil.copy2(backup, src)
            os.utime(src)  # newer than the planted build: rebuilt next time
        caught = [o for o, (bad, _, _) in results.items() if bad]
        all_caught &= bool(caught)
        how = "; ".join(f"{o}: " + (("failed " + ", ".join(f) if f else "failed") +
                                    (" (launch failure)" if lf else "") if bad else "passed")
                        for o, (bad, f, lf) in results.items())
        rows.append((name, gtest_filter, "yes" if caught else "**NO**", how))
        print(f"plant_bugs: {name}: {'caught' if caught else 'NOT CAUGHT'} ({how})", flush=True)
    build(build_dir)
    elapsed = time.time() - t_start
    lines = [
        "# Planted GPU bugs and the emulated CUDA tests that catch them",
        "",
        "Generated by `tools/plant_bugs.py` (each bug planted alone in `kernels/`, the emulated build",
        "rebuilt, the tests run with `GANCU_TEST_QUICK=1` in each scheduling order of the SIMT emulator).",
        f"{len(BUGS)} bugs, {elapsed / 60:.1f} minutes on this machine.",
        "",
        "| planted bug | tests run | caught | per order |",
        "|---|---|---|---|",
    ] + [f"| {n} | `{f}` | {c} | {h} |" for n, f, c, h in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(os.path.join(ROOT, args.out), "w") as f:
            f.write(table)
    shutil.rmtree(saved, ignore_errors=True)
    sys.exit(0 if all_caught else 1)


if __name__ == "__main__":
    main()
