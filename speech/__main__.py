import sys

from speech.cli import main

if __name__ == "__main__":  # worker processes (forkserver/spawn) import this module too
    sys.exit(main())
