"""The imgbench receiver: one asyncio process serving WebSocket, gRPC and HTTP.

Both transports are thin adapters over :class:`receiver.core.ReceiverCore`, so
every image goes through the same validation, measurement and bookkeeping
whichever way it arrived.
"""
