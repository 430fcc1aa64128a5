"""The corpus of broken scenario files in ``tests/data/broken-scenarios``.

Each file starts with two comment lines saying what its rejection must name::

    # key: tls.versions          (the dotted key, or '-' for a file that is not TOML at all)
    # reason: must not be empty  (words the message must contain)

Every file must be rejected, from Python and from ``mockfgt scenarios check``, with a message that
starts with the file's own path, then the key, then the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mockfgt import ScenarioError, scenario as engine

CORPUS = Path(__file__).resolve().parents[1] / "data" / "broken-scenarios"


@dataclass(frozen=True)
class BrokenFile:
    path: Path
    key: str
    reason: str

    @classmethod
    def read(cls, path: Path) -> BrokenFile:
        head = path.read_bytes().split(b"\n", 2)
        key = head[0].decode().removeprefix("# key:").strip()
        reason = head[1].decode().removeprefix("# reason:").strip()
        return cls(path, "" if key == "-" else key, reason)


def broken_files() -> list[BrokenFile]:
    return [BrokenFile.read(p) for p in sorted(CORPUS.glob("*.toml"))]


def rejection_problem(broken: BrokenFile) -> str | None:
    """None when loading the file fails as its header says; otherwise what went wrong."""
    try:
        engine.load(broken.path)
    except ScenarioError as exc:
        message = str(exc)
        if exc.source != str(broken.path) or not message.startswith(f"{broken.path}: "):
            return f"the error names {exc.source!r}, not the file: {message}"
        if exc.key != broken.key:
            return f"the error names key {exc.key!r}, not {broken.key!r}: {message}"
        if broken.reason not in message:
            return f"the message lacks {broken.reason!r}: {message}"
        return None
    except Exception as exc:  # anything but a ScenarioError is a crash of the loader
        return f"{type(exc).__name__} instead of a ScenarioError: {exc}"
    return "accepted"
