"""Test helpers: raw HTTP/2 and HTTP/1.1 clients, the server harness, engine frames, attack and
fuzz clients."""
