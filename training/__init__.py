"""training — everything that learns or labels: V-JEPA pretraining, planner losses and training loops,
datasets (NAVSIM, Bench2Drive, driving video), the vectorized EPDMS/PDMS scorer and teacher generation.

May import: `drive_jepa`, `agent` (models are defined there once and trained here), torch/timm/numpy.
Must not import `bench2drive` or `carla_tools` at module level (CARLA-side scene logs are read through files).
"""
