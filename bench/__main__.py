"""``python -m bench``: see bench/cli.py."""

import sys

from bench.cli import main, stop_on_sigterm

stop_on_sigterm()
sys.exit(main())
