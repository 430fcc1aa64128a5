"""A correct agent for ``mockfgt check``: the reference flow, fed from the settings file.

    mockfgt check -- python tests/data/agents/reference_agent.py {settings}

It reads the settings JSON that ``check`` writes for each run and prints the code the reference agent
(:func:`mockfgt.probe.probe`) reports. Agents in other languages do the same with their own code.
"""

import json
import sys

from mockfgt.agent import Agent
from mockfgt.probe import probe

agent = json.load(open(sys.argv[1], encoding="utf-8"))
client = Agent(
    url=agent["url"], kind=agent["kind"], auth=agent["auth"], token=agent["token"], session=agent["session"],
    token_in=agent["token_in"], verify=False if agent["insecure"] else agent["ca"] or True,
    cert=(agent["cert"], agent["key"]) if agent["cert"] else None, vdom=agent["vdom"], write=agent["write"],
    user=agent["user"], password=agent["password"], login=agent["login"], csrf=agent["csrf"],
    accept_banner=agent["accept_banner"], adom=agent["adom"], workspace_lock=agent["workspace_lock"],
    trusthost_user=agent["trusthost_user"],
)
result = probe(client, timeout=float(agent["timeout"]))
print(f"{result.step}: {result.detail}", file=sys.stderr)
print(result.code)
