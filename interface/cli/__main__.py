"""``python -m interface.cli`` runs the ``deals-ledger`` command."""

import sys

from interface.cli.main import main

sys.exit(main())
