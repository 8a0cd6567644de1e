"""The gdb remote protocol's framing: what a debugger (or anything that reached the stub's
socket) sends, split into packets, acknowledgements and interrupts; and escaping, which
must round-trip every payload."""

from kvmpy.gdb.packets import BadPacket, Packet, PacketReader, escape, unescape

MAX_PAYLOAD = 4096


def one_input(data: bytes) -> None:
    reader = PacketReader(MAX_PAYLOAD)
    half = len(data) // 2
    events = reader.feed(data[:half]) + reader.feed(data[half:])  # a packet split across reads
    for event in events:
        if isinstance(event, Packet):
            assert len(event.payload) <= MAX_PAYLOAD * 2, len(event.payload)
        elif isinstance(event, BadPacket):
            assert event.why
    assert unescape(escape(data)) == data
