"""Throughput of the evaluation metrics' networks on this machine, against torch references.

    python benchmarks/bench_metrics.py                      # every section
    python benchmarks/bench_metrics.py --sections=inception --batch=50 --repeats=5 --im2col

Section `inception`: images/s of the FID Inception's features (pool3 and logits) from
32x32 RGB images in [-1, 1], ours (jitted, sharded over all devices; `--im2col` adds
the variant with `models.layers.conv`) against pytorch-fid's `InceptionV3` (torch, the same CPU threads, random
weights: the speed does not depend on their values) in the same run, on the same batch;
the two alternate, and each figure is the median over `--repeats` batches after a
warm-up (compilation). Also the projected time to score 50,000 samples.

Prints a table and writes JSON (one entry per section) to bench_metrics.json in --out
(default runs/benchmarks/; `--out=benchmarks/results` updates the committed file). A
section is a function `args -> (rows, result)` in SECTIONS; rows are (name, images/s,
note) for the table.

Section `classifier`: images/s of the dataset classifiers of classifier-IS/FID (small CNN
at 16 and 32 px, VGG at 32x32x3), inference and training (`bench_classifier`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Optional, Sequence

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from gan_dynamics import parallel  # noqa: E402
from gan_dynamics.errors import UserError  # noqa: E402
from gan_dynamics.metrics import convert_inception, inception  # noqa: E402
from gan_dynamics.models import layers  # noqa: E402

NUM_SAMPLES = 50_000  # a full FID / IS evaluation


def _torch_fid_inception():
    """pytorch-fid's InceptionV3([3]) and its fc layer with random weights, or None."""
    try:
        import torch
    except ImportError:
        return None
    if not convert_inception.prepare_torchvision():
        return None
    try:
        import pytorch_fid.inception as pfid
    except ImportError:
        return None
    original_load = torch.nn.Module.load_state_dict
    pfid.load_state_dict_from_url = lambda *a, **k: None  # no download: keep the random init
    torch.nn.Module.load_state_dict = (
        lambda self, state, *a, **k: original_load(self, self.state_dict(), *a, **k))
    try:
        net = pfid.fid_inception_v3()
    finally:
        torch.nn.Module.load_state_dict = original_load
    pfid.fid_inception_v3 = lambda: net
    wrapper = pfid.InceptionV3([3]).eval()

    def features(images_nchw):
        with torch.no_grad():
            pool3 = wrapper(images_nchw)[0].flatten(1)
            return pool3, pool3 @ net.fc.weight.T

    return torch, features


