"""Facts of the CARLA leaderboard / Bench2Drive evaluator and results format shared by its producers (the
harness, the lite world) and its readers (the aggregator): the infraction lists of a route record, in the
leaderboard's order (`leaderboard/utils/statistics_manager.py`; fixtures/bench2drive/README.md, "Results JSON
schema"), the penalty factor per infraction, and the command-line options of the evaluator."""

INFRACTION_KEYS: tuple[str, ...] = (
    "collisions_layout",
    "collisions_pedestrian",
    "collisions_vehicle",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "min_speed_infractions",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "route_dev",
    "vehicle_blocked",
    "route_timeout",
)

# Leaderboard 2.0 penalty coefficient per infraction message (statistics_manager.py PENALTY_VALUE_DICT).
PENALTY_FACTORS: dict[str, float] = {
    "collisions_pedestrian": 0.5,
    "collisions_vehicle": 0.6,
    "collisions_layout": 0.65,
    "red_light": 0.7,
    "stop_infraction": 0.8,
    "scenario_timeouts": 0.7,
    "yield_emergency_vehicle_infractions": 0.7,
}

# Every option of Bench2Drive's leaderboard_evaluator.py (7ec25d1), in the order `main()` declares them.
EVALUATOR_OPTIONS: tuple[str, ...] = (
    "--host",
    "--port",
    "--traffic-manager-port",
    "--traffic-manager-seed",
    "--debug",
    "--record",
    "--timeout",
    "--routes",
    "--routes-subset",
    "--repetitions",
    "--agent",
    "--agent-config",
    "--track",
    "--resume",
    "--checkpoint",
    "--debug-checkpoint",
    "--gpu-rank",
)
