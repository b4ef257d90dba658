"""The paper scale: the real models, the R2D-R1 traces, the real benchmarks and model judges."""
