"""Scenario files are parsed once and read again at every load: a change is seen, nothing is shared."""

from __future__ import annotations

import mockfgt


def test_a_rewritten_file_is_seen_at_the_next_load(tmp_path):
    path = tmp_path / "customer.toml"
    path.write_text('extends = "fgt-healthy"\nsummary = "first"\nexpect = "ok"\n')
    assert mockfgt.load_scenario(path).summary == "first"
    path.write_text('extends = "fgt-healthy"\nsummary = "again"\nexpect = "ok"\n')  # same size, same instant
    assert mockfgt.load_scenario(path).summary == "again"


def test_loads_of_one_file_share_no_tables():
    first = mockfgt.load_scenario("expired-cert")
    first.device["vdoms"].append("changed")
    first.raw["tls"]["certificate"] = "valid"
    second = mockfgt.load_scenario("expired-cert")
    assert "changed" not in second.device["vdoms"]
    assert second.raw["tls"]["certificate"] == "expired" == second.tls["certificate"]
