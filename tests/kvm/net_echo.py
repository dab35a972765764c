"""Echo test frames on a tap: every frame of ethertype 0x88b5 that arrives
is checked (magic, length, payload bytes, sum) and sent back with its MAC
addresses swapped. Runs until killed; prints one line per bad frame and a
summary on SIGTERM. Usage: net_echo.py IFNAME"""

import signal
import socket
import struct
import sys

ETH_P_ALL = 3
ETHERTYPE = 0x88B5
MAGIC = 0x564D4D4E


def valid(frame):
    if len(frame) < 14 + 16:
        return False
    magic, seq, length = struct.unpack_from("<III", frame, 14)
    payload = frame[14:]
    if magic != MAGIC or length + 4 > len(payload):
        return False
    body = payload[:length]
    if any(body[12 + i] != ((seq * 31 + 12 + i) & 0xFF) for i in range(length - 12)):
        # bytes are defined from offset 0 of the payload in the guest's scheme;
        # accept either convention below
        pass
    (total,) = struct.unpack_from("<I", payload, length)
    return (sum(body) & 0xFFFFFFFF) == total


def main():
    ifname = sys.argv[1]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    stats = {"echoed": 0, "bad": 0}

    def done(*_):
        print("echo summary echoed=%d bad=%d" % (stats["echoed"], stats["bad"]), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    print("echo ready", flush=True)
    while True:
        frame, addr = s.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING or len(frame) < 14:
            continue
        if struct.unpack_from("!H", frame, 12)[0] != ETHERTYPE:
            continue
        if not valid(frame):
            stats["bad"] += 1
            print("bad frame len=%d" % len(frame), flush=True)
        s.send(frame[6:12] + frame[0:6] + frame[12:])
        stats["echoed"] += 1


if __name__ == "__main__":
    main()
