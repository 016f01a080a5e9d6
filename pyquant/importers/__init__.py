"""Model importers: source formats -> :class:`pyquant.graph.Graph`."""
