"""Run the installed ``mockfgt`` command as a user would: a subprocess with a clean environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from deadlines import seconds

TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def mockfgt_command() -> list[str]:
    """The console script next to this interpreter (what ``pip install`` put there)."""
    script = Path(sys.executable).with_name("mockfgt")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mockfgt.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES and k != "MOCKFGT_SCENARIOS"}
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def run_mockfgt(*args: str, timeout: float = seconds(60), **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*mockfgt_command(), *args], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(**env))


def as_from_a_terminal() -> None:
    """preexec_fn for a process a user starts at a terminal: SIGINT at its default (Ctrl+C stops it).

    A test run started in the background by a script (CI runners, nohup) inherits SIGINT ignored,
    and so would every mockfgt it starts, which then rightly ignores Ctrl+C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def control_auth(harness) -> dict[str, str]:
    """The header every control API call carries: the run's token."""
    return {"Authorization": f"Bearer {harness.control_token}"}
