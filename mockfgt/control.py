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
    GET    /devices/NAME/journal?since=SEQ   what happened on the device's port
    DELETE /devices/NAME/journal             forget it
    GET    /manifest                         the manifest document

Every change answers the device as it is afterwards (new token included) and rewrites the manifest.
Errors are JSON: ``{"error": "what was wrong"}`` with 400, 404 or 405.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from .scenario import ScenarioError


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
        try:
            since = int(request.args.get("since", 0))
        except ValueError:
            raise ControlError("since must be a sequence number (an integer)") from None
        return jsonify(device(name).journal.events(since))

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