def _timed(fn, repeats: int) -> list[float]:
    """Wall-clock seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_inception(args):
    batch = args.batch
    images = np.random.default_rng(0).uniform(-1, 1, (batch, 32, 32, 3)).astype(np.float32)
    mesh = parallel.make_mesh()
    parallel.check_batch_size(batch, mesh)
    params = inception.FIDInceptionV3().init(jax.random.key(0), images[:1])
    ours = {}
    convs = [("lax.conv_general_dilated", inception.lax_conv)]
    if args.im2col:
        convs.append(("layers.conv (im2col)", layers.conv))
    for name, conv in convs:
        extract = inception.make_extractor(params, mesh, conv=conv)
        run = lambda extract=extract: jax.block_until_ready(extract(images))
        start = time.perf_counter()
        run()
        ours[name] = {"run": run, "compile_s": time.perf_counter() - start, "times": []}
    torch_ref = None if args.no_torch else _torch_fid_inception()
    torch_times = []
    if torch_ref is not None:
        torch, features = torch_ref
        x = torch.from_numpy((images.transpose(0, 3, 1, 2) + 1) / 2)  # pytorch-fid takes [0, 1]
        torch_run = lambda: features(x)
        torch_run()  # warm-up
    # Alternate the contenders so that a change in the machine's load hits all of them.
    for _ in range(args.repeats):
        for entry in ours.values():
            entry["times"] += _timed(entry["run"], 1)
        if torch_ref is not None:
            torch_times += _timed(torch_run, 1)

    rows, result = [], {"batch": batch, "image_shape": [32, 32, 3], "repeats": args.repeats,
                        "devices": jax.device_count(), "contenders": {}}

    def add(name, times, extra=None):
        median = statistics.median(times)
        entry = {"median_s_per_batch": median, "images_per_s": batch / median,
                 "projected_50k_s": NUM_SAMPLES / batch * median,
                 "times_s": times, **(extra or {})}
        result["contenders"][name] = entry
        rows.append((name, entry["images_per_s"], entry["projected_50k_s"]))

    for name, entry in ours.items():
        add(f"ours, {name}", entry["times"], {"compile_s": entry["compile_s"]})
    if torch_ref is not None:
        add(f"pytorch-fid (torch {torch.__version__}, {torch.get_num_threads()} threads)",
            torch_times)
        best = max(e["images_per_s"] for n, e in result["contenders"].items()
                   if n.startswith("ours"))
        result["best_ours_over_torch"] = best / result["contenders"][rows[-1][0]]["images_per_s"]
    return rows, result


def bench_classifier(args):
    """Section `classifier`: images/s of the dataset classifiers (metrics.classifier):
    inference (logits and features, as classifier-IS/FID use them) and training (Adam
    steps of batch 64, as images/s; the 50k column is then the time of one 50k epoch).
    Random weights and images: the speed does not depend on their values."""
    import optax

    from gan_dynamics.metrics import classifier

    rows, result = [], {"batch": args.batch, "repeats": args.repeats, "contenders": {}}
    for arch, size, channels in (("small_cnn", 16, 1), ("small_cnn", 32, 1), ("vgg", 32, 3)):
        module = classifier.make_module(arch, 10)
        images = np.random.default_rng(0).uniform(
            -1, 1, (args.batch, size, size, channels)).astype(np.float32)
        params = module.init(jax.random.key(0), images[:1])["params"]
        apply = classifier.apply_fn(module, params)
        jax.block_until_ready(apply(images))  # compile
        infer = _timed(lambda: jax.block_until_ready(apply(images)), args.repeats)
        tx = optax.adam(1e-3)
        chunk = classifier.make_train_chunk(module, tx, flip=arch == "vgg")
        steps = 5
        x = np.random.default_rng(1).uniform(-1, 1, (steps, 64, size, size, channels)
                                             ).astype(np.float32)
        y = np.zeros((steps, 64), np.int32)
        opt_state = tx.init(params)
        train = lambda: jax.block_until_ready(chunk(params, opt_state, jax.random.key(0), x, y))
        train()  # compile
        train_times = _timed(train, args.repeats)
        for kind, times, n in (("logits+features", infer, args.batch),
                               ("training", train_times, steps * 64)):
            median = statistics.median(times)
            name = f"{arch} {size}x{size}x{channels}, {kind}"
            entry = {"median_s": median, "images_per_s": n / median,
                     "projected_50k_s": NUM_SAMPLES / n * median, "times_s": times}
            result["contenders"][name] = entry
            rows.append((name, entry["images_per_s"], entry["projected_50k_s"]))
    return rows, result


SECTIONS = {"inception": bench_inception, "classifier": bench_classifier}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {list(SECTIONS)}")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true", help="skip the torch references")
    parser.add_argument("--im2col", action="store_true",
                        help="also time the Inception with layers.conv's im2col convolutions")
    add_out_argument(parser)
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    try:
        names = [s for s in args.sections.split(",") if s]
        unknown = sorted(set(names) - set(SECTIONS))
        if unknown:
            raise UserError(f"Unknown sections {unknown}; choose from {list(SECTIONS)}.")
        results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                               "jax": jax.__version__, "backend": jax.default_backend()}}
        for name in names:
            rows, results[name] = SECTIONS[name](args)
            print(f"\n[{name}] batch {args.batch}, median of {args.repeats}")
            print(f"{'contender':58s} {'images/s':>9s} {'50k samples':>12s}")
            for label, per_s, total in rows:
                print(f"{label:58s} {per_s:9.1f} {total / 60:9.1f} min")
            if "best_ours_over_torch" in results[name]:
                print(f"fastest ours / torch: {results[name]['best_ours_over_torch']:.2f}x")
    except UserError as e:
        print(e, file=sys.stderr)
        return 2
    existing = {}
    previous = os.path.join(args.out, "bench_metrics.json")
    if os.path.exists(previous):  # keep the sections not rerun
        with open(previous) as fh:
            existing = json.load(fh)
    print()
    write_json(args.out, "bench_metrics.json", {**existing, **results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
