"""The fault-tolerant, resumable, multi-server Bench2Drive evaluation harness (`drive-jepa eval`).

Modules: `config` (typed run config), `selection` (which routes), `evaluator` (the leaderboard command line
and
environment), `checkpoint` (reading a leaderboard checkpoint), `outcome` (classifying an attempt), `job` (one
attempt as a supervised subprocess), `worker` (one server + its jobs), `executor` (threads or Ray actors),
`scheduler` (the dynamic longest-first queue, retries, resume), `store` (per-route records), `progress`.
"""
