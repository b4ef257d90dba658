"""Real benchmark loaders and converters; each downloads and caches, or reads a local path."""
