"""The device-kind registry: built-in kinds are typed objects, third-party kinds come from entry points,
and a kind that cannot be loaded stops mockfgt loudly instead of vanishing from the catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest

from mockfgt import kinds, schema

from run_cli import run_mockfgt


def test_builtin_kinds_are_typed_objects():
    found = kinds.registry()
    assert list(found)[:2] == ["fortigate", "fortimanager"]
    for name, kind in found.items():
        assert isinstance(kind, kinds.DeviceKind) and kind.name == name
    assert all(isinstance(found[name], kinds.PasswordLogins) for name in ("fortigate", "fortimanager"))


@pytest.mark.parametrize("name", ["fortigate", "fortimanager"])
def test_operations_are_schema_and_function_pairs(name):
    for op, (spec, run) in kinds.get(name).OPERATIONS.items():
        assert isinstance(spec, schema.Table) and callable(run), op


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(kinds.KindError, match="fortigate, fortimanager"):
        kinds.get("fortianalyzer")


def distribution(folder: Path, name: str, entry_points: str) -> Path:
    """A distribution importlib.metadata finds on PYTHONPATH: a dist-info folder, no pip needed."""
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[mockfgt.kinds]\n{entry_points}\n")
    return folder


@pytest.mark.parametrize(("entry", "says"), [
    ("broken = mockfgt_no_such_module:KIND", "cannot be loaded: ModuleNotFoundError"),
    ("broken = json:loads", "not a mockfgt.kinds.DeviceKind"),
    ("fortigate = mockfgt.fortios.kind:KIND", "is already a kind"),
])
def test_a_kind_that_cannot_load_is_an_error_not_a_gap(tmp_path, entry, says):
    path = distribution(tmp_path, "mockfgt_broken_kind", entry)
    done = run_mockfgt("scenarios", PYTHONPATH=str(path))
    assert done.returncode != 0
    name = entry.split(" ", 1)[0]
    assert f"device kind '{name}'" in done.stderr and says in done.stderr, done.stderr
