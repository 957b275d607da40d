"""Set-up of the worker processes that decode audio and compute features (feature extraction, transcription)."""

from __future__ import annotations

import os
import select
import threading
import time

# One thread each for the numeric libraries a worker loads (OpenMP, OpenBLAS, MKL): workers run side by side, one a
# core. A library reads them when it loads, so the fork server that workers are forked from gets them too
# (speech.features.start_worker_server): numpy's and scipy's OpenBLAS would otherwise start a thread per core there
# that busy-waits for work that never comes (workers use no BLAS), about 0.2 CPU-s of the job's two cores.
WORKER_THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _exit_when_gone(job_pid: int) -> None:
    try:
        fd = os.pidfd_open(job_pid)  # Linux 5.3+: readable once the process has ended
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # elsewhere: look every second
        while True:
            try:
                os.kill(job_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(1.0)
    select.select([fd], [], [])
    os._exit(1)


def exit_with_job(job_pid: int) -> None:
    """End this worker as soon as the process ``job_pid`` (the job that started its pool) ends, however it ends.

    Pool workers wait on a queue for work: when the job is killed (``kill -9``, SIGTERM, a closed terminal), the
    pool's own shutdown never runs, and nothing else would end them (each holds a few hundred MB). Their parent is
    no help: with the forkserver start method it is the fork server, which lives as long as they do."""
    threading.Thread(target=_exit_when_gone, args=(job_pid,), daemon=True, name="exit-with-job").start()


def init_worker(job_pid: int) -> None:
    """Initializer of every audio/feature worker pool (``initargs=(os.getpid(),)``): one thread each (librosa on
    default threads burns twice the CPU for the same wall time), numba's cache somewhere writable, and no life
    after the job's."""
    os.environ.update(WORKER_THREADS_ENV)
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "numba"))
    exit_with_job(job_pid)
