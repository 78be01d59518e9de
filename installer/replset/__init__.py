"""The replica set: one connection to it, the documents sent, what its answers mean, and the operations.

Layer rule: replset/ imports only the leaves (errors, paths, ...) and itself;
never host/, backup/ or cli/.
"""
