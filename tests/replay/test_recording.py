"""Recording from the leaderboard adapter: content, incremental writes, truncation and bad files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from agent.recording import (
    MAGIC,
    RecordingConfig,
    RecordingWriter,
    ReplayFormatError,
    read_replay,
)
from tests.replay.helpers import SAVE_NAME, record_run

pytestmark = pytest.mark.carla  # the adapter is driven with the real carla client's types


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    return record_run(root, seconds=4.0, events={2.0: "Agent collided against object with type=static.prop"})


def test_one_step_per_model_run_with_everything(recorded):
    path, agent, _ = recorded
    assert path == agent.save_dir / "replay.djr"
    replay = read_replay(path)
    assert replay.truncated is None and replay.summary is not None
    assert replay.summary["ticks"] == 80
    assert len(replay.steps) == 40  # 20 Hz ticks, 10 Hz model
    assert replay.meta["save_name"] == SAVE_NAME
    assert replay.meta["camera"]["width"] == 400 and replay.meta["camera"]["fov"] == 70.0
    assert np.asarray(replay.meta["route"]["world"]).shape[1] == 2
    s = replay.steps[10]
    assert s.arrays["proposals"].shape == (42, 8, 3) and s.arrays["proposals"].dtype == np.float16
    assert s.arrays["scores"].shape == s.arrays["final_scores"].shape == (42,)
    assert "sub/route_cost" in s.arrays
    assert 0 <= s.header["selected"] < 42  # route follower: 21 curvatures × 2 speeds
    assert set(s.header["control"]) == {"throttle", "steer", "brake", "reason"}
    assert {"model", "total"} <= set(s.header["timings_ms"])
    assert len(s.header["ego"]["rear_axle"]) == 3 and s.header["route"]["command"] in (1, 2, 3, 4)
    assert np.asarray(s.header["inputs"]["target_point"]).shape == (2,)
    img = s.image_bgr()
    assert img is not None and img.shape == (216, 384, 3)
    # the selected proposal is what the policy planned at that tick: equal to the recorded plan
    sel = s.arrays["proposals"][s.header["selected"]].astype(np.float32)
    assert np.allclose(sel, s.arrays["plan"], atol=0.05)
    times = replay.times
    assert np.allclose(np.diff(times), 0.1, atol=1e-6)
    assert [e["kind"] for e in replay.events] == ["collision"]
    assert replay.events[0]["t"] == pytest.approx(2.0, abs=0.051)


def test_size_meets_five_megabytes_per_minute(tmp_path):
    # the full Bench2Drive rig (1600×900), 2 s on the procedural street scene
    path, _, _ = record_run(tmp_path, seconds=2.0, small=False)
    per_step = path.stat().st_size / len(read_replay(path).steps)
    per_minute = per_step * 600  # 10 Hz
    assert per_minute <= 5 * 2**20, f"{per_minute / 2**20:.2f} MiB per minute at 10 Hz: over budget"


def test_crash_loses_at_most_one_second(tmp_path):
    cfg = RecordingConfig(flush_period_s=1.0)
    w = RecordingWriter(tmp_path / "r.djr", {"save_name": "x"}, cfg)
    img = np.random.default_rng(0).integers(0, 255, (90, 160, 4), dtype=np.uint8)
    for k in range(37):  # 3.6 s at 10 Hz, never closed: as if the process died here
        w.step({"t": 0.1 * k}, {"proposals": np.zeros((4, 8, 3)), "scores": np.zeros(4)}, img)
    replay = read_replay(tmp_path / "r.djr")  # the writer's buffer is not flushed: only what hit the file
    assert replay.truncated is not None
    assert 37 - len(replay.steps) <= 10
    w.close()
    assert len(read_replay(tmp_path / "r.djr").steps) == 37


def test_truncated_and_corrupt_tails_keep_the_intact_steps(recorded, tmp_path):
    path, _, _ = recorded
    data = path.read_bytes()
    full = len(read_replay(path).steps)
    cut = tmp_path / "cut.djr"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = read_replay(cut)
    assert r.truncated and "truncated" in r.truncated and 0 < len(r.steps) < full
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.djr").write_bytes(bytes(flipped))
    r = read_replay(tmp_path / "flip.djr")
    assert r.truncated and 0 < len(r.steps) < full


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a drive-jepa recording"),
        (b"hello world, not a replay", "not a drive-jepa recording"),
        (struct.pack("<8sHH", MAGIC, 99, 0), "version 99"),
        (struct.pack("<8sHH", MAGIC, 1, 0), "empty recording"),
        (struct.pack("<8sHH", MAGIC, 1, 0) + b"STEP\x01\x00", "before the META record"),
    ],
)
def test_bad_files_fail_with_one_clear_line(tmp_path, content, message):
    p = tmp_path / "bad.djr"
    p.write_bytes(content)
    with pytest.raises(ReplayFormatError, match=message) as exc:
        read_replay(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ReplayFormatError, match="no such recording"):
        read_replay(tmp_path / "missing.djr")


def test_never_overwrites(tmp_path):
    p = tmp_path / "a.djr"
    RecordingWriter(p, {}).close()
    q = RecordingWriter.unique_path(p)
    assert q.name == "a_1.djr"
    with pytest.raises(FileExistsError):
        RecordingWriter(p, {})


def test_events_before_the_first_model_step_are_kept(tmp_path):
    from agent import leaderboard_agent as la
    from tests.agent.sim import BicycleSim, l_shaped_route
    from tests.replay.helpers import SMALL_RIG, H, W

    conf = tmp_path / "agent.yaml"
    conf.write_text(f"record: true\nrecord_dir: {tmp_path / 'rec'}\n{SMALL_RIG}")
    agent = la.DriveJEPAAgent("localhost", 2000, False)
    agent.setup(f"{conf}+{SAVE_NAME}")
    agent.record_event("start", "before any step", 0.0)
    assert agent.recorder is None and agent.recording_path() == tmp_path / "rec" / f"{SAVE_NAME}.djr"
    sim = BicycleSim()
    agent.set_global_plan(*sim.global_plan(*l_shaped_route()))
    for _ in range(3):
        sim.apply(agent.run_step(sim.input_data(W, H), sim.t))
    agent.destroy()
    replay = read_replay(tmp_path / "rec" / f"{SAVE_NAME}.djr")
    assert len(replay.steps) == 2 and [e["message"] for e in replay.events] == ["before any step"]
