"""Models of upstreams that the project ports instead of pinning a checkout: the circles set
autoencoder of the official SRN code (CUAI/BetterSetRepresentations), whose repository is
not one of the paper's baselines. Below ``adapters/``: an adapter puts a refiner into them
as into a pinned upstream's model."""
