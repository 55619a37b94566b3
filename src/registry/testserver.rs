//! A tiny HTTP/1.1 server on 127.0.0.1 for the client's unit tests.
