"""Tests of the WebSocket protocol core (kyoukai_h2fast.websocket), sans-IO, both codec twins."""
