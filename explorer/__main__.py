"""``python -m explorer``: the same as the ``latent-explorer`` command."""

import sys

from explorer.app import main

sys.exit(main())
