"""``python -m craft <stage> --config …``: the ``craft`` command (:mod:`craft.cli`)."""

from craft.cli import main

if __name__ == "__main__":
    main()
