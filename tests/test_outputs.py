"""What a run leaves on disk survives a kill at any moment: metrics.jsonl and TensorBoard
describe one trajectory after a resume, JSON files are replaced whole."""

import collections
import json
import os

import pytest

from gan_dynamics import outputs
from tests.test_fail_well import _read_events


def _tensorboard(workdir) -> list[tuple[int, str]]:
    from tensorboardX.proto import event_pb2

    directory = os.path.join(workdir, "tensorboard")
    return sorted((e.step, v.tag) for name in os.listdir(directory)
                  for e in _read_events(os.path.join(directory, name), event_pb2)
                  if e.HasField("summary") for v in e.summary.value)


def test_a_resume_keeps_rows_up_to_the_checkpoint_and_repairs_a_torn_line(tmp_path):
    rows = [json.dumps({"step": s, "f": s / 10}) + "\n" for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("".join(rows) + '{"step": 6, "f"')  # killed mid-line
    assert [r["step"] for r in outputs.read_metrics(str(tmp_path))] == [1, 2, 3, 4, 5]
    writer = outputs.MetricWriter(str(tmp_path), resume_step=3)
    writer.write(4, {"f": 0.4})
    writer.close()
    assert (tmp_path / "metrics.jsonl").read_text() == "".join(rows[:4])


def test_tensorboard_holds_every_kept_row_once_after_a_resume(tmp_path):
    """The killed run had logged steps 1-5, but only the events of steps 1-2 had reached
    its event file (tensorboardX buffers them)."""
    from tensorboardX import SummaryWriter

    rows = [{"step": s, "f": s / 10, "g": -s / 10} for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    killed = SummaryWriter(str(tmp_path / "tensorboard"))
    for row in rows[:2]:
        killed.add_scalar("f", row["f"], row["step"])
        killed.add_scalar("g", row["g"], row["step"])
    killed.close()
    resumed = outputs.MetricWriter(str(tmp_path), resume_step=3)
    resumed.write(4, {"f": 0.4, "g": -0.4})
    resumed.close()
    events = _tensorboard(tmp_path)
    assert max(collections.Counter(events).values()) == 1
    assert events == [(s, tag) for s in range(1, 5) for tag in ("f", "g")]


def test_write_json_replaces_the_file_whole(tmp_path):
    path = str(tmp_path / "eval_step_00000002.json")
    outputs.write_json(path, {"step": 2, "metrics": {"fid": 1.0}})
    with pytest.raises(TypeError):
        outputs.write_json(path, {"step": 2, "metrics": {"fid": object()}})  # fails mid-way
    with open(path) as f:
        assert json.load(f) == {"step": 2, "metrics": {"fid": 1.0}}
    assert os.listdir(tmp_path) == ["eval_step_00000002.json"]
