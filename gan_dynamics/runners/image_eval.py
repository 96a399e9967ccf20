"""Sample metrics of an image run: periodic hooks and checkpoint scoring.

`config.eval` (in the image runner's default config; `train_config.eval_section`) names the metrics
(`metrics`: comma-separated, "" = off) and their options; the loop runs them every
`config.train.eval_every` steps through `make_eval_hooks(config, exp)` and logs them as
`eval/<name>`, and `evaluate_checkpoint` scores a saved run (experiments/evaluate.py).

Metrics (Fedus et al. 2018, Sec. 5; docs/metrics.md) and the names they log:

  classifier_is    Inception Score with the dataset's own classifier (`classifier`):
                   `classifier_is`, `classifier_is_std` (over `is_splits` parts).
  classifier_fid   Fréchet distance of the classifier's penultimate features of the
                   samples to those of the whole training split: `classifier_fid`.
  critic           independent Wasserstein critic (`critic`): `critic` = E_fake D -
                   E_real D on held-out pairs it was not trained on (about -W_1; higher
                   is better, 0 for the data distribution).
  ms_ssim          diversity (`ms_ssim`, small-image form): `ms_ssim` of sample pairs
                   (compare with `ms_ssim_test`).
  inception_score  ImageNet Inception Score (`inception`, `scores`): `inception_score`,
                   `inception_score_std`. Needs the converted Inception weights.
  fid              FID against the training split's Inception statistics: `fid`.
  kid, precision, recall, density, coverage, fid_inf
                   the scores of `feature_scores` (docs/metrics.md) from one pass of
                   `features` ("inception" or "classifier") over the samples: KID
                   (`kid`, `kid_std`, `kid_subsets`, `kid_subset_size`), precision and
                   recall (k = 3), density and coverage (k = 5) against the held-out
                   images' features at the same N (`num_features`), and FID∞
                   (`fid_inf`, `fid_inf_slope`) against the training split's statistics.

Data. Samples come from `num_samples` latents fixed by `seed` (the same at every
evaluation, so changes between steps are the generator's). Held-out real images come
from `config.eval.split` (default 'test', never read by training: for the offline digit
sets the fixed 10% of `data.images`), in a fixed shuffled order, at most `num_samples`
of them: the critic trains on the first half of them and of the samples and is
evaluated on the second halves. FID references (whole training split) are cached
(`scores.reference_statistics`).

Every evaluation also reports the held-out images' own values, `<name>_test`
(`classifier_is_test`, `classifier_fid_test`, `ms_ssim_test`, ...; the same at every step):
the level real data reaches with as many images, Fedus et al.'s "test set" reference.
A held-out split with fewer than `num_samples` images is announced with a warning: its
values then come from fewer images than the samples'. Every evaluation records
`num_samples` and `num_heldout`, and, when the Inception runs, `resize_clean` (1: the
"clean" resize, 0: pytorch-fid's; `config.eval.resize`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any, Callable, Optional, Sequence

import jax
import ml_collections
import numpy as np

from gan_dynamics import progress
from gan_dynamics.checks import is_int_at_least
from gan_dynamics.errors import UserError, did_you_mean
from gan_dynamics.metrics import classifier as classifier_lib
from gan_dynamics.metrics import critic as critic_lib
from gan_dynamics.metrics import feature_scores, scores
from gan_dynamics.metrics import ms_ssim as ms_ssim_lib
from gan_dynamics.metrics import resize as resize_lib
from gan_dynamics.outputs import read_metrics, write_json
from gan_dynamics.runners import open_run
from gan_dynamics.runners.train_config import FEATURE_SCORES, METRICS, build, eval_section
from gan_dynamics.runners.train_step import generate_fn

# The scores of `feature_scores` an evaluation offers (train_config.FEATURE_SCORES); all
# but fid_inf compare the samples with the held-out images, so they have no `<name>_test`.
_AGAINST_HELDOUT = ("kid", "precision", "recall", "density", "coverage")
FEATURE_NETWORKS = ("inception", "classifier")
# Counts and switches recorded beside the scores (no `<name>_test` of them).
_RECORDS = ("num_samples", "num_heldout", "num_features", "kid_subsets", "kid_subset_size",
            "fid_inf_slope", "resize_clean")
# A fixed order of the held-out split (independent of the run's seed): the package digit
# sets are sorted by class, and pairs/halves must mix classes.
_HELDOUT_ORDER_SEED = 0xE7A1
_CRITIC_KEY = 1
_LATENT_KEY = 0

EvalHook = Callable[[int, Any, Callable[[jax.Array], jax.Array]], dict[str, float]]


def parse_metrics(value: Any) -> tuple[str, ...]:
    """Metric names from "a,b" or a sequence; unknown names fail with the known ones."""
    if not (isinstance(value, (str, list, tuple)) and all(isinstance(n, str) for n in value)):
        raise UserError(f"config.eval.metrics={value!r} must be comma-separated metric names "
                        f"(of {list(METRICS)}), or \"\" for none.")
    names = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(n.strip() for n in names if n.strip())
    for n in names:
        if n not in METRICS:
            raise UserError(f"Unknown metric {n!r} in config.eval.metrics; choose from "
                            f"{list(METRICS)}.{did_you_mean(n, METRICS)}")
    return tuple(dict.fromkeys(names))


def section_options(cls, section: Any, name: str):
    values = dict(section.to_dict() if isinstance(section, ml_collections.ConfigDict) else section)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"Unknown key(s) {unknown} in config.eval.{name}; known: {sorted(known)}.")
    return cls(**values)


@dataclasses.dataclass
class Evaluator:
    """What every evaluation reuses: held-out images, references, networks, latents."""

    metrics: tuple[str, ...]
    latents: jax.Array  # (num_samples, z_dim)
    batch_size: int
    is_splits: int
    heldout: np.ndarray  # held-out real images, fixed order
    seed: int
    critic_options: critic_lib.CriticOptions
    classifier: Optional[classifier_lib.Classifier] = None
    classifier_reference: Optional[tuple[np.ndarray, np.ndarray]] = None
    inception: Optional[Callable[[Any], tuple[jax.Array, jax.Array]]] = None
    inception_reference: Optional[tuple[np.ndarray, np.ndarray]] = None
    resize: str = "pytorch_fid"
    feature_network: str = "inception"  # of the feature scores
    score_options: feature_scores.ScoreOptions = feature_scores.ScoreOptions()
    heldout_features: Optional[np.ndarray] = None  # the feature scores' real side
    reference: dict[str, float] = dataclasses.field(default_factory=dict)  # <name>_test

    def samples(self, generate: Callable[[jax.Array], jax.Array]) -> np.ndarray:
        """Images of the fixed latents, generated `batch_size` at a time."""
        with progress.step(f"Sampling {self.latents.shape[0]} images"):
            return np.concatenate([np.asarray(generate(self.latents[i:i + self.batch_size]))
                                   for i in range(0, self.latents.shape[0], self.batch_size)])

    def features(self, images: np.ndarray) -> np.ndarray:
        """The feature scores' features of `images` (one pass of `feature_network`)."""
        if self.feature_network == "classifier":
            return classifier_lib.logits_and_features(self.classifier, images,
                                                      self.batch_size)[1]
        return _batched(self.inception, images, self.batch_size)[0]

    def score(self, images: np.ndarray) -> dict[str, float]:
        """Every configured metric of `images` (N, H, W, C) in [-1, 1]; each network runs
        once over the images, whatever the metrics that read its outputs."""
        out: dict[str, float] = {"num_samples": len(images), "num_heldout": len(self.heldout)}
        m = self.metrics
        names = [n for n in m if n in FEATURE_SCORES]
        by_network = {}  # the feature scores' features, from the pass that computes them
        if ("classifier_is" in m or "classifier_fid" in m
                or (names and self.feature_network == "classifier")):
            with progress.step(f"Classifying {len(images)} images"):
                logits, features = classifier_lib.logits_and_features(self.classifier, images,
                                                                      self.batch_size)
            by_network["classifier"] = features
            if "classifier_is" in m:
                out["classifier_is"], out["classifier_is_std"] = scores.inception_score(
                    logits, min(self.is_splits, len(images)))
            if "classifier_fid" in m:
                out["classifier_fid"] = scores.frechet_distance(
                    *scores.gaussian_statistics(features), *self.classifier_reference)
        if "inception_score" in m or "fid" in m or (names and self.feature_network == "inception"):
            with progress.step(f"Running the Inception network on {len(images)} images"):
                pool, logits = _batched(self.inception, images, self.batch_size)
            by_network["inception"] = pool
            out["resize_clean"] = float(self.resize == "clean")
            if "inception_score" in m:
                out["inception_score"], out["inception_score_std"] = scores.inception_score(
                    logits, min(self.is_splits, len(images)))
            if "fid" in m:
                out["fid"] = scores.frechet_distance(*scores.gaussian_statistics(pool),
                                                     *self.inception_reference)
        if "critic" in m:
            real_half, fake_half = len(self.heldout) // 2, len(images) // 2
            with progress.step("Training and scoring the independent critic "
                               f"({self.critic_options.num_steps} steps)"):
                out["critic"] = critic_lib.independent_critic_score(
                    jax.random.fold_in(jax.random.key(self.seed), _CRITIC_KEY),
                    self.heldout[:real_half], images[:fake_half],
                    self.heldout[real_half:], images[fake_half:], self.critic_options)
        if "ms_ssim" in m:
            with progress.step(f"MS-SSIM of {len(images)} images"):
                out["ms_ssim"] = ms_ssim_lib.mean_pairwise_ms_ssim(images)
        if names:
            features = by_network[self.feature_network]
            reference = (self.classifier_reference if self.feature_network == "classifier"
                         else self.inception_reference)
            n = min(len(features), len(self.heldout_features))  # the same N (warned once)
            with progress.step(f"Scores of {n} features ({', '.join(names)})"):
                out.update(feature_scores.feature_scores(
                    self.heldout_features[:n], features[:n], names, self.score_options,
                    reference_statistics=reference))
        return {**out, **self.reference}

    def __call__(self, generate: Callable[[jax.Array], jax.Array]) -> dict[str, float]:
        return self.score(self.samples(generate))


