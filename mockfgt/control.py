"""The control API: plain HTTP JSON on loopback to list, steer and inspect a harness's devices.

    GET    /devices                          every device as the manifest shows it
    GET    /devices/NAME                     one device
    POST   /devices/NAME/scenario            {"scenario": "expired-cert"}: switch in place
    POST   /devices/NAME/remedy              apply the scenario's documented remedy
    POST   /devices/NAME/reset               back to the scenario's initial state
    POST   /devices/NAME/regenerate-key      {"user": "agent"} (default: the agent's user)
    POST   /devices/NAME/trusthosts          {"user": "agent", "trusthosts": ["10.0.0.0/8"]}
    POST   /devices/NAME/expire-sessions     end every login session (FortiManager, FortiOS admins)
    POST   /devices/NAME/op                  any scenario operation: {"op": "set-access", ...}
    GET    /devices/NAME/journal?since=SEQ   what happened on the device's port (one page: &limit=N)
    DELETE /devices/NAME/journal             forget it
    GET    /manifest                         the manifest document

Every change answers the device as it is afterwards (new token included) and rewrites the manifest.
A journal is read in pages of at most ``limit`` events and about ``JOURNAL_PAGE_BYTES``: when more
follow, the answer says so in ``X-Mockfgt-Journal-More: true``, and ``X-Mockfgt-Journal-Next`` is the
``since`` of the next page (``mockfgt ctl journal`` reads every page). ``X-Mockfgt-Journal-Evicted``
counts the events dropped, oldest first, to keep the journal within its bounds.
Errors are JSON: ``{"error": "what was wrong"}`` with 400, 404 or 405.
"""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .scenario import ScenarioError

#: The most a journal page weighs (events as compact JSON; a page holds at least one event): a
#: journal is answered in pieces, never built into one string as large as itself.
JOURNAL_PAGE_BYTES = 1024 * 1024


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def create_control_app(harness) -> Flask:
    app = Flask("mockfgt.control")

    def device(name):
        try:
            return harness.device(name)
        except KeyError as exc:
            raise ControlError(exc.args[0], 404) from None

    def changed(dev):
        harness.write_manifest()
        return jsonify(harness.describe(dev))

    def body() -> dict:
        if not request.get_data():
            return {}
        data = request.get_json(silent=True, force=True)
        if not isinstance(data, dict):
            raise ControlError("the body must be a JSON object")
        return data

    @app.get("/")
    @app.get("/manifest")
    def manifest():
        return jsonify(harness.manifest())

    @app.get("/devices")
    def devices():
        return jsonify([harness.describe(d) for d in harness.devices.values()])

    @app.get("/devices/<name>")
    def show(name):
        return jsonify(harness.describe(device(name)))

    @app.post("/devices/<name>/scenario")
    def use(name):
        scenario = body().get("scenario")
        if not isinstance(scenario, str) or not scenario:
            raise ControlError('give the scenario to switch to: {"scenario": "expired-cert"}')
        dev = device(name)
        dev.use(scenario)
        return changed(dev)

    @app.post("/devices/<name>/remedy")
    def remedy(name):
        dev = device(name)
        dev.remedy()
        return changed(dev)

    @app.post("/devices/<name>/reset")
    def reset(name):
        dev = device(name)
        dev.reset()
        return changed(dev)

    @app.post("/devices/<name>/regenerate-key")
    def regenerate_key(name):
        dev = device(name)
        dev.apply({"op": "regenerate-key", "user": body().get("user") or dev.client_user})
        return changed(dev)

    @app.post("/devices/<name>/trusthosts")
    def trusthosts(name):
        data, dev = body(), device(name)
        hosts = data.get("trusthosts")
        if not isinstance(hosts, list):
            raise ControlError('give the list of trusted hosts: {"trusthosts": ["10.0.0.0/8"]} ([] = any)')
        dev.apply({"op": "set-trusthosts", "user": data.get("user") or dev.client_user, "trusthosts": hosts})
        return changed(dev)

    @app.post("/devices/<name>/expire-sessions")
    def expire_sessions(name):
        dev = device(name)
        dev.apply({"op": "expire-sessions"})
        return changed(dev)

    @app.post("/devices/<name>/op")
    def operation(name):
        dev = device(name)
        dev.apply(body())
        return changed(dev)

    @app.get("/devices/<name>/journal")
    def journal(name):
        since = _number("since", 0, "a sequence number")
        limit = _number("limit", None, "a number of events, 1 or more")
        if limit is not None and limit < 1:
            raise ControlError("limit must be a number of events, 1 or more")
        journal = device(name).journal
        events, more = journal.page(since, limit=limit, max_bytes=JOURNAL_PAGE_BYTES)
        answer = Response("[" + ",".join(json.dumps(e, default=str, separators=(",", ":"), sort_keys=True)
                                        for e in events) + "]",
                          mimetype="application/json")
        answer.headers["X-Mockfgt-Journal-More"] = "true" if more else "false"
        answer.headers["X-Mockfgt-Journal-Next"] = str(events[-1]["seq"] if events else since)
        answer.headers["X-Mockfgt-Journal-Evicted"] = str(journal.evicted)
        return answer

    def _number(name, default, what):
        try:
            return int(request.args[name]) if name in request.args else default
        except ValueError:
            raise ControlError(f"{name} must be {what} (an integer)") from None

    @app.delete("/devices/<name>/journal")
    def clear_journal(name):
        device(name).journal.clear()
        return jsonify({"cleared": name})

    @app.errorhandler(ControlError)
    def control_error(exc):
        return jsonify({"error": str(exc)}), exc.status

    @app.errorhandler(ScenarioError)
    @app.errorhandler(ValueError)
    def bad_value(exc):
        return jsonify({"error": str(exc)}), 400

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return jsonify({"error": f"{exc.name}: {request.method} {request.path}" if exc.code in (404, 405)
                        else exc.description}), exc.code

    return app
