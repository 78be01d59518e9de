"""Server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) for the stand-in mongod.

pymongo checks the server's signature, so a stand-in that only said "ok"
would fail authentication; this one stores what mongod stores (salt,
iteration count, StoredKey, ServerKey), never the password, and rejects
a wrong proof the way mongod does (code 18).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 15000  # mongod's default scramSHA256IterationCount


class AuthFailed(Exception):
    pass


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def credentials(password, salt=None, iterations=ITERATIONS):
    """What mongod keeps in admin.system.users for SCRAM-SHA-256."""
    salt = salt or os.urandom(28)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return {
        "salt": salt,
        "iterations": iterations,
        "stored_key": hashlib.sha256(client_key).digest(),
        "server_key": _hmac(salted, b"Server Key"),
    }


def _attrs(text):
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        out[key] = value
    return out


def _unescape(name):
    return name.replace("=2C", ",").replace("=3D", "=")


class Conversation:
    """One saslStart/saslContinue exchange; `lookup(user)` returns credentials or None."""

    def __init__(self, lookup):
        self.lookup = lookup
        self.user = None
        self.done = False

    def start(self, payload):
        text = bytes(payload).decode()
        if not text.startswith("n,"):
            raise AuthFailed("channel binding is not supported")
        self.client_first_bare = text.split(",", 2)[2]
        attrs = _attrs(self.client_first_bare)
        self.user = _unescape(attrs["n"])
        # An unknown user still gets a challenge: mongod does not reveal who exists.
        self.creds = self.lookup(self.user) or credentials(os.urandom(16).hex())
        self.known = self.lookup(self.user) is not None
        self.nonce = attrs["r"] + base64.b64encode(os.urandom(24)).decode()
        self.server_first = f"r={self.nonce},s={base64.b64encode(self.creds['salt']).decode()},i={self.creds['iterations']}"
        return self.server_first.encode()

    def step(self, payload):
        text = bytes(payload).decode()
        if self.done:
            return b""
        without_proof, _, proof = text.rpartition(",p=")
        attrs = _attrs(without_proof)
        if attrs.get("r") != self.nonce:
            raise AuthFailed("nonce mismatch")
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        signature = _hmac(self.creds["stored_key"], auth_message)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        if not self.known or hashlib.sha256(client_key).digest() != self.creds["stored_key"]:
            raise AuthFailed("wrong password")
        self.done = True
        return b"v=" + base64.b64encode(_hmac(self.creds["server_key"], auth_message))
