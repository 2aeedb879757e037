"""`drive-jepa eval` loads the agent once, like the evaluator will, before the first route."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench2drive.harness.run import EvalSetupError, evaluate
from tests.conftest import fixtures_dir
from tests.harness.harness_helpers import fast_config

ROUTES = ("bench2drive", "routes", "drivetransformer_bench2drive_dev10.xml")
AGENT = Path(__file__).resolve().parents[2] / "agent" / "leaderboard_agent.py"


def _cfg(tmp_path: Path, b2d_root: Path, agent: Path, agent_config: str):
    cfg = fast_config(tmp_path, b2d_root, fixtures_dir(*ROUTES), {"*": ["finish"]})
    cfg.agent, cfg.agent_config, cfg.preflight = str(agent), agent_config, True
    cfg.select.route_ids = ["2091"]
    return cfg


@pytest.mark.parametrize(
    ("config_text", "agent_text", "message"),
    [
        ("model: checkpoint\ncheckpoint: no/such/run\n", None,
         "agent preflight failed: agent config {conf}: FileNotFoundError"),
        ("model: checkpoint\n", None, "model=checkpoint needs `checkpoint`"),
        ("model: route_follow\npolicy:\n  rig:\n    camera: {width: 0}\n", None, "not a valid image"),
        ("modle: x\n", None, "unknown key 'modle'"),
        (None, "import no_such_module_xyz\n", "does not import: ModuleNotFoundError"),
        (None, "def get_entry_point():\n    return 'Nope'\n", "names 'Nope', which the file does not define"),
    ],
)  # fmt: skip
def test_a_broken_agent_fails_before_any_route_with_one_line(
    tmp_path: Path, b2d_root: Path, config_text: str | None, agent_text: str | None, message: str
) -> None:
    conf = tmp_path / "agent.yaml"
    conf.write_text(config_text or "model: route_follow\n")
    agent = AGENT
    if agent_text is not None:
        agent = tmp_path / "broken_agent.py"
        agent.write_text(agent_text)
    cfg = _cfg(tmp_path, b2d_root, agent, str(conf))
    with pytest.raises(EvalSetupError) as err:
        evaluate(cfg)
    text = str(err.value)
    assert "\n" not in text and message.format(conf=conf) in text
    out = Path(cfg.out)
    assert not (out / "records").exists() and not (out / "agent.json").exists()  # nothing recorded


def test_a_good_agent_passes_and_relative_checkpoints_are_relative_to_their_config(tmp_path: Path) -> None:
    from agent.leaderboard_agent import DriveJEPAAgent, load_agent_config

    conf = tmp_path / "run" / "agent.yaml"
    conf.parent.mkdir()
    conf.write_text("model: route_follow\n")
    assert (
        DriveJEPAAgent.preflight(f"{conf}+RouteScenario_1_rep0")
        == "agent ok: route_follow (RouteFollowModel), 4 sensors"
    )
    conf.write_text("model: checkpoint\ncheckpoint: ../ckpt\n")
    assert load_agent_config(conf).checkpoint == str((tmp_path / "ckpt").resolve())
