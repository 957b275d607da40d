"""speech.cli: the one entry point's job runner."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from speech.cli import run_job


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_ends_a_job_as_ctrl_c_does(capsys):
    cleaned = []

    def job() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # never reached in full: the signal unwinds the job
            return 0
        finally:
            cleaned.append(True)  # a job's with-blocks (pools, temp files) close on the way out

    before = signal.getsignal(signal.SIGTERM)
    assert run_job(job) == 143 and cleaned == [True]
    assert capsys.readouterr().err == "terminated\n"
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


def test_a_user_error_is_one_line_and_exit_2(capsys):
    from speech.errors import SpeechError

    def job() -> int:
        raise SpeechError("no audio input found")

    assert run_job(job) == 2 and capsys.readouterr().err == "error: no audio input found\n"
