"""A correct agent for ``mockfgt check``: the reference flow, fed from the settings file.

    mockfgt check -- python tests/data/agents/reference_agent.py {settings}

It reads the settings JSON that ``check`` writes for each run and prints the code the reference agent
(:func:`mockfgt.probe.probe`) reports. Agents in other languages do the same with their own code.
"""

import json
import sys

from mockfgt.device import ClientSettings
from mockfgt.probe import probe

settings = json.load(open(sys.argv[1], encoding="utf-8"))
client = dict(settings["client"])
client["cert"] = tuple(client["cert"]) if client["cert"] else None
result = probe(ClientSettings(**client), kind=settings["kind"], timeout=float(settings["timeout"]))
print(f"{result.step}: {result.detail}", file=sys.stderr)
print(result.code)
