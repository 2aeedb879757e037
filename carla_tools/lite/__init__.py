"""The lite world: a CPU closed-loop stand-in for CARLA on the real CARLA town maps (see docs/lite_world.md).

SUMO (libsumo) runs the towns' road networks with background traffic and traffic lights; the ego is a
kinematic bicycle driven by the agent's VehicleControl; sensors come in the leaderboard's formats; results are
written in Bench2Drive's checkpoint format. It is not a replacement for CARLA.
"""
