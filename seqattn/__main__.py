"""``python -m seqattn`` entry point."""
import sys

from seqattn.cli import main

sys.exit(main())
