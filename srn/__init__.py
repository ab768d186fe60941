"""Set Refiner Networks and Graph Refiner Networks (Huang, He, Zhang et al., NeurIPS 2020).

Shapes are batch-first: sets are [B, N, D], masks [B, N] bool (True = real element),
graphs' edge weights [B, N, N], embeddings [B, E].
"""
from srn.fspool import FSPool
from srn.graph_encoder import GraphEncoder, complete_graph
from srn.graph_refiner import GraphRefiner
from srn.finite_checks import InnerLossNotFinite, InputNotFinite
from srn.set_encoder import SetEncoder
from srn.set_refiner import SetRefiner

__all__ = [
    "FSPool",
    "SetEncoder",
    "SetRefiner",
    "GraphEncoder",
    "GraphRefiner",
    "InnerLossNotFinite",
    "InputNotFinite",
    "complete_graph",
]
