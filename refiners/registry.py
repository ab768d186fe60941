"""Every refiner kind, by name: registering a kind here gives it its flag and arm in every
runner whose adapter can take it, its label, its presets' ``refiner:`` section and its
cases in tests/adapters/test_adapters.py."""
from refiners import grn, slot_attention, srn
from refiners.kind import Kind

KINDS: dict[str, Kind] = {kind.name: kind for kind in (srn.KIND, grn.KIND, slot_attention.KIND)}
