"""``python -m hub``: the ``hub`` command line (:mod:`hub.cli`)."""

from hub.cli import main

main()
