"""``python -m microvae`` is the ``microvae`` command."""
import sys

from .cli import main

sys.exit(main())
