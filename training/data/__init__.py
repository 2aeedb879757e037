"""Training datasets (driving video for pretraining, NAVSIM / Bench2Drive scenes for the planner)."""
