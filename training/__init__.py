"""training — everything that learns or labels: V-JEPA pretraining, planner losses and training loops,
datasets (NAVSIM, Bench2Drive, driving video), the vectorized EPDMS/PDMS scorer and teacher generation.

May import: `drive_jepa`, `agent` (models are defined there once and trained here), `carla_tools` (map
conversion and world-snapshot formats for CARLA-side teachers), torch/timm/numpy. Must not import `bench2drive`.
"""
