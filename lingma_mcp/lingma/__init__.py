"""The Lingma side: framing, JSON-RPC, chat streams, and the supervised process."""