def _batched(fn, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """fn over fixed-size batches (the last padded with its final image), outputs joined."""
    outs = []
    for start in range(0, len(images), batch_size):
        part = images[start:start + batch_size]
        valid = len(part)
        if valid < batch_size:
            part = np.concatenate([part, np.repeat(part[-1:], batch_size - valid, axis=0)])
        outs.append([np.asarray(o)[:valid] for o in fn(part)])
    return tuple(np.concatenate(parts) for parts in zip(*outs))


def _open(config: ml_collections.ConfigDict, split: str):
    from gan_dynamics.data import images

    d = config.data
    try:
        return images.open_dataset(d.name, split=split, data_dir=d.data_dir or None,
                                   image_size=d.image_size or None)
    except (ValueError, FileNotFoundError) as err:
        raise UserError(f"config.eval needs split {split!r} of dataset {d.name!r}: {err}") from err


def check_section(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The metrics `config.eval` turns on (none: off, or no section), after checking the
    values evaluation reads, before any data is opened; UserError naming the key."""
    section = config.get("eval", None)
    if section is None:
        return ()
    metrics = parse_metrics(section.get("metrics", ""))
    if not metrics:
        return ()
    for key, least in (("num_samples", 4), ("batch_size", 1), ("is_splits", 1), ("seed", 0)):
        value = section.get(key)
        if not is_int_at_least(value, least):
            raise UserError(f"config.eval.{key}={value!r} must be an integer >= {least}.")
    section_options(critic_lib.CriticOptions, section.critic, "critic")
    section_options(classifier_lib.ClassifierOptions, section.classifier, "classifier")
    section_options(feature_scores.ScoreOptions, section.get("scores", {}), "scores")
    resize = section.get("resize", "pytorch_fid")
    network = section.get("features", "inception")
    if resize not in resize_lib.MODES or network not in FEATURE_NETWORKS:
        raise UserError(f"config.eval.resize must be one of {list(resize_lib.MODES)} and "
                        f"config.eval.features one of {list(FEATURE_NETWORKS)}; got "
                        f"{resize!r}, {network!r}.")
    return metrics


def make_evaluator(config: ml_collections.ConfigDict, exp: Any, *,
                   heldout: Optional[np.ndarray] = None, train_source: Any = None,
                   log: Optional[Callable[[str], None]] = print) -> Optional[Evaluator]:
    """The evaluator of `config.eval` (None when no metric is on); prepares everything a
    metric needs once (trains or loads the classifier, reference statistics).

    `heldout` (real images in [-1, 1]) replaces the held-out split's images and
    `train_source` the training split (the FID references' data).
    """
    metrics = check_section(config)
    if not metrics:
        return None
    section = config.eval
    num_samples, batch_size = int(section.num_samples), int(section.batch_size)
    critic_options = section_options(critic_lib.CriticOptions, section.critic, "critic")
    clf_options = section_options(classifier_lib.ClassifierOptions, section.classifier, "classifier")
    score_options = section_options(feature_scores.ScoreOptions, section.get("scores", {}),
                                    "scores")
    resize = section.get("resize", "pytorch_fid")
    network = section.get("features", "inception")
    size = int(exp.image_shape[0])
    if heldout is None:
        source = _open(config, section.split)
        order = np.random.default_rng(_HELDOUT_ORDER_SEED).permutation(source.num_examples)
        heldout = source.read(order[:num_samples])
    heldout = np.asarray(heldout, np.float32)
    if heldout.shape[1:] != tuple(exp.image_shape):
        raise UserError(f"Held-out images have shape {heldout.shape[1:]}, the generator makes "
                        f"{tuple(exp.image_shape)}.")
    if len(heldout) < num_samples:
        warnings.warn(
            f"config.eval.split {section.split!r} has {len(heldout)} images, fewer than "
            f"num_samples={num_samples}: the held-out values (<name>_test) come from "
            f"{len(heldout)} images and the samples' from {num_samples}, so scores that "
            f"depend on N differ between them by N too; the feature scores compare "
            f"{len(heldout)} of each.", stacklevel=2)
    latents = jax.random.normal(jax.random.fold_in(jax.random.key(int(section.seed)), _LATENT_KEY),
                                (num_samples, exp.z_dim))
    ev = Evaluator(metrics, latents, batch_size, int(section.is_splits), heldout,
                   int(section.seed), critic_options, resize=resize, feature_network=network,
                   score_options=score_options)
    featured = bool(set(FEATURE_SCORES) & set(metrics))
    uses = {"classifier": {"classifier_is", "classifier_fid"} & set(metrics)
            or (featured and network == "classifier"),
            "inception": {"inception_score", "fid"} & set(metrics)
            or (featured and network == "inception")}
    references = {"classifier": "classifier_fid" in metrics
                  or ("fid_inf" in metrics and network == "classifier"),
                  "inception": "fid" in metrics
                  or ("fid_inf" in metrics and network == "inception")}
    if any(references.values()) and train_source is None:
        train_source = _open(config, config.data.split)
    if uses["classifier"]:
        ev.classifier = classifier_lib.load_or_train(
            config.data.name, size, clf_options, data_dir=config.data.data_dir or None,
            train_split=config.data.split, train_source=train_source, log=log)
        if references["classifier"]:
            features = lambda x: classifier_lib.logits_and_features(ev.classifier, x)[1]
            ev.classifier_reference = scores.reference_statistics(
                train_source, config.data.split, f"classifier_{ev.classifier.name}", features,
                batch_size=batch_size)
    if uses["inception"]:
        from gan_dynamics import parallel
        from gan_dynamics.metrics import inception

        mesh = parallel.make_mesh(int(config.parallel.num_devices))
        extractor = inception.make_extractor(
            inception.load_params(section.inception_weights or None), mesh, resize=resize)
        ev.inception = extractor
        if references["inception"]:
            # Statistics under the clean resize are other numbers: another cache entry.
            name = "inception_pool3" if resize == "pytorch_fid" else f"inception_pool3_{resize}"
            ev.inception_reference = scores.reference_statistics(
                train_source, config.data.split, name,
                lambda x: np.asarray(extractor(x)[0]), batch_size=batch_size)
    if featured:
        ev.heldout_features = ev.features(heldout)  # one pass, once
    # The held-out images' own values: the reference lines of plots. The critic's is 0 by
    # construction and the feature scores against the held-out images compare them with
    # themselves: they are left out.
    ev.metrics = tuple(n for n in metrics if n != "critic" and n not in _AGAINST_HELDOUT)
    ev.reference = {f"{k}_test": v for k, v in ev.score(heldout).items()
                    if not k.endswith("_std") and k not in _RECORDS}
    ev.metrics = metrics
    return ev


def make_eval_hooks(config: ml_collections.ConfigDict, exp: Any) -> list[EvalHook]:
    """The hook of `config.eval` for the image loop (none when its metrics are off)."""
    evaluator = make_evaluator(config, exp)
    if evaluator is None:
        return []

    def hook(step: int, state: Any, generate: Callable[[jax.Array], jax.Array]):
        del step, state
        return evaluator(generate)

    return [hook]


# ------------------------------------------------------------------------ checkpoints


def eval_path(workdir: str, step: int) -> str:
    return os.path.join(workdir, f"eval_step_{step:08d}.json")


def evaluate_checkpoint(workdir: str, *, step: Optional[int] = None,
                        metrics: Optional[Sequence[str] | str] = None,
                        config: Optional[ml_collections.ConfigDict] = None,
                        overrides: Optional[dict[str, Any]] = None,
                        log: Optional[Callable[[str], None]] = print) -> tuple[int, dict[str, float]]:
    """Score a saved image run: restore its checkpoint, generate, write and return results.

    Args:
      workdir: the run's directory (config.json, checkpoints/).
      step: the checkpoint's step (default: the newest).
      metrics: replaces config.eval.metrics (default: the run's, else every metric that
        needs no download: classifier_is, classifier_fid, critic, ms_ssim).
      config: the run's config when the workdir has no config.json.
      overrides: config.eval keys to replace (e.g. {"num_samples": 500}).

    Writes `DIR/eval_step_XXXXXXXX.json` ({"step", "metrics", "eval"}) and returns
    (step, metrics).
    """
    config = open_run.load_config(workdir, config)
    config = ml_collections.ConfigDict(config.to_dict())  # a mutable copy
    if "eval" not in config:
        config.eval = eval_section()
    else:  # keys added since the run was saved get their defaults
        section = eval_section()
        section.update(config.eval)
        config.eval = section
    if metrics is not None:
        config.eval.metrics = ",".join(parse_metrics(metrics))
    elif not parse_metrics(config.eval.metrics):
        config.eval.metrics = "classifier_is,classifier_fid,critic,ms_ssim"
    for key, value in (overrides or {}).items():
        config.eval[key] = value
    open_run.check_fits(config, workdir, step)  # before the data is opened
    exp = build(config)
    state = open_run.restore_state(config, exp, workdir, step)
    evaluator = make_evaluator(config, exp, train_source=exp.source, log=log)
    results = evaluator(jax.jit(generate_fn(exp, state)))
    done = int(state.step)
    write_json(eval_path(workdir, done),
               {"step": done, "metrics": results, "eval": config.eval.to_dict()}, indent=1)
    return done, results


def read_evals(workdir: str) -> dict[int, dict[str, float]]:
    """{step: metrics} of a run's evaluation files and its logged `eval/` rows (files win)."""
    found: dict[int, dict[str, float]] = {}
    if os.path.exists(os.path.join(workdir, "metrics.jsonl")):
        for row in read_metrics(workdir):
            vals = {k[len("eval/"):]: v for k, v in row.items() if k.startswith("eval/")}
            if vals:
                found.setdefault(int(row["step"]), {}).update(vals)
    for name in sorted(os.listdir(workdir)) if os.path.isdir(workdir) else ():
        if name.startswith("eval_step_") and name.endswith(".json"):
            with open(os.path.join(workdir, name)) as f:
                record = json.load(f)
            found.setdefault(int(record["step"]), {}).update(record["metrics"])
    return found
