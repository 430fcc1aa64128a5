"""``mockfgt serve`` as a user runs it: a subprocess on a free port, the printed curl line, signals."""

from __future__ import annotations

import json
import queue
import shlex
import signal
import socket
import subprocess
import threading

import pytest

from deadlines import seconds
from run_cli import as_from_a_terminal, cli_env, mockfgt_command

READY_TIMEOUT = seconds(60)


class Served:
    """A running ``mockfgt serve`` and what it printed up to 'Press Ctrl+C to stop.'."""

    def __init__(self, *args: str, wait: bool = True, command: list[str] | None = None):
        self.process = subprocess.Popen([*(command or mockfgt_command()), "serve", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=cli_env(),
                                        preexec_fn=as_from_a_terminal)
        self._lines: queue.Queue = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, daemon=True)  # the only reader of stdout
        self._pumping.start()
        self.banner = self._read_until("Press Ctrl+C to stop.") if wait else []

    def wait_ready(self) -> Served:
        """For a server started with ``wait=False``: read its banner now."""
        self.banner = self._read_until("Press Ctrl+C to stop.")
        return self

    def _pump(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _read_until(self, marker: str) -> list[str]:
        lines = []
        while True:
            line = self._lines.get(timeout=READY_TIMEOUT)
            if line is None:
                raise AssertionError(f"serve ended early: {lines} {self.process.stderr.read()}")
            lines.append(line)
            if marker in line:
                return lines

    def field(self, label: str) -> str:
        return next(line.split(label, 1)[1].strip() for line in self.banner if line.strip().startswith(label))

    @property
    def port(self) -> int:
        return int(self.field("URL").rsplit(":", 1)[1])

    def curl_line(self) -> list[str]:
        return shlex.split(next(line for line in self.banner if line.strip().startswith("curl ")))

    def stop(self, sig: int) -> tuple[int, str, str]:
        """Send ``sig``; (exit code, what it printed after the banner, stderr)."""
        self.process.send_signal(sig)
        self.process.wait(timeout=seconds(30))
        self._pumping.join(timeout=seconds(30))  # stdout is the pump's: reading it here too races it
        rest = []
        while not self._lines.empty():
            line = self._lines.get()
            if line is not None:
                rest.append(line)
        return self.process.returncode, "\n".join(rest), self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=seconds(30))
        self._pumping.join(timeout=seconds(30))
        self.process.stderr.close()


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(*args: str) -> Served:
        served = Served("--port", "0", "--certs-dir", str(tmp_path / "certs"), *args)
        started.append(served)
        return served

    yield start
    for served in started:
        served.kill()


def run_curl(curl: str, argv: list[str]) -> tuple[int, str]:
    assert argv[0] == "curl"
    result = subprocess.run([curl, "--silent", "--show-error", "-w", "\n%{http_code}", *argv[1:]],
                            capture_output=True, text=True, timeout=seconds(30), env=cli_env())
    assert result.returncode == 0, result.stderr
    body, code = result.stdout.rsplit("\n", 1)
    return int(code), body


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=seconds(5)).close()
    except ConnectionRefusedError:
        return True
    return False


def test_serve_on_a_free_port_prints_a_working_curl_line(serve, curl, tmp_path):
    served = serve()
    assert served.port > 0
    assert served.field("CA bundle") == str((tmp_path / "certs" / "harness-ca.pem").resolve())
    argv = served.curl_line()
    assert argv[-1] == f"https://127.0.0.1:{served.port}/api/v2/monitor/system/status"
    status, body = run_curl(curl, argv)
    assert status == 200
    envelope = json.loads(body)
    assert envelope["status"] == "success" and envelope["version"] == "v7.4.5"


def test_serve_a_fault_scenario_prints_the_agents_view(serve, curl):
    served = serve("--scenario", "token-in-query-string")
    argv = served.curl_line()
    assert "access_token=" in argv[-1]
    assert run_curl(curl, argv)[0] == 401  # what the agent sees, as the banner says
    assert any("A correct client reports: 202001" in line for line in served.banner)


def test_serve_on_ipv6_loopback(serve, curl):
    served = serve("--host", "::1")
    assert served.field("URL") == f"https://[::1]:{served.port}"
    argv = served.curl_line()
    assert argv[-1].startswith(f"https://[::1]:{served.port}/")
    assert run_curl(curl, ["curl", "--globoff", *argv[1:]])[0] == 200


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_stop_serve_cleanly_and_release_the_port(serve, sig):
    served = serve()
    port = served.port
    code, out, err = served.stop(sig)
    assert code == 0, err
    assert "mockfgt: stopped" in out
    assert "Traceback" not in err
    assert port_is_free(port)


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = subprocess.run([*mockfgt_command(), "serve", "--port", str(port), "--certs-dir",
                                 str(tmp_path / "certs")], capture_output=True, text=True, timeout=seconds(60), env=cli_env())
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port 0" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_unknown_scenario_is_a_clear_error(tmp_path):
    result = subprocess.run([*mockfgt_command(), "serve", "--port", "0", "--scenario", "expird-cert",
                             "--certs-dir", str(tmp_path / "certs")], capture_output=True, text=True, timeout=seconds(60),
                            env=cli_env())
    assert result.returncode == 2
    assert "did you mean 'expired-cert'" in result.stderr and "Traceback" not in result.stderr
