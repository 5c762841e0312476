"""The database connection: reaching MongoDB and the embedded default.

Owns the one ``MongoClient`` per process and URI, the write and read concerns every call
uses, the translation of driver errors into argonfs errors (mongo.py), and the embedded
SecantusDB server that one data directory shares between processes (embedded.py).

May import: argonfs.config, argonfs.errors, pymongo.  Nothing else of argonfs: the
engine and the repository stand on it, it stands on nothing of theirs.
"""
