"""Facts of the CARLA leaderboard / Bench2Drive results format shared by its producers (the lite world) and its
readers (the aggregator): the infraction lists of a route record, in the leaderboard's order
(`leaderboard/utils/statistics_manager.py`; fixtures/bench2drive/README.md, "Results JSON schema")."""

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
