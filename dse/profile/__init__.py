"""Profiles: the measured behaviour of a model on a host CPU.

``format`` (the data model and its JSON) imports nothing heavy; the measuring code that needs
torch lives in its own modules and is imported only by ``dse profile``.
"""
