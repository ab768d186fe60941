"""Runtime hooks that insert an SRN or GRN between an upstream's perception stage and its
reasoner: the contract every adapter follows (contract.py), the registry of adapters
(registry.py) and one adapter per upstream."""
