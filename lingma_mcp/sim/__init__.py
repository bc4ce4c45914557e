"""A runnable stand-in for the Lingma binary, for tests and first tries."""
