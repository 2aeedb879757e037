"""`drive-jepa carla-replay` at the API boundary (no CARLA server here): argument handling, the recorder-info
parser, and a clear, quick failure when no server answers."""

from __future__ import annotations

import socket
import time

import pytest

from carla_tools.carla_replay import main, parse_recorder_info

# The layout of `Client.show_recorder_file_info(path, False)` (CARLA docs, "Recorder"), written for this test.
INFO = """Version: 1
Map: Town12
Date: 11/21/26 09:00:00

Frame 1 at 0 seconds
 Create 24: spectator (0) at (0, 0, 0)
 Create 1187: vehicle.lincoln.mkz_2020 (1) at (-312100, 402800, 38000)
  color = 0,0,0
  role_name = hero
 Create 1188: vehicle.audi.tt (1) at (-311000, 402000, 38000)
  role_name = scenario
 Create 1190: sensor.camera.rgb (5) at (0, 0, 0)
  role_name = front

Frame 2 at 0.05 seconds
Frames: 2431
Duration: 121.55 seconds
"""


def test_parse_recorder_info():
    info = parse_recorder_info(INFO)
    assert info.map_name == "Town12"
    assert info.hero_id == 1187 and info.actors[1188] == "vehicle.audi.tt"
    assert info.frames == 2431 and info.duration_s == pytest.approx(121.55)
    empty = parse_recorder_info("File not found")
    assert empty.map_name is None and empty.hero_id is None


def test_missing_log_and_bad_arguments(tmp_path, capsys):
    assert main([str(tmp_path / "none.log")]) == 2
    assert "no such recorder log" in capsys.readouterr().err
    log = tmp_path / "r.log"
    log.write_bytes(b"x")
    assert main([str(log), "--width", "641"]) == 2
    assert "even" in capsys.readouterr().err


@pytest.mark.carla
def test_no_server_fails_fast_with_one_line(tmp_path, capsys):
    log = tmp_path / "r.log"
    log.write_bytes(b"x")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    assert main([str(log), "--port", str(port), "--timeout", "1"]) == 2
    assert time.monotonic() - t0 < 15
    err = capsys.readouterr().err.strip()
    assert f"no CARLA server reachable at localhost:{port} within 1 s" in err and "\n" not in err
