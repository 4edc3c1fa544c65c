"""The data files (dictionary, aliases, structure, identities, the sources registry, the sample pages and
the demo site), installed as the package `govreports.data` and read with importlib.resources."""
