"""What crash isolation costs: one conversion in the warm child vs in this process, and the child's start.

Run::

    python -m benchmarks.isolation_overhead [--n 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="conversions per mode and place")
    args = parser.parse_args(argv)
    from compression.inputs.data import load_dataset
    from compression.inputs.pretrained import load_pretrained
    from compression.isolation import IsolatedPool, shared_pool
    from compression.tflite.convert import convert_to_tflite

    ds = load_dataset("digits")
    model = load_pretrained("digits", "seed_cnn")
    t0 = time.perf_counter()
    shared_pool().call(int, "1", what="start")
    start = time.perf_counter() - t0
    with IsolatedPool(preload=()) as bare:
        t0 = time.perf_counter()
        bare.call(int, "1")
        spawn_only = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(20):
            bare.call(int, "1")
        round_trip = (time.perf_counter() - t0) / 20
    print(f"child start with TensorFlow imported: {start:.2f} s; bare spawn {spawn_only:.2f} s; "
          f"round trip of an empty call {round_trip * 1000:.1f} ms")
    for mode in ("float32", "int8"):
        times = {True: [], False: []}
        for _ in range(args.n):
            for isolate in (True, False):  # alternate, so load changes hit both
                t0 = time.perf_counter()
                convert_to_tflite(model, mode, representative=ds.x_train, isolate=isolate)
                times[isolate].append(time.perf_counter() - t0)
        iso, local = statistics.median(times[True]), statistics.median(times[False])
        print(f"{mode}: median of {args.n}: in the child {iso:.3f} s, in process {local:.3f} s, "
              f"overhead {iso - local:+.3f} s per conversion")
    return 0


if __name__ == "__main__":
    sys.exit(main())
