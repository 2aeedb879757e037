"""agent — everything that runs at inference: the V-JEPA video encoder, the planners, the camera model,
momentum-aware selection, the CARLA-independent policy core and the thin Bench2Drive leaderboard adapter.

May import: `drive_jepa` (frames, configs), torch/timm/numpy/opencv, and (lazily, only in the leaderboard
adapter) `carla` and `leaderboard`. Must not import `training`, `bench2drive` or `carla_tools`.
"""
