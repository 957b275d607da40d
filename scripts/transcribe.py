#!/usr/bin/env python3
"""Batch transcription: the same job as ``python -m speech transcribe`` (see its --help)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speech.pipelines.transcribe import main

if __name__ == "__main__":
    sys.exit(main())
