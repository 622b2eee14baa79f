"""monitord as an installed package: a wheel carries its built-in profiles and rules and its C
extensions (compiled from source as the wheel is built), `--version`,
`check --json`, and the API description is a valid OpenAPI document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from tests.test_config import EXAMPLE_ENV

REPO = Path(__file__).resolve().parent.parent
BUILT_IN = {
    "adsl",
    "adsl-wholedb",
    "docsis-cm",
    "docsis-cmts",
    "docsis-upstream",
    "gpon-axos",
    "huawei-optics",
    "if-mib",
    "mikrotik-sfp",
    "oneaccess-shdsl",
    "shdsl",
    "ufiber-onu",
    "vdsl2",
}
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "*.so")


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from a copy of the checkout; dependencies come from the
    test's own environment through a .pth line, so nothing is downloaded."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    built = run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        root / "wheels",
        source,
        cwd=root,
        env=env,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (root / "wheels").glob("monitord-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    done = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root, env=env)
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def installed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | EXAMPLE_ENV


def test_a_wheel_ships_the_built_in_profiles_and_rules(installed: Path, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("example.yaml", "example-subscribers.csv"):
        shutil.copy(REPO / "config" / name, etc / name)
    env = installed_env()

    version = run(installed / "bin" / "monitord", "--version", cwd=tmp_path, env=env)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert (version.returncode, version.stdout.strip()) == (0, f"monitord {declared}"), version.stderr

    checked = run(installed / "bin" / "monitord", "check", etc / "example.yaml", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{etc / 'example.yaml'}: OK:")

    found = run(
        installed / "bin" / "python",
        "-c",
        (
            "import json, monitord, monitord.config.rules as r, probes._ber as c, probes._icmp as i;"
            "from probes.profile_files import load_profiles;"
            "print(json.dumps([monitord.__file__, [c.__file__, i.__file__], sorted(load_profiles()), r.load_default_rules_text()]))"
        ),
        cwd=tmp_path,
        env=env,
    )
    assert found.returncode == 0, found.stderr
    module, compiled, profiles, default_rules = json.loads(found.stdout)
    assert Path(module).is_relative_to(installed)
    # the C parts of probes/ber.py and probes/icmp.py, compiled as the wheel was built
    assert all(Path(path).is_relative_to(installed) and path.endswith(".so") for path in compiled)
    assert set(profiles) == BUILT_IN
    assert default_rules == (REPO / "monitord" / "builtin" / "rules" / "default.yaml").read_text(encoding="utf-8")


def check_json(config: Path) -> tuple[int, dict[str, object]]:
    env = os.environ | EXAMPLE_ENV | {"PYTHONPATH": str(REPO)}
    done = run(sys.executable, "-m", "monitord.cli", "check", "--json", config, cwd=config.parent, env=env)
    return done.returncode, json.loads(done.stdout)


def test_check_json_names_file_line_and_key(tmp_path: Path) -> None:
    text = (REPO / "config" / "example.yaml").read_text(encoding="utf-8")
    shutil.copy(REPO / "config" / "example-subscribers.csv", tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text(text, encoding="utf-8")
    assert check_json(good) == (0, {"ok": True, "problems": [], "warnings": []})

    assert text.count("\n  settle: 60s\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("\n  settle: 60s\n", "\n  settle: soon\n"), encoding="utf-8")
    line = text.splitlines().index("  settle: 60s") + 1
    code, report = check_json(bad)
    assert code == 1 and report["ok"] is False
    [problem] = report["problems"]
    assert (problem["file"], problem["line"], problem["key"]) == (str(bad), line, "rules.settle")
    assert "soon" in problem["message"] and set(problem) == {"file", "line", "key", "message", "hint"}


def test_the_openapi_document_is_valid() -> None:
    validate(yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text(encoding="utf-8")))
