"""carla_tools — everything that talks to a simulator: CARLA server processes (launch, probe, restart),
world-snapshot logging and map conversion, and the CPU `lite` world on real CARLA town maps.

May import: `drive_jepa`, `agent` (to drive the lite world), `carla` lazily. Must never import `training`
or `bench2drive`.
"""
