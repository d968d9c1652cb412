# cython: language_level=3
# TCP counters, like `netstat -s` (names in counters.pyx).
cdef enum:
    TCP_SEGMENTS_IN = 0
    TCP_SEGMENTS_OUT
    TCP_BYTES_IN               # payload delivered in order
    TCP_BYTES_OUT              # payload sent, retransmissions included
    TCP_RETRANSMITS_RTO
    TCP_RETRANSMITS_FAST       # triple duplicate ACK (RFC 5681 §3.2)
    TCP_RETRANSMITS_PARTIAL    # NewReno partial ACK (RFC 6582 §3.2 step 5)
    TCP_RETRANSMITS_SACK       # RFC 6675 NextSeg
    TCP_RETRANSMITS_SYN
    TCP_DUPLICATE_SEGMENTS_IN  # wholly old data
    TCP_OUT_OF_ORDER_IN
    TCP_OUT_OF_ORDER_DROPPED   # the connection's reassembly queue full, or nothing new
    TCP_DUPACKS_IN
    TCP_RST_IN
    TCP_RST_OUT
    TCP_ACTIVE_OPENS
    TCP_PASSIVE_OPENS
    TCP_FAILED_CONNECTS
    TCP_ESTABLISHED_RESETS
    TCP_TIMEOUTS               # connections ended by retransmission or keepalive limits
    TCP_BAD_CHECKSUM
    TCP_BAD_HEADER
    TCP_NO_LISTENER            # answered with RST
    TCP_PAWS_DROPPED           # RFC 7323 §5
    TCP_OUT_OF_WINDOW
    TCP_CHALLENGE_ACKS         # RFC 5961
    TCP_CHALLENGE_ACKS_LIMITED
    TCP_SYNCOOKIES_SENT
    TCP_SYNCOOKIES_OK
    TCP_SYNCOOKIES_FAILED
    TCP_LISTEN_OVERFLOWS       # SYN dropped: backlog full, no cookies
    TCP_DELAYED_ACKS
    TCP_WINDOW_PROBES
    TCP_KEEPALIVE_PROBES
    TCP_TIME_WAIT_REUSED       # RFC 6191
    TCP_ZERO_WINDOW_ADVERTISED
    TCP_SACK_RECOVERIES        # RFC 6675 §5 recoveries entered
    TCP_SACK_LOST_RETRANSMITS  # retransmissions found lost in a recovery (recovery.pyx)
    TCP_RETRANSMITS_RESCUE     # RFC 6675 NextSeg rule (4)
    TCP_SACK_BLOCKS_BOGUS      # SACK blocks outside SND.UNA..SND.MAX or inverted, ignored
    TCP_DSACK_BLOCKS_IN        # SACK blocks at or below SND.UNA (RFC 2883 D-SACK)
    TCP_LOSS_PROBES            # tail loss probes (RFC 8985 §7)
    TCP_REASSEMBLY_BUDGET_DROPPED  # out-of-order segment dropped: the layer's budget spent
    TCP_RCVBUF_GROWN           # receive buffer doublings (autotune.pyx)
    TCP_SNDBUF_GROWN           # send buffer growths
    TCP_TIME_WAIT_OVERFLOWS    # closed without TIME-WAIT: time_wait_max reached (Linux's
                               # "time wait bucket table overflow")
    TCP_STAT_COUNT

cdef const char *tcp_stat_name(int i) noexcept
