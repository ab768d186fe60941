"""A minimal, faithful stand-in for ``torch_geometric.data.Data`` / ``Batch`` (PyTorch
Geometric 1.x), enough for clutrr-baselines' ``precompute_batches``.

The RN path builds one graph per story (``Data(x, edge_index, edge_attr, y)``) and merges a
batch of them with ``Batch.from_data_list``; only the GAT baselines read the result. The
merge follows PyTorch Geometric 1.x: every attribute is concatenated along its cat
dimension (the last one for ``edge_index``, the first otherwise), ``edge_index`` (any key
containing "index") is offset by the number of nodes of the graphs before it, and
``batch`` [total nodes] maps every node to its graph.
"""
import torch


class Data:
    """One graph: attributes are tensors set by keyword (x [n, F], edge_index [2, e], ...)."""

    def __init__(self, **attributes):
        for key, value in attributes.items():
            if value is not None:
                setattr(self, key, value)

    @property
    def keys(self) -> list[str]:
        return [key for key in self.__dict__ if not key.startswith("_")]

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        setattr(self, key, value)

    def __contains__(self, key) -> bool:
        return key in self.keys

    @property
    def num_nodes(self) -> int:
        for key in ("x", "pos"):
            if key in self:
                return self[key].size(0)
        if "edge_index" in self:
            return int(self.edge_index.max()) + 1 if self.edge_index.numel() else 0
        raise ValueError("cannot tell the number of nodes of a graph without x, pos or edge_index")

    def __cat_dim__(self, key, value) -> int:
        return -1 if "index" in key or key == "face" else 0

    def __inc__(self, key, value) -> int:
        return self.num_nodes if "index" in key or key == "face" else 0

    def apply(self, function, *keys):
        for key in keys or self.keys:
            if torch.is_tensor(self[key]):
                self[key] = function(self[key])
        return self

    def to(self, device, *keys):
        return self.apply(lambda tensor: tensor.to(device), *keys)

    def contiguous(self, *keys):
        return self.apply(lambda tensor: tensor.contiguous(), *keys)

    def __repr__(self) -> str:
        parts = ", ".join(f"{key}={list(self[key].size()) if torch.is_tensor(self[key]) else self[key]}"
                          for key in self.keys)
        return f"{type(self).__name__}({parts})"


class Batch(Data):
    """Graphs merged into one disconnected graph, with ``batch`` [total nodes] -> graph index."""

    @staticmethod
    def from_data_list(data_list):
        keys = []
        for data in data_list:
            keys += [key for key in data.keys if key not in keys]
        batch = Batch()
        columns = {key: [] for key in keys}
        assignment = []
        offset = 0
        for graph, data in enumerate(data_list):
            for key in data.keys:
                value = data[key]
                columns[key].append(value + offset if data.__inc__(key, value) else value)
            num_nodes = data.num_nodes
            assignment.append(torch.full((num_nodes,), graph, dtype=torch.long))
            offset += num_nodes
        for key in keys:
            first = data_list[0][key]
            if torch.is_tensor(first):
                batch[key] = torch.cat(columns[key], dim=data_list[0].__cat_dim__(key, first))
            else:
                batch[key] = columns[key]
        batch.batch = torch.cat(assignment) if assignment else torch.zeros(0, dtype=torch.long)
        return batch.contiguous()

    @property
    def num_graphs(self) -> int:
        return int(self.batch.max()) + 1 if self.batch.numel() else 0
