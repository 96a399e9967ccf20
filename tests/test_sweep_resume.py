"""Sweeps that stop and resume: checkpoints, bit-for-bit resumption, settings checks."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import plots, sweep_manifold_lr  # noqa: E402
from gan_dynamics import signals  # noqa: E402
from gan_dynamics.errors import UserError  # noqa: E402
from gan_dynamics.runners import sweep, synthetic_train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_config(**overrides):
    config = sweep_manifold_lr.get_config()
    config.update({**dict(dim=3, hidden=4, batch=4, steps=8, log_every=2, chunk_steps=2,
                          checkpoint_every=1, models="ns", run_optimizers="altgd",
                          num_seeds=3, chunk_seeds=2, num_devices=2), **overrides})
    config.optimizers.altgd.lrs = (1e-3, 2e-2)
    config.optimizers.altgd.n_disc = 2
    return config


class StopAfterChunk:
    """StopRequests as if SIGTERM arrived while chunk `chunk` ran."""

    def __init__(self, chunk):
        self.chunk, self.received, self.step = chunk, None, None

    def __call__(self, action):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def agreed(self, chunk):
        if chunk >= self.chunk:
            self.received = int(signal.SIGTERM)
        return self.received


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("whole"))
    sweep.run(small_config(), workdir)
    return workdir


def load(workdir, name="ns__altgd"):
    with np.load(os.path.join(workdir, f"{name}.npz")) as arrays:
        return {key: arrays[key] for key in arrays}


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_stopped_sweep_resumes_bit_for_bit_and_refuses_other_settings(
        uninterrupted, tmp_path, monkeypatch, capsys):
    workdir = str(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(sweep.signals, "StopRequests", StopAfterChunk(1))
        with pytest.raises(signals.Stopped) as stopped:
            sweep.run(small_config(), workdir)
    assert stopped.value.exit_code == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert re.search(r"ns__altgd: step 2/8 \(25%\) [\d,]+ seed-steps/s  mean param_error "
                     r"[\d.e+-]+  ETA \S+", out), out
    # Partial curves: logged entries 0 .. 2 (steps 0, 2, 4), the rest still NaN.
    with np.load(os.path.join(workdir, "progress", "ns__altgd.npz")) as partial:
        assert int(partial["done_steps"]) == 4
        assert partial["values"].shape == (3, 2, 5, len(synthetic_train.METRICS))
        assert np.isfinite(partial["values"][:, :, :3, 0]).all()
        assert np.isnan(partial["values"][:, :, 3:]).all()
    assert not os.path.exists(os.path.join(workdir, "ns__altgd.npz"))
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)  # what a finished sweep leaves, marked partial
    assert summary["partial"] is True and summary["interrupted_cell"] == "ns__altgd"
    assert summary["cells"] == {}

    with pytest.raises(UserError, match=r"lrs: saved \[0.001, 0.02\], now \[0.001, 0.03\]"):
        changed = small_config()
        changed.optimizers.altgd.lrs = (1e-3, 3e-2)
        sweep.run(changed, workdir)

    sweep.run(small_config(), workdir)
    assert "ns__altgd: resuming after chunk 2 of 4" in capsys.readouterr().out
    whole, resumed = load(uninterrupted), load(workdir)
    for key in ("values", "reference"):
        np.testing.assert_array_equal(resumed[key], whole[key])
    assert not os.path.exists(os.path.join(workdir, "checkpoints", "ns__altgd"))

    # Finished: the same command skips the cell; other settings are refused by name.
    sweep.run(small_config(), workdir)
    assert "ns__altgd: finished earlier" in capsys.readouterr().out
    with pytest.raises(UserError, match="num_seeds: saved 3, now 2"):
        sweep.run(small_config(num_seeds=2), workdir)


@pytest.mark.slow  # over ~10 s on a 2-core CPU; .ci/run runs it after the default suite
def test_summary_lists_every_cell_of_the_workdir(uninterrupted, tmp_path):
    workdir = str(tmp_path)
    for name in ("ns__altgd.npz", "ns__altgd.json"):
        with open(os.path.join(uninterrupted, name), "rb") as f, \
                open(os.path.join(workdir, name), "wb") as g:
            g.write(f.read())
    # A later command with another model and fewer seeds adds its cell to the summary.
    summary = sweep.run(small_config(models="minimax", num_seeds=2), workdir)
    assert sorted(summary["cells"]) == ["minimax__altgd", "ns__altgd"]
    assert summary["cells"]["ns__altgd"]["num_seeds"] == 3
    assert summary["cells"]["minimax__altgd"]["num_seeds"] == 2
    with open(os.path.join(workdir, "summary.json")) as f:
        assert sorted(json.load(f)["cells"]) == ["minimax__altgd", "ns__altgd"]
    assert os.path.getsize(plots.plot_sweep(workdir)) > 0


def _command(workdir):
    return [sys.executable, os.path.join(ROOT, "experiments", "run.py"),
            f"--config={os.path.join(ROOT, 'experiments', 'sweep_manifold_lr.py')}",
            f"--workdir={workdir}", "--config.dim=3", "--config.hidden=4", "--config.batch=4",
            "--config.steps=600", "--config.log_every=2", "--config.chunk_steps=2",
            "--config.checkpoint_every=50", "--config.models=ns",
            "--config.run_optimizers=altgd", "--config.num_seeds=4",
            "--config.optimizers.altgd.lrs=(0.01,)", "--config.optimizers.altgd.n_disc=1"]


@pytest.mark.slow
def test_sigterm_to_a_sweep_process_saves_and_the_rerun_resumes_bit_for_bit(tmp_path):
    whole, cut = str(tmp_path / "whole"), str(tmp_path / "cut")
    subprocess.run(_command(whole), check=True, capture_output=True, cwd=ROOT)
    process = subprocess.Popen(_command(cut), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    for line in process.stdout:  # the first progress line: chunks are running
        if "seed-steps/s" in line:
            break
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM received" in err
    assert not os.path.exists(os.path.join(cut, "ns__altgd.npz")), "stopped too late"
    rerun = subprocess.run(_command(cut), check=True, capture_output=True, text=True, cwd=ROOT)
    assert "resuming after chunk" in rerun.stdout
    for key in ("values", "reference"):
        np.testing.assert_array_equal(load(cut)[key], load(whole)[key])


@pytest.mark.slow  # three sweeps of two small cells: ~1 min on 2 cores
def test_a_stop_in_a_parts_last_chunk_stops_there_and_exits_143(uninterrupted, tmp_path,
                                                                  monkeypatch, capsys):
    """SIGTERM during the last chunk of a cell saves and stops: the next cell is neither
    compiled nor run, and in the sweep's last cell the command exits 143, not 0."""
    workdir, config = str(tmp_path), lambda: small_config(models="ns,minimax")
    for expected_cell in ("ns__altgd", "minimax__altgd"):
        with monkeypatch.context() as patch:
            patch.setattr(sweep.signals, "StopRequests", StopAfterChunk(3))  # of 4 chunks
            with pytest.raises(signals.Stopped, match=f"of {expected_cell}") as stopped:
                sweep.run(config(), workdir)
        assert stopped.value.exit_code == 128 + signal.SIGTERM
        out = capsys.readouterr().out
        if expected_cell == "ns__altgd":
            assert "minimax__altgd" not in out, out  # the next cell did not start
        assert os.path.isdir(os.path.join(workdir, "checkpoints", expected_cell))
        assert not os.path.exists(os.path.join(workdir, f"{expected_cell}.npz"))
    summary = sweep.run(config(), workdir)
    assert sorted(summary["cells"]) == ["minimax__altgd", "ns__altgd"]
    for key in ("values", "reference"):
        np.testing.assert_array_equal(load(workdir)[key], load(uninterrupted)[key])
    assert not os.path.exists(os.path.join(workdir, "checkpoints"))
