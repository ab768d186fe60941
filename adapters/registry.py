"""Every adapter, by upstream name. tests/adapters/test_adapters.py runs its checks on each
entry: registering an adapter here is what gets it tested."""
from adapters import circles, clutrr, cswm, relational_networks
from adapters.contract import Adapter

ADAPTERS: dict[str, Adapter] = {
    adapter.upstream: adapter for adapter in (cswm.ADAPTER, clutrr.ADAPTER, relational_networks.ADAPTER, circles.ADAPTER)
}
