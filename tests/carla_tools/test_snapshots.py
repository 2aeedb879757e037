"""Snapshot records from real `carla` value types (no server needed) and the 10 Hz track resampling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

carla = pytest.importorskip("carla")

from carla_tools.snapshots import (  # noqa: E402
    FORMAT,
    ego_record,
    frame_record,
    object_type,
    read_snapshots,
    record_from_carla,
    tracks_at_10hz,
)


def test_record_frames_and_box_offset() -> None:
    # CARLA: at (10, 5), yaw 90 deg (facing +y_carla = south), box offset 0.5 m forward
    tf = carla.Transform(carla.Location(10.0, 5.0, 0.0), carla.Rotation(yaw=90.0))
    bb = carla.BoundingBox(carla.Location(0.5, 0.0, 0.7), carla.Vector3D(2.4, 1.0, 0.75))
    rec = record_from_carla(
        7, "vehicle.lincoln.mkz_2020", tf, carla.Vector3D(0.0, 3.0, 0.0), bb, {"number_of_wheels": "4"}
    )
    # WORLD: y = -5, heading = -90 deg (south), centre 0.5 m further south, velocity south
    assert rec["type"] == "VEHICLE"
    assert rec["x"] == pytest.approx(10.0) and rec["y"] == pytest.approx(-5.5)
    assert rec["heading"] == pytest.approx(-math.pi / 2)
    assert (rec["vx"], rec["vy"]) == (pytest.approx(0.0), pytest.approx(-3.0))
    assert (rec["length"], rec["width"]) == (pytest.approx(4.8), pytest.approx(2.0))
    ego = ego_record(rec)
    assert ego["speed"] == pytest.approx(3.0)
    assert ego["rear_axle"][1] == pytest.approx(-5.5 + 1.39)  # rear axle is behind (north of) the centre


def test_types() -> None:
    assert object_type("walker.pedestrian.0001") == "PEDESTRIAN"
    assert object_type("vehicle.diamondback.century", {"number_of_wheels": "2", "base_type": "bicycle"}) == "BICYCLE"
    assert object_type("vehicle.yamaha.yzf", {"number_of_wheels": "2", "base_type": "motorcycle"}) == "VEHICLE"
    assert object_type("static.prop.trafficcone01") == "TRAFFIC_CONE"
    assert object_type("static.prop.streetbarrier") == "BARRIER"


def test_log_roundtrip_and_resampling(tmp_path: Path) -> None:
    bb = carla.BoundingBox(carla.Location(0.0, 0.0, 0.7), carla.Vector3D(2.0, 0.9, 0.7))
    path = tmp_path / "snapshots.jsonl"
    with open(path, "w") as f:
        for k in range(5):  # 20 Hz frames, an actor driving east at 10 m/s
            t = 0.05 * k
            a = record_from_carla(
                3,
                "vehicle.audi.a2",
                carla.Transform(carla.Location(10 * t, 0.0, 0.0)),
                carla.Vector3D(10.0, 0.0, 0.0),
                bb,
            )
            e = ego_record(record_from_carla(1, "vehicle.lincoln.mkz_2020", carla.Transform(), carla.Vector3D(), bb))
            f.write(json.dumps(frame_record(100 + k, t, e, [a], [{"id": 9, "state": "Red", "lanes": [[1, -1]]}])))
            f.write("\n")
        f.write('{"format": "' + FORMAT + '", "frame"')  # interrupted write
    snaps = read_snapshots(path)
    assert len(snaps) == 5 and snaps[0]["traffic_lights"][0]["state"] == "Red"
    tracks = tracks_at_10hz(snaps, 0.0, steps=4)
    np.testing.assert_allclose(tracks[3][:3, 0], [0.0, 1.0, 2.0], atol=1e-9)
    assert np.isnan(tracks[3][3]).all()  # beyond the last snapshot
