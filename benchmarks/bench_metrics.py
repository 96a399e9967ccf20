"""Throughput of the evaluation metrics' networks on this machine, against torch references.

    python benchmarks/bench_metrics.py                      # every section
    python benchmarks/bench_metrics.py --sections=inception --batch=50 --repeats=5 --im2col

Section `inception`: images/s of the FID Inception's features (pool3 and logits) from
32x32 RGB images in [-1, 1], ours (jitted, sharded over all devices; `--im2col` adds
the variant with `models.layers.conv`) against pytorch-fid's `InceptionV3` (torch, the same CPU threads, random
weights: the speed does not depend on their values) in the same run, on the same batch;
the two alternate, and each figure is the median over `--repeats` batches after a
warm-up (compilation). Also the projected time to score 50,000 samples.

Prints a table and writes JSON (one entry per section; sections not rerun are kept) to
bench_metrics.json in --out (default runs/benchmarks/; `--out=benchmarks/results`
updates the committed file). A section is a function `args -> (rows, result)` in
SECTIONS; rows are (name, two columns named in COLUMNS) for the table.

Section `classifier`: images/s of the dataset classifiers of classifier-IS/FID (small CNN
at 16 and 32 px, VGG at 32x32x3), inference and training (`bench_classifier`).

Section `scores`: seconds for KID (100 subsets of 1000) and for precision/recall and
density/coverage on `--features` real and as many generated features of `--dim`
dimensions, ours against torch-fidelity's, clean-fid's and prdc's on the same features,
alternating, median of `--repeats`; the peak memory of ours by tracemalloc
(`bench_scores`).

Section `evaluation`: one evaluation computing every score of `feature_scores` from one
feature pass over `--eval-images` real and generated images, against the sum of separate
evaluations that each run the feature network for their own score (`bench_evaluation`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from typing import Optional, Sequence

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from gan_dynamics import parallel  # noqa: E402
from gan_dynamics.errors import UserError  # noqa: E402
from gan_dynamics.metrics import convert_inception, feature_scores, inception, kid, manifold  # noqa: E402  # noqa: E402
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


def _throughput_row(name: str, entry: dict) -> tuple[str, str, str]:
    return name, f"{entry['images_per_s']:.1f}", f"{entry['projected_50k_s'] / 60:.1f} min"


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
        rows.append(_throughput_row(name, entry))

    for name, entry in ours.items():
        add(f"ours, {name}", entry["times"], {"compile_s": entry["compile_s"]})
    if torch_ref is not None:
        add(f"pytorch-fid (torch {torch.__version__}, {torch.get_num_threads()} threads)",
            torch_times)
        best = max(e["images_per_s"] for n, e in result["contenders"].items()
                   if n.startswith("ours"))
        result["best_ours_over_torch"] = best / result["contenders"][rows[-1][0]]["images_per_s"]
        result["summary"] = f"fastest ours / torch: {result['best_ours_over_torch']:.2f}x"
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
            rows.append(_throughput_row(name, entry))
    return rows, result


# ----------------------------------------------------------------------- feature scores


def _reference_scores(subset_size: int):
    """{name: (group, fn(real, fake) -> dict)} of the installed reference libraries (each
    optional); KID on 100 subsets of `subset_size`.

    torch-fidelity's package and clean-fid's `cleanfid.fid` import torchvision, whose
    compiled ops may not fit the installed torch: `convert_inception.prepare_torchvision`
    first (as for pytorch-fid).
    """
    from importlib.metadata import version

    refs = {}
    try:
        import torch
    except ImportError:
        return refs
    if convert_inception.prepare_torchvision():
        try:
            from torch_fidelity.metric_kid import kid_features_to_metric
            from torch_fidelity.metric_prc import prc_features_to_metric
        except ImportError:
            pass
        else:
            # torch-fidelity's defaults (subsets of 1000, seed 2020; k = 3, batch 10000).
            kid_kwargs = dict(kid_subsets=100, kid_subset_size=subset_size, rng_seed=2020,
                              kid_kernel="poly", kid_kernel_poly_degree=3,
                              kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1,
                              verbose=False)
            tf = f"torch-fidelity {version('torch-fidelity')}"
            refs[f"KID, {tf}"] = ("kid", lambda r, f: kid_features_to_metric(
                torch.from_numpy(f), torch.from_numpy(r), **kid_kwargs))
            refs[f"precision/recall, {tf}"] = ("manifold", lambda r, f: (
                prc_features_to_metric(torch.from_numpy(f), torch.from_numpy(r),
                                       prc_neighborhood=3, prc_batch_size=10000,
                                       save_cpu_ram=False, verbose=False)))
    try:
        from cleanfid.fid import kernel_distance
    except ImportError:
        pass
    else:
        def clean_fid_kid(r, f):
            np.random.seed(2020)  # clean-fid draws its subsets from numpy's global state
            return {"kid": kernel_distance(r, f)}

        refs[f"KID, clean-fid {version('clean-fid')}"] = ("kid", clean_fid_kid)
    try:
        import prdc
    except ImportError:
        pass
    else:
        def prdc_scores(r, f):
            with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
                return {k: float(v) for k, v in prdc.compute_prdc(r, f, nearest_k=5).items()}

        name = f"precision/recall/density/coverage (k=5), prdc {version('prdc')}"
        refs[name] = ("manifold", prdc_scores)
    return refs


def _peak_bytes(fn) -> int:
    """Peak bytes numpy allocated during fn() (tracemalloc sees numpy's data buffers)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _inception_like(rng, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(real, generated) non-negative features (pool3 features are means of ReLUs) of one
    scale per dimension, the generated ones 5% wider: overlapping, so no score is 0 or 1."""
    scale = rng.uniform(0.2, 1.0, d)
    real = np.abs(rng.normal(size=(n, d))) * scale
    fake = np.abs(rng.normal(size=(n, d))) * scale * 1.05
    return real.astype(np.float32), fake.astype(np.float32)


def bench_scores(args):
    """Section `scores` (module docstring): seconds per call, ours against the references."""
    n, d = args.features, args.dim
    real, fake = _inception_like(np.random.default_rng(0), n, d)
    subset_size = min(kid.DEFAULT_SUBSET_SIZE, n)
    ours = {
        "KID, ours": ("kid", lambda r, f: kid.kernel_inception_distance(
            r, f, subset_size=subset_size, chunk_size=args.chunk)._asdict()),
        "precision/recall/density/coverage, ours": ("manifold", lambda r, f: (
            manifold.manifold_scores(r, f, chunk_size=args.chunk)._asdict())),
        "precision/recall/density/coverage, ours, float32 products": ("manifold", lambda r, f: (
            manifold.manifold_scores(r, f, chunk_size=args.chunk,
                                     product_dtype="float32")._asdict())),
    }
    contenders = {**ours, **({} if args.no_torch else _reference_scores(subset_size))}
    times = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}  # CPU seconds of every thread of the process
    values = {}
    for _ in range(args.repeats):  # alternate: a change of the machine's load hits all
        for name, (_, fn) in contenders.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            values[name] = fn(real, fake)
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    result = {"features": [n, d], "kid_subsets": [100, subset_size], "chunk_size": args.chunk,
              "repeats": args.repeats, "contenders": {}}
    rows = []
    for name, (group, _) in contenders.items():
        median, median_cpu = statistics.median(times[name]), statistics.median(cpu[name])
        entry = {"median_s": median, "median_cpu_s": median_cpu, "times_s": times[name],
                 "cpu_s": cpu[name], "values": {k: float(v) for k, v in values[name].items()}}
        notes = []
        if name not in ours:  # how much faster each of ours in the group is
            entry["ours_speedup"] = {}
            for mine, (g, _) in ours.items():
                if g == group:
                    wall = median / statistics.median(times[mine])
                    on_cpu = median_cpu / statistics.median(cpu[mine])
                    entry["ours_speedup"][mine] = {"wall": wall, "cpu": on_cpu}
                    tag = "f32" if "float32" in mine else "f64"
                    notes.append(f"{tag} {wall:.2f}x ({on_cpu:.2f}x)")
        result["contenders"][name] = entry
        rows.append((name, f"{median:.2f} ({median_cpu:.1f})", ", ".join(notes)))
    for name, (_, fn) in ours.items():
        peak = _peak_bytes(lambda fn=fn: fn(real, fake))
        result["contenders"][name]["peak_mib"] = peak / 2**20
        rows.append((f"{name}: peak memory", f"{peak / 2**20:.0f} MiB",
                     f"features {2 * real.nbytes / 2**20:.0f} MiB (float32)"))
    return rows, result


def bench_evaluation(args):
    """Section `evaluation`: one feature pass and every score, against one pass per score."""
    from gan_dynamics.metrics import classifier

    n = args.eval_images
    rng = np.random.default_rng(0)
    real_images, fake_images = (rng.uniform(-1, 1, (n, 32, 32, 3)).astype(np.float32)
                                for _ in range(2))
    module = classifier.make_module("vgg", 10)  # random weights: the time does not depend on them
    params = module.init(jax.random.key(0), real_images[:1])["params"]
    network = classifier.Classifier("vgg_random", module, params, 0.0)

    def features(images):
        return classifier.logits_and_features(network, images, args.batch)[1]

    features(real_images[:args.batch])  # compile
    groups = (("fid",), ("fid_inf",), ("kid",), ("precision", "recall"), ("density", "coverage"))
    options = feature_scores.ScoreOptions(chunk_size=args.chunk)

    def one_pass():
        return feature_scores.feature_scores(features(real_images), features(fake_images),
                                             feature_scores.SCORES, options)

    def separate():
        out = {}
        for names in groups:
            out.update(feature_scores.feature_scores(features(real_images),
                                                     features(fake_images), names, options))
        return out

    one, sep = [], []
    for _ in range(args.repeats):
        one += _timed(one_pass, 1)
        sep += _timed(separate, 1)
    result = {"network": "vgg 32x32x3 classifier (512-d features)", "images": [n, n],
              "repeats": args.repeats, "one_pass_s": one, "separate_s": sep,
              "scores": {k: float(v) for k, v in one_pass().items()}}
    ratio = statistics.median(sep) / statistics.median(one)
    result["summary"] = f"one pass {ratio:.2f}x as fast as one pass per score"
    rows = [("every score, one feature pass", f"{statistics.median(one):.1f}", ""),
            (f"{len(groups)} evaluations, one pass each", f"{statistics.median(sep):.1f}",
             f"{ratio:.2f}x the one-pass time")]
    return rows, result


SECTIONS = {"inception": bench_inception, "classifier": bench_classifier,
            "scores": bench_scores, "evaluation": bench_evaluation}
COLUMNS = {"inception": ("images/s", "50k samples"), "classifier": ("images/s", "50k samples"),
           "scores": ("s (cpu s)", "ours as fast: wall (cpu)"),
           "evaluation": ("seconds", "")}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {list(SECTIONS)}")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true", help="skip the torch references")
    parser.add_argument("--im2col", action="store_true",
                        help="also time the Inception with layers.conv's im2col convolutions")
    parser.add_argument("--features", type=int, default=5000,
                        help="scores: real and generated features (each)")
    parser.add_argument("--dim", type=int, default=2048, help="scores: feature dimension")
    parser.add_argument("--chunk", type=int, default=1024,
                        help="scores, evaluation: block side of the k-NN and KID kernels")
    parser.add_argument("--eval-images", type=int, default=1000,
                        help="evaluation: real and generated images (each)")
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
                               "jax": jax.__version__, "backend": jax.default_backend(),
                               "load_average_at_start": os.getloadavg()}}
        for name in names:
            rows, results[name] = SECTIONS[name](args)
            print(f"\n[{name}] batch {args.batch}, median of {args.repeats}")
            first, second = COLUMNS[name]
            print(f"{'contender':64s} {first:>14s}  {second}")
            for label, a, b in rows:
                print(f"{label:64s} {a:>14s}  {b}")
            if "summary" in results[name]:
                print(results[name]["summary"])
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
