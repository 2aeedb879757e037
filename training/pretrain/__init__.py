"""V-JEPA pretraining: predictor, multiblock masks, objective + EMA, schedules, train loop."""
