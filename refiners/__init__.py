"""The refiner kinds an adapter can insert between an upstream's perception stage and its
reasoner, one module each (``refiners.srn``, ``refiners.grn``, ...), and the registry that
lists them (``refiners.registry.KINDS``): the runners' flags, arm labels, presets,
``--dry-run``, the results' identity and the adapter tests all come from it."""
