"""Classifying one evaluator attempt: finished, agent crash, simulation crash or timeout.

Inputs: the exit code, why the harness killed it (if it did), the tail of its log, and the record its
checkpoint holds for the route. Rules (statuses from Bench2Drive's `FAILURE_MESSAGES`):

1. Killed by the harness (no progress / route wall-time limit / server died) -> TIMEOUT or SIM_CRASH, with
   that reason; a record written before the kill is still kept.
2. A record with status "Failed - Simulation crashed" -> SIM_CRASH (the evaluator gave up on the world).
3. A record with "Failed - Agent couldn't be set up" or "... sensors were invalid" -> AGENT_SETUP (the agent
   never drove: not the route's result, the route stays failed); "Failed - Agent crashed" -> AGENT_CRASH.
4. Any other record -> FINISHED (Completed, Perfect, Failed, TickRuntime, blocked, deviated, timed out: the
   route's result as the leaderboard scored it), whatever the exit code.
5. No record: setup failure text in the log (including a traceback through the evaluator's import of the
   agent module) -> AGENT_SETUP; other agent failure text -> AGENT_CRASH; otherwise SIM_CRASH ("exited 0
   without a record", "killed by SIGSEGV", "exit code 3" + the last error line of the log).

SIM_CRASH and TIMEOUT are infrastructure failures and are retried; FINISHED and AGENT_CRASH are the route's
result and are final; AGENT_SETUP is neither (the route stays failed, the next run tries it again).
"""

from __future__ import annotations

import enum
import re
import signal
from typing import Any


class Outcome(str, enum.Enum):
    FINISHED = "finished"
    AGENT_CRASH = "agent_crash"
    SIM_CRASH = "sim_crash"
    TIMEOUT = "timeout"
    SERVER_DOWN = "server_down"  # the server could not be (re)started: the job never ran
    # the agent never drove: its module did not import, setup() raised or its sensors were invalid. Not the
    # route's result (a config or install problem), not retried in the same run (it would fail the same way);
    # the route stays `failed` and a rerun after the fix tries it again
    AGENT_SETUP = "agent_setup"

    @property
    def infrastructure(self) -> bool:
        """True for failures of the simulator/harness, which are retried."""
        return self in (Outcome.SIM_CRASH, Outcome.TIMEOUT, Outcome.SERVER_DOWN)

    @property
    def final(self) -> bool:
        """True when the outcome is the route's result (never rerun, counted once)."""
        return not self.infrastructure and self is not Outcome.AGENT_SETUP


SIM_CRASH_STATUS = "Failed - Simulation crashed"
AGENT_STATUSES = (
    "Failed - Agent crashed",
    "Failed - Agent couldn't be set up",
    "Failed - Agent's sensors were invalid",
)
SETUP_STATUSES = AGENT_STATUSES[1:]  # the agent never drove
_SETUP_LOG = re.compile(
    r"Could not set up the required agent|sensor's configuration used is invalid"
    # the agent's module failed to import (in the evaluator's __init__)
    r"|self\.module_agent = importlib\.import_module"
)
_AGENT_LOG = re.compile(r"the agent has crashed|AgentError")
_ERROR_LINE = re.compile(r"(Error|Exception|error:|time-out|Segmentation fault|crash)", re.IGNORECASE)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def last_error_line(log_tail: str) -> str:
    for line in reversed(log_tail.splitlines()):
        if _ERROR_LINE.search(line):
            return line.strip()[:300]
    return ""


def classify(
    exit_code: int | None,
    record: dict[str, Any] | None,
    log_tail: str = "",
    killed: tuple[Outcome, str] | None = None,
) -> tuple[Outcome, str]:
    """(outcome, reason) for one attempt; `reason` is one human line kept in the route's record."""
    if killed is not None:
        return killed
    if record is not None:
        status = str(record.get("status", ""))
        if status == SIM_CRASH_STATUS:
            detail = last_error_line(log_tail)
            return Outcome.SIM_CRASH, f"record status '{status}'" + (f": {detail}" if detail else "")
        if status in SETUP_STATUSES:
            detail = last_error_line(log_tail)
            return Outcome.AGENT_SETUP, f"record status '{status}'" + (f": {detail}" if detail else "")
        if status in AGENT_STATUSES:
            return Outcome.AGENT_CRASH, f"record status '{status}'"
        return Outcome.FINISHED, f"record status '{status}', {describe_exit(exit_code)}"
    if _SETUP_LOG.search(log_tail):
        detail = last_error_line(log_tail)
        return Outcome.AGENT_SETUP, f"no record, agent setup failed, {describe_exit(exit_code)}" + (
            f": {detail}" if detail else ""
        )
    if _AGENT_LOG.search(log_tail):
        return Outcome.AGENT_CRASH, f"no record, agent failure in log, {describe_exit(exit_code)}"
    detail = last_error_line(log_tail)
    if exit_code == 0:
        return Outcome.SIM_CRASH, "exited 0 without a record" + (f": {detail}" if detail else "")
    return Outcome.SIM_CRASH, f"no record, {describe_exit(exit_code)}" + (f": {detail}" if detail else "")
