"""Debugging from recordings: render a `.djr` recording to MP4 and Rerun, re-run another model on it, locate
recordings in an evaluation folder. Entry point: `drive-jepa replay` (agent.replay.cli); format: agent.recording."""
