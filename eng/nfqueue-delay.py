#!/usr/bin/env python3
"""Holds every packet netfilter hands to queue QUEUE (iptables -j NFQUEUE) for MILLISECONDS, then lets it go: the
latency of a distant link, for kernels without tc's sch_netem. netns-cluster.sh's `delay` runs it inside a host's
network namespace, where the queue's rules live.

    nfqueue-delay.py QUEUE MILLISECONDS READY_FILE

It speaks nfnetlink_queue over a raw netlink socket (no library needed), asks for packet metadata only, and releases
packets with batch verdicts, which accept every packet up to an id: each packet waits the same time, so they leave in
the order they came. The queue fails open: should it fill, packets pass undelayed rather than being dropped. Once the
queue is bound it writes READY_FILE, so that the caller adds the rules only when someone reads the queue.
"""
import collections
import errno
import os
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
SO_RCVBUFFORCE = 33


def attribute(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def send(sock, kind, queue, attributes, seq, ack):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attributes)
    flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
    sock.send(struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body)
    if ack:
        reply = sock.recv(65536)
        length, reply_type = struct.unpack_from("=IH", reply)
        code = struct.unpack_from("=i", reply, 16)[0] if reply_type == NLMSG_ERROR else 0
        if code != 0:
            sys.exit(f"nfqueue-delay: configuring queue {queue} failed: {os.strerror(-code)}")


def packet_ids(data):
    """The ids of the packets in a buffer of netlink messages."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            at = offset + 20  # the netlink header, then nfgenmsg
            while at + 4 <= offset + length:
                size, attr = struct.unpack_from("=HH", data, at)
                if size < 4:
                    break
                if attr & 0x3FFF == NFQA_PACKET_HDR:
                    yield struct.unpack_from(">I", data, at + 4)[0]
                    break
                at += (size + 3) & ~3
        offset += (length + 3) & ~3


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: nfqueue-delay.py QUEUE MILLISECONDS READY_FILE")
    queue, delay, ready = int(sys.argv[1]), float(sys.argv[2]) / 1000, sys.argv[3]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    sock.bind((0, 0))
    send(sock, NFQNL_MSG_CONFIG, queue, [attribute(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, 0))], 1, ack=True)
    send(sock, NFQNL_MSG_CONFIG, queue, [attribute(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))], 2, ack=True)
    send(sock, NFQNL_MSG_CONFIG, queue, [attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 1 << 16)),
                                         attribute(NFQA_CFG_FLAGS, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN)),
                                         attribute(NFQA_CFG_MASK, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))], 3, ack=True)
    with open(ready, "w") as f:
        f.write("ready\n")
    pending = collections.deque()  # (due time, packet id), in arrival order
    seq = 4
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else None
        readable, _, _ = select.select([sock], [], [], timeout)
        if readable:
            try:
                data = sock.recv(1 << 20)
            except OSError as error:
                # A full socket buffer: the queue fails open, so the kernel let those packets pass undelayed.
                if error.errno != errno.ENOBUFS:
                    raise
                data = b""
            due = time.monotonic() + delay
            pending.extend((due, packet) for packet in packet_ids(data))
        now = time.monotonic()
        last = None
        while pending and pending[0][0] <= now:
            last = pending.popleft()[1]
        if last is not None:
            send(sock, NFQNL_MSG_VERDICT_BATCH, queue, [attribute(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, last))], seq, ack=False)
            seq += 1


if __name__ == "__main__":
    main()
