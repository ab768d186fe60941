"""Runtime compatibility shims that make the pinned upstreams run on today's stack, and
the machinery that checks and imports those upstreams (patches.vendor).

No upstream file is ever edited: shims are modules and attributes installed at import
time, inside patches.vendor.isolated().
"""
