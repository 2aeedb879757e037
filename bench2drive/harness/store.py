"""The per-route record store: `<out>/records/<key>.json`, the source of truth for resume.

One JSON document per route repetition (`key` = `RouteScenario_<route>_rep<k>`), rewritten atomically (temp
file + fsync + rename) after every attempt, by the scheduler process only. Its `state` is

- `done`: the route's result is known (outcome `finished` or `agent_crash`); never rerun, counted once;
- `failed`: infrastructure failures used up the retry budget of a run, or the agent could not be set up
  (outcome `agent_setup`); a rerun tries it again;
- `pending`: attempted, not concluded (e.g. the harness stopped between retries); a rerun tries it again.

`record` holds the leaderboard record (results format A) of the deciding attempt (for `failed`, of the last
attempt that wrote one, e.g. a "Failed - Simulation crashed" record); `attempts` lists every attempt made,
each with its server, outcome, reason, exit code, wall time, log and checkpoint paths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench2drive.harness.job import AttemptResult
from bench2drive.harness.outcome import Outcome
from drive_jepa.atomic import write_json_atomic

DONE, FAILED, PENDING = "done", "failed", "pending"


class RecordStore:
    def __init__(self, out: Path) -> None:
        self.dir = Path(out) / "records"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.docs: dict[str, dict[str, Any]] = {}
        for path in sorted(self.dir.glob("*.json")):
            try:
                doc = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: unreadable route record ({exc}); fix or delete it") from None
            if not isinstance(doc, dict) or doc.get("key") != path.stem:
                raise ValueError(f"{path}: expected a route record whose 'key' is {path.stem!r}")
            self.docs[path.stem] = doc

    def state(self, key: str) -> str | None:
        doc = self.docs.get(key)
        return None if doc is None else str(doc["state"])

    def is_done(self, key: str) -> bool:
        return self.state(key) == DONE

    def outcome(self, key: str) -> str | None:
        doc = self.docs.get(key)
        return None if doc is None else doc.get("outcome")

    def reopen(self, key: str) -> None:
        """Make a done route runnable again (`eval --retry agent_crash` after fixing the agent): state pending,
        every earlier attempt and the old record kept until a new attempt concludes."""
        doc = self.docs[key]
        doc["state"] = PENDING
        doc.setdefault("reopened", []).append({"after_attempt": len(doc["attempts"]), "outcome": doc["outcome"]})
        write_json_atomic(self.dir / f"{key}.json", doc)

    def next_attempt(self, key: str) -> int:
        doc = self.docs.get(key)
        return 1 + (len(doc["attempts"]) if doc else 0)

    def add_attempt(self, result: AttemptResult, give_up: bool = False) -> dict[str, Any]:
        """Record one attempt; `give_up` marks an infrastructure failure that used the last retry."""
        doc = self.docs.get(result.key) or {
            "key": result.key,
            "route": result.route,
            "repetition": result.repetition,
            "state": PENDING,
            "outcome": None,
            "reason": "",
            "record": None,
            "attempts": [],
        }
        if doc["state"] == DONE:
            raise ValueError(f"{result.key}: already done; a finished route is never recorded twice")
        if any(a["attempt"] == result.attempt for a in doc["attempts"]):
            raise ValueError(f"{result.key}: attempt {result.attempt} is already recorded")
        outcome = Outcome(result.outcome)
        doc["attempts"].append(result.to_json())
        doc["outcome"] = outcome.value
        doc["reason"] = result.reason
        if result.record is not None:
            doc["record"] = result.record
        if outcome.final:
            doc["state"] = DONE
            doc["record"] = result.record
        elif give_up:
            doc["state"] = FAILED
        else:
            doc["state"] = PENDING
        write_json_atomic(self.dir / f"{result.key}.json", doc)
        self.docs[result.key] = doc
        return doc

    def leaderboard_records(self) -> list[dict[str, Any]]:
        """One leaderboard record per route repetition that has one, in key order (never duplicated)."""
        return [doc["record"] for _, doc in sorted(self.docs.items()) if doc.get("record") is not None]

    def counts(self) -> dict[str, int]:
        out = {DONE: 0, FAILED: 0, PENDING: 0}
        for doc in self.docs.values():
            out[doc["state"]] += 1
        return out
