# cython: language_level=3
# Counters: why a frame was dropped (one per reason, ARCHITECTURE rule 9) and what went
# through. Their names are in counters.pyx.
cdef enum:  # Drop reasons
    DROP_ETH_TRUNCATED = 0
    DROP_ETH_NOT_OUR_MAC      # unicast to another station
    DROP_ETH_MULTICAST        # multicast group we did not join
    DROP_ETH_TYPE             # neither IPv4 nor ARP (IPv6, VLAN, LLDP ...)
    DROP_ETH_SRC_INVALID      # multicast/broadcast source address
    DROP_ARP_MALFORMED
    DROP_ARP_NOT_FOR_US
    DROP_ARP_SRC_INVALID      # sender address zero/broadcast/ours from another MAC
    DROP_IP_TRUNCATED
    DROP_IP_VERSION
    DROP_IP_HEADER_LENGTH
    DROP_IP_TOTAL_LENGTH
    DROP_IP_CHECKSUM
    DROP_IP_TTL_ZERO
    DROP_IP_FRAGMENT          # no reassembly: see net/ipv4 docstring
    DROP_IP_OPTIONS           # malformed options
    DROP_IP_SRC_INVALID       # martian source
    DROP_IP_NOT_FOR_US
    DROP_IP_BROADCAST         # broadcast/multicast to a protocol that does not take it
    DROP_IP_PROTOCOL          # no handler for the protocol
    DROP_ICMP_TRUNCATED
    DROP_ICMP_CHECKSUM
    DROP_ICMP_TYPE            # a type we do not act on
    DROP_ICMP_UNMATCHED_REPLY # echo reply to no ping of ours
    DROP_L4_UNHANDLED         # TCP/UDP before a transport is attached
    DROP_NO_ROUTE
    DROP_ARP_QUEUE_FULL       # waiting for ARP resolution, per-neighbour queue full
    DROP_ARP_UNRESOLVED       # the neighbour never answered
    DROP_ARP_TABLE_FULL
    DROP_TX_BACKLOG_FULL      # the PMD stopped taking frames and our backlog is full
    DROP_NO_MBUF              # mempool empty when building a frame
    DROP_MULTISEG             # a chained mbuf where a flat one is needed
    DROP_IP_TOO_BIG           # a packet over the MTU reached ip_output (a stack bug)
    DROP_ARP_QUEUES_FULL      # waiting for ARP resolution, the link-wide bound reached
    DROP_COUNT


cdef enum:  # Stats
    STAT_RX_FRAMES = 0
    STAT_RX_BYTES
    STAT_TX_FRAMES            # handed to the device
    STAT_TX_BYTES
    STAT_ARP_REQUESTS_IN
    STAT_ARP_REPLIES_IN
    STAT_ARP_REQUESTS_OUT
    STAT_ARP_REPLIES_OUT
    STAT_ARP_GRATUITOUS_OUT
    STAT_IP_DELIVERED
    STAT_IP_OUT
    STAT_IP_OPTIONS_SEEN
    STAT_ICMP_ECHO_REQUESTS_IN
    STAT_ICMP_ECHO_REPLIES_OUT
    STAT_ICMP_ECHO_REQUESTS_OUT
    STAT_ICMP_ECHO_REPLIES_IN
    STAT_ICMP_UNREACH_OUT
    STAT_ICMP_ERRORS_IN
    STAT_LOOPBACK_FRAMES
    STAT_COUNT

cdef const char *drop_name(int reason) noexcept
cdef const char *stat_name(int stat) noexcept
