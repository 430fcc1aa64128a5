"""Whatever a client sends, the mock answers as the device does: an envelope or httpsd's page, never a traceback."""

from __future__ import annotations

import json
import socket
import ssl

import pytest

from deadlines import seconds
from fortios_client import RequestsApi, httpx_client

IDENTITY = {"serial": "FGVM02TM24000001", "version": "v7.4.5", "build": 2702}
# Apache's layout, a line break after each element (fortinet-api.md H.11), typed out here.
NOT_FOUND_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>404 Not Found</title>\n'
    "</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n"
    "<p>Additionally, a 404 Not Found\nerror was encountered while trying to use an ErrorDocument to handle "
    "the request.</p>\n</body></html>\n"
)


@pytest.fixture
def api(fortigate) -> RequestsApi:
    return RequestsApi(fortigate)


def assert_device_error(response, status: int) -> dict:
    """A JSON error envelope whose status and http_status agree and that names the device."""
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert "Traceback" not in response.text
    body = response.json()
    assert (body["status"], body["http_status"]) == ("error", status)
    assert {k: body[k] for k in IDENTITY} == IDENTITY
    return body


def test_server_header_is_the_devices(api):
    assert api.get("monitor/system/status").headers["Server"] == "xxxxxxxx-xxxxx"


@pytest.mark.parametrize("path", ["cmdb/system/status", "cmdb/firewall/nosuch", "monitor/system/nosuch",
                                  "monitor/nosuch", "log/disk/event", "nosuch/tree"])
def test_unknown_api_paths_are_json_404s(api, path):
    body = assert_device_error(api.get(path), 404)
    assert body["http_method"] == "GET"


@pytest.mark.parametrize("path", ["/", "/api/v2", "/api/v1/cmdb/firewall/address", "/ng/system/status"])
def test_paths_outside_the_api_get_httpsds_html_404(fortigate, path):
    """fortinet-api.md H.11: httpsd's pages are multi-line as Apache writes them (404 text: Apache's stock)."""
    response = RequestsApi(fortigate).session.get(fortigate.url + path, timeout=seconds(10))
    assert response.status_code == 404
    assert response.text == NOT_FOUND_PAGE


@pytest.mark.parametrize(("method", "path"), [("PATCH", "cmdb/firewall/address"), ("OPTIONS", "cmdb/firewall/address"),
                                              ("PROPFIND", "cmdb/firewall/address"), ("POST", "monitor/system/status"),
                                              ("PUT", "cmdb/firewall/address"), ("POST", "cmdb/firewall/address/x")])
def test_methods_an_endpoint_does_not_take_are_405(api, method, path):
    assert_device_error(api.request(method, path, json={"name": "x"}), 405)


def test_head_is_405_without_a_body(api):
    response = api.request("HEAD", "monitor/system/status")
    assert response.status_code == 405 and response.text == ""


@pytest.mark.parametrize("body", [b"{bad json", b'{"name": "x",}', b"\xff\xfe\x00", b"[1, 2]", b'"just a string"',
                                  b"name=x&subnet=1.2.3.4"])
def test_malformed_or_non_object_json_is_400(api, body):
    response = api.post("cmdb/firewall/address", data=body, headers={"Content-Type": "application/json"})
    envelope = assert_device_error(response, 400)
    assert envelope["revision_changed"] is False
    assert "x" not in [row["name"] for row in api.get("cmdb/firewall/address").json()["results"]]


def test_multipart_body_is_400(api):
    response = api.post("cmdb/firewall/address", files={"name": ("x", b"y")})
    assert_device_error(response, 400)


def test_missing_body_on_create_is_an_invalid_value(api):
    body = assert_device_error(api.post("cmdb/firewall/address"), 500)
    assert body["error"] == -651


def test_oversize_body_is_413(fortigate):
    big = b'{"name": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    with httpx_client(fortigate) as client:
        response = client.post("cmdb/firewall/address", content=big, headers={"Content-Type": "application/json"})
    assert_device_error(response, 413)
    with httpx_client(fortigate) as client:
        assert client.get("monitor/system/status").status_code == 200  # the device is fine afterwards


def test_unauthenticated_oversize_body_is_401_first(fortigate):
    response = RequestsApi(fortigate).post("cmdb/firewall/address", token=None, data=b"x" * (17 * 1024 * 1024))
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["cmdb/firewall/address", "monitor/system/status", "cmdb/system/vdom"])
def test_http_status_always_matches_the_status_line(api, path):
    for method in ("GET", "POST", "PUT", "DELETE"):
        response = api.request(method, path, data=b"{}")
        if response.headers["Content-Type"] == "application/json":
            body = response.json()
            assert body.get("http_status", response.status_code) == response.status_code
            assert body["status"] == ("success" if response.status_code == 200 else "error")


def test_a_bare_socket_speaking_garbage_gets_an_http_error(fortigate):
    """Below any client library: a malformed request line after the handshake is answered, not crashed on."""
    context = ssl.create_default_context(cafile=fortigate.ca_bundle)
    with socket.create_connection(("127.0.0.1", fortigate.port), timeout=seconds(10)) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"\x01\x02 not http at all\r\n\r\n")
            reply = tls.recv(4096)
    assert reply.startswith(b"HTTP/1.") and b" 400 " in reply.split(b"\r\n", 1)[0]
    assert b"Traceback" not in reply
    with httpx_client(fortigate) as client:
        assert client.get("monitor/system/status").status_code == 200


def test_error_bodies_are_json_documents_not_python_reprs(api):
    text = api.post("cmdb/firewall/addrgrp", json={"name": "g", "member": ["ghost"]}).text
    body = json.loads(text)
    assert body["error"] == -3 and "'ghost'" in body["cli_error"]
