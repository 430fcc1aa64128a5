"""A correct agent for ``mockfgt check``: the reference flow, fed from the settings file.

    mockfgt check -- python tests/data/agents/reference_agent.py {settings}

It reads the settings JSON that ``check`` writes for each run and prints the code the reference agent
(:func:`mockfgt.probe.probe`) reports. Agents in other languages do the same with their own code.
"""

import json
import sys

from mockfgt.device import ClientSettings
from mockfgt.probe import probe

agent = json.load(open(sys.argv[1], encoding="utf-8"))
auth = "password" if agent["auth"] == "session" and agent["kind"] == "fortigate" else agent["auth"]
client = ClientSettings(
    url=agent["url"], token=agent["session"] if agent["auth"] == "session" and auth == "session" else agent["token"],
    token_in=agent["token_in"], verify=False if agent["insecure"] else agent["ca"] or True,
    cert=(agent["cert"], agent["key"]) if agent["cert"] else None, vdom=agent["vdom"], write=agent["write"],
    auth=auth, user=agent["user"], password=agent["password"], login=agent["login"], csrf=agent["csrf"],
    accept_banner=agent["accept_banner"], session_key=agent["session"] if auth == "password" else None,
    adom=agent["adom"], workspace_lock=agent["workspace_lock"], trusthost_user=agent["trusthost_user"],
)
result = probe(client, kind=agent["kind"], timeout=float(agent["timeout"]))
print(f"{result.step}: {result.detail}", file=sys.stderr)
print(result.code)
