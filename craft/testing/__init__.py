"""Test helpers shipped with the package (no library module imports them): tiny random-init
checkpoints of the paper's architectures and a tiny guard judge, for offline tests and GPU checks."""
