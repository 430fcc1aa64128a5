"""The agent is described once (mockfgt.agent.Agent): the manifest keeps the keys it always had, and a
kept session is one field whatever the kind, shown in the manifest as before."""

from __future__ import annotations

import requests

from mockfgt import Harness
from mockfgt.agent import Agent
from mockfgt.probe import probe

from deadlines import seconds

MANIFEST_CLIENT_KEYS = ["url", "token", "token_in", "verify", "cert", "vdom", "write", "auth", "user", "password",
                        "login", "csrf", "accept_banner", "session_key", "adom", "workspace_lock", "trusthost_user"]


def test_the_manifest_keeps_its_client_keys_and_meanings(mockfgt_ca):
    with Harness(ca=mockfgt_ca, control_port=None) as h:
        fgt, kept_key, kept_id = h.add("fgt-healthy"), h.add("session-expired"), h.add("fmg-session-expired")
        h.start()
        shown = {d.name: h.describe(d)["client"] for d in (fgt, kept_key, kept_id)}
        assert all(list(client) == MANIFEST_CLIENT_KEYS for client in shown.values())
        # A FortiOS agent holding a timed-out session key: auth password, the key in session_key.
        assert kept_key.client.auth == "session" and kept_key.client.session
        assert (shown[kept_key.name]["auth"], shown[kept_key.name]["session_key"]) == ("password", kept_key.client.session)
        # A FortiManager agent holding a session id: auth session, the id in token.
        assert kept_id.client.auth == "session" and shown[kept_id.name]["token"] == kept_id.client.session
        assert shown[fgt.name]["token"] == fgt.token and shown[fgt.name]["session_key"] is None
        # The key the manifest shows is the one the device refuses, over the wire.
        answer = requests.get(f"{kept_key.client.url}/api/v2/monitor/system/status",
                              headers={"Authorization": f"Bearer {shown[kept_key.name]['session_key']}"},
                              verify=kept_key.ca_bundle, timeout=seconds(10))
        assert answer.status_code == 401
        assert probe(kept_key.client).code == kept_key.expect == "202001"


def test_an_agent_built_by_hand_is_a_device_agent(fortigate):
    """What a user writes for a real device: the same type the mock hands out."""
    by_hand = Agent(fortigate.url, kind="fortigate", token=fortigate.token, verify=fortigate.ca_bundle, write=False)
    assert isinstance(fortigate.client, Agent)
    assert probe(by_hand).code == "ok"
    assert by_hand.request_kwargs()["headers"] == {"Authorization": f"Bearer {fortigate.token}"}
