"""The edge cases of ../shared/fixtures/bench2drive/edge_cases whose inputs are leaderboard checkpoints that
merge_route_json.py merges (all but `already_merged_input` and `rerun_with_merged_ability_present`)."""

EDGE_CASES = [
    "agent_crashed",
    "completed_min_speed_only",
    "duplicate_records_single_file",
    "duplicate_records_two_files",
    "min_speed_all_above_1000",
    "missing_routes",
    "missing_routes_ability_zero_division",
    "perfect",
    "perfect_only_efficiency_zero_division",
    "simulation_crashed",
]
