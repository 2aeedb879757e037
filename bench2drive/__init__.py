"""bench2drive — Bench2Drive evaluation: route files, the results reader/aggregator and report
(compatible with Bench2Drive's own tools), and the fault-tolerant closed-loop evaluation harness.

May import: `drive_jepa`, `carla_tools` (CARLA process handling, lite world) and `agent` (only to name the
agent file it launches). Must never import `training`.
"""
