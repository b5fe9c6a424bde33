"""One entry point per command. Each takes a config object, a dict or an argv list."""
