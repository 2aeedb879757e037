"""The drive-jepa CLI: help, version, doctor, unknown commands, and that --help stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from drive_jepa import cli
from drive_jepa.commands import doctor


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command_is_a_clear_error(capsys):
    assert cli.main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err and "doctor" in err


def test_version(capsys):
    assert cli.main(["version", "--short"]) == 0
    assert capsys.readouterr().out.startswith("drive-jepa ")


def test_every_registered_command_module_has_main():
    import importlib

    for name, cmd in cli.COMMANDS.items():
        mod = importlib.import_module(cmd.module)
        assert callable(getattr(mod, "main", None)), f"{name}: {cmd.module} lacks main(argv)"


def test_help_does_not_import_heavy_packages():
    code = (
        "import sys; from drive_jepa import cli; cli.main(['--help']); "
        "print(sorted(m for m in ('torch', 'carla', 'timm', 'hydra') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_doctor_reports_missing_roots_with_fixes(tmp_path, capsys):
    assert cli.main(["doctor", "--json", "--carla-root", str(tmp_path), "--bench2drive-root", str(tmp_path)]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["torch"]["status"] == "ok"
    assert checks["CARLA_ROOT"]["status"] == "fail" and "CarlaUE4.sh" in checks["CARLA_ROOT"]["detail"]
    assert checks["BENCH2DRIVE_ROOT"]["status"] == "fail" and checks["BENCH2DRIVE_ROOT"]["fix"]
    # --strict turns the optional misses into a failing exit code
    assert cli.main(["doctor", "--strict", "--carla-root", str(tmp_path)]) == 1


def test_doctor_bench2drive_import_check_runs_the_real_imports(tmp_path):
    # a layout that has the files but whose packages do not import: the subprocess import check must say so
    (tmp_path / "leaderboard" / "leaderboard").mkdir(parents=True)
    (tmp_path / "leaderboard" / "leaderboard" / "leaderboard_evaluator.py").write_text("")
    (tmp_path / "scenario_runner" / "srunner").mkdir(parents=True)
    check = doctor.check_bench2drive(str(tmp_path), None)
    assert check.status == "fail" and "not importable" in check.detail


def test_doctor_carla_client_is_the_0915_client():
    check = doctor.check_carla_client()
    try:
        import carla  # noqa: F401
    except ImportError:
        assert check.status == "warn" and "carla-0-9-15" in check.fix
    else:
        assert check.status == "ok" and "0.9.15" in check.detail


def _b2d_layout(root, evaluator_imports: str):
    """Bench2Drive's and CARLA's import layout with the real third-party imports of leaderboard_evaluator.py
    (pkg_resources; pexpect through agent_wrapper → ros_base_agent) and empty stand-ins for their own modules."""
    files = {
        "b2d/leaderboard/leaderboard/__init__.py": "",
        "b2d/leaderboard/leaderboard/autoagents/__init__.py": "",
        "b2d/leaderboard/leaderboard/autoagents/autonomous_agent.py": "",
        "b2d/leaderboard/leaderboard/leaderboard_evaluator.py": evaluator_imports,
        "b2d/scenario_runner/srunner/__init__.py": "",
        "b2d/scenario_runner/srunner/scenariomanager/__init__.py": "",
        "b2d/scenario_runner/srunner/scenariomanager/carla_data_provider.py": "",
        "carla/PythonAPI/carla/agents/__init__.py": "",
        "carla/PythonAPI/carla/agents/navigation/__init__.py": "",
        "carla/PythonAPI/carla/agents/navigation/local_planner.py": "",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(root / "b2d"), str(root / "carla")


def test_doctor_imports_the_evaluator_with_the_packages_it_needs(tmp_path):
    # the project's environment provides what Bench2Drive 7ec25d1's evaluator imports beyond its own code
    b2d, carla_root = _b2d_layout(tmp_path / "ok", "import pkg_resources\nimport pexpect\nimport py_trees\n")
    check = doctor.check_bench2drive(b2d, carla_root)
    assert check.status == "ok", check.detail
    b2d, carla_root = _b2d_layout(tmp_path / "bad", "import pkg_resources\nimport no_such_package_xyz\n")
    check = doctor.check_bench2drive(b2d, carla_root)
    assert check.status == "fail" and "No module named 'no_such_package_xyz'" in check.detail


def test_doctor_prints_each_check_as_it_finishes(monkeypatch, capsys):
    printed_before_second: list[str] = []

    def checks(carla_root, b2d_root):
        yield doctor.Check("first", doctor.OK, "done")
        printed_before_second.append(capsys.readouterr().out)  # what the user saw while the next check runs
        yield doctor.Check("second", doctor.WARN, "slow one", "a fix")

    monkeypatch.setattr(doctor, "iter_checks", checks)
    assert doctor.main([]) == 0
    assert printed_before_second == ["[ok]   first                   done\n"]
    assert "[warn] second" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["report", "vocab", "lite", "teachers", "learn", "eval", "replay", "collect"])
def test_commands_that_need_no_torch_start_without_it(command):
    # `--help` and argument errors come before any heavy import, so these start in well under 2 s
    code = (
        f"import sys; from drive_jepa import cli\ntry:\n    cli.main([{command!r}, '--help'])\nexcept SystemExit:\n"
        "    pass\nprint(sorted(m for m in ('torch', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_doctor_reports_navsim_with_versions_or_how_to_get_it():
    """Where navsim is installed (the navsim environment) its and nuplan-devkit's versions and the imports we use
    are reported; elsewhere a warning names the script that builds that environment."""
    check = doctor.check_navsim()[0]
    assert check.name == "navsim"
    try:
        import navsim  # noqa: F401
    except ImportError:
        assert check.status == doctor.WARN and "tools/navsim_env.sh" in check.fix
    else:
        assert check.status == doctor.OK, check.detail
        assert "navsim 2." in check.detail and "nuplan-devkit 1." in check.detail
