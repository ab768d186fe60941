"""Runtime hooks that insert an SRN or GRN between an upstream's perception stage and its reasoner."""
