"""Transport security shared by both services: bearer token and TLS.

* :mod:`imgbench.security.token` (pure, no I/O): the token's format, the
  constant-time check of an ``Authorization: Bearer`` value, what counts as a
  loopback address.
* :mod:`imgbench.security.tls` (reads files): one :class:`~imgbench.security.tls.Tls`
  per process, built once from the TLS settings, hands out the ``ssl.SSLContext``
  (websockets, the HTTP APIs) and the grpcio credentials made from the same
  certificate, key and CA; a bad file is a :class:`~imgbench.errors.ConfigError`
  naming the setting.
* :mod:`imgbench.security.guards`: the three gates (WebSocket handshake, gRPC
  interceptor, HTTP route check), each refusing with the transport's own
  "unauthenticated" answer and counting the refusal.
* :mod:`imgbench.security.certs`: a throw-away CA and certificates
  (``imgbench compare --tls`` without files, and the tests).
"""
