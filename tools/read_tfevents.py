#!/usr/bin/env python3
"""Prints what TensorBoard itself reads from an event file or a folder of them, as one JSON object:

  {"file_version": "brain.Event:2",
   "scalars": {TAG: [[step, wall_time, value], ...]},
   "images":  {TAG: [{"step", "wall_time", "height", "width", "png_hex"}, ...]}}

It loads the events with TensorBoard's own loader (EventAccumulator), the code behind
`tensorboard --logdir`, so it checks gancu's writer (src/io/tensorboard.cpp) against the reader users
meet, and shows what a run logged without starting a server. Needs the tensorboard package, which
tools/setup_tensorboard.sh installs into build/tensorboard-venv:

  build/tensorboard-venv/bin/python tools/read_tfevents.py runs/dcgan-.../
"""
import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="an events.out.tfevents.* file, or a folder holding them")
    args = parser.parse_args()
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
    except ImportError as e:
        print(f"read_tfevents: the tensorboard package is missing ({e}); run tools/setup_tensorboard.sh",
              file=sys.stderr)
        return 2
    # 0 keeps every event (the default samples scalars down to 10,000 and images to 4).
    acc = ea.EventAccumulator(args.path, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
    acc.Reload()
    tags = acc.Tags()
    out = {
        "file_version": acc.file_version,
        "scalars": {t: [[e.step, e.wall_time, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "images": {
            t: [{"step": e.step, "wall_time": e.wall_time, "height": e.height, "width": e.width,
                 "png_hex": e.encoded_image_string.hex()} for e in acc.Images(t)]
            for t in tags["images"]
        },
    }
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
