"""Every file of tests/data/broken-scenarios is rejected naming the file, the key and the reason.

The cases of test_scenarios.py are written inline; this corpus lives on disk so that
``mockfgt scenarios check`` runs on exactly the same files (and ``make stress`` counts them).
"""

from __future__ import annotations

import pytest

from run_cli import run_mockfgt
from stress.corpus import CORPUS, broken_files, rejection_problem

CORPUS_FILES = broken_files()


def test_the_corpus_is_there():
    assert len(CORPUS_FILES) >= 40


@pytest.mark.parametrize("broken", CORPUS_FILES, ids=[b.path.stem for b in CORPUS_FILES])
def test_each_broken_file_is_rejected_with_file_key_and_reason(broken):
    assert rejection_problem(broken) is None, rejection_problem(broken)


def test_scenarios_check_rejects_the_whole_corpus():
    result = run_mockfgt("scenarios", "check", str(CORPUS))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(CORPUS_FILES)
    for broken, line in zip(CORPUS_FILES, lines):
        assert line.startswith(f"FAIL {broken.path}: "), line
        assert broken.reason in line, line
