"""``python -m craft <stage> --config …``: the ``craft`` command (:mod:`craft.cli`)."""

from craft.cli import console

if __name__ == "__main__":
    raise SystemExit(console())
