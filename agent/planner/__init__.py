"""Planners: the perception-free baseline and the proposal-centric planner (configs, modules, checkpoints).

Imports: torch, `drive_jepa`, `agent.camera`. The video encoder is consumed through the `TokenEncoder` protocol
(`tokens.py`); the real V-JEPA encoder lives in `agent/encoder/`.
"""
