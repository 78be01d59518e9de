"""Backups: full dumps, oplog slices, the catalog of what is kept, restore, verification, off-site copies.

May import the leaves and replset (the connection); never host/ or cli/.
"""
