"""Planner training: batch format, synthetic datasets, losses (imitation, MTD, scorer), the train loop and benches.

Imports: torch, `drive_jepa`, `agent` (models, camera, selection, checkpoint format).
"""
