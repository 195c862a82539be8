"""``python -m cqdev.datagen --vehicles N``: the bulk synthetic snapshot (see
:mod:`cqdev.datagen.generate`)."""

import sys

from cqdev.datagen.generate import main

sys.exit(main())
