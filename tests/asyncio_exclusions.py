"""What the asyncio conformance run (tests/asyncio_conformance.py) leaves out, and why.

NOT_RUN: not run in any mode, the baseline included (so they count nowhere), because they
cost minutes and never touch fastloop.
EXCLUDED[mode]: tests that pass on stdlib asyncio and may fail on fastloop in that mode
("all": both modes), each with its reason, which starts with its kind (KINDS):
  "internals"  the test inspects stdlib-private internals of asyncio's own loop;
  "by nature"  the test needs what the userspace stack cannot do by its nature: here, every
               one has a kernel socket as the peer (a thread with a blocking socket,
               test_utils.run_test_server, socket.create_server) on the kernel's 127.0.0.1,
               and the userspace stack's addresses (its interface, and 127/8 in
               stack-loopback mode) are a namespace of their own: the kernel's loopback never
               leaves the kernel, the stack's never leaves the process, so no route joins the
               two (fastloop/loop/routing.py).
tests/test_asyncio_conformance.py fails on an exclusion that names no test, or whose test
passes now. Tests that open TCP/UDP by address with both ends the loop's cross the userspace
stack in stack-loopback mode; the run checks where every such call went.

Keys are test ids relative to `test.test_asyncio.`; `*` matches any run of characters
(fnmatch), so `test_events.*EventLoopTests.x` covers the EPoll, Poll and Select classes.
"""
from fnmatch import fnmatchcase

KINDS = ("internals", "by nature")

GC_DEL = ("an Evil.__del__ calling gc.collect() a hundred times: ~6 s per class, on the "
          "stdlib's private test_utils.TestLoop, never on fastloop")
NOT_RUN = {
    "test_tasks.*.test_task_del_collect": GC_DEL,
    "test_futures.*.test_future_del_collect": GC_DEL,
}

WILDCARD_KERNEL_CLIENT = ("by nature: a blocking kernel socket connects to the kernel's "
                          "127.0.0.1 for a server on the wildcard address, which fastloop "
                          "serves on the userspace stack's addresses (the routing rule): the "
                          "kernel's loopback does not reach them")
WILDCARD_ADDR_IN_USE = ("by nature: expects EADDRINUSE binding the wildcard port a kernel "
                        "socket holds: fastloop binds the wildcard on the userspace stack, "
                        "whose ports are a namespace of their own, so the bind succeeds")
KERNEL_SERVER = ("by nature: the server is a kernel socket (test_utils.run_test_server, a "
                 "thread, or start_server(sock=socket.create_server(...))) on the kernel's "
                 "127.0.0.1, and the client a loop connection to 127.0.0.1, which "
                 "stack-loopback mode serves on the userspace stack: ECONNREFUSED there")
KERNEL_CLIENT = ("by nature: the client is a blocking kernel socket in a thread (tcp_client) "
                 "and the server a loop server on 127.0.0.1, which stack-loopback mode puts "
                 "on the userspace stack: the kernel's loopback cannot reach it, refused")
KERNEL_PORT_IN_USE = ("by nature: expects EADDRINUSE for a local_addr whose port a kernel "
                      "server (test_utils.run_test_server) holds on 127.0.0.1; in "
                      "stack-loopback mode that address is the userspace stack's, whose "
                      "ports are a namespace of their own, so the bind succeeds")
KERNEL_SERVER_REFUSED_LEAK = (
    "by nature: the server is a kernel socket, so the loop's connection to 127.0.0.1 is "
    "refused by the userspace stack in stack-loopback mode instead of timing out in the TLS "
    "handshake; on the refused path asyncio.wait_for's own reference cycle (task -> "
    "exception -> traceback -> wait_for frame) keeps the SSLContext alive until gc, as on "
    "stdlib asyncio to a closed port")

EXCLUDED = {
    "all": {
        "test_events.*EventLoopTests.test_create_server": WILDCARD_KERNEL_CLIENT,
        "test_events.*EventLoopTests.test_create_server_dual_stack": WILDCARD_KERNEL_CLIENT,
        "test_events.*EventLoopTests.test_server_close": WILDCARD_KERNEL_CLIENT,
        "test_events.*EventLoopTests.test_create_server_addr_in_use": WILDCARD_ADDR_IN_USE,
    },
    "kernel": {},
    "stack-loopback": {
        "test_events.*EventLoopTests.test_create_connection": KERNEL_SERVER,
        "test_events.*EventLoopTests.test_create_connection_local_addr": KERNEL_SERVER,
        "test_events.*EventLoopTests.test_create_connection_local_addr_in_use":
            KERNEL_PORT_IN_USE,
        "test_events.*EventLoopTests.test_create_ssl_connection": KERNEL_SERVER,
        "test_streams.StreamTests.test_async_writer_api": KERNEL_SERVER,
        "test_streams.StreamTests.test_async_writer_api_exception_after_close": KERNEL_SERVER,
        "test_streams.StreamTests.test_drain_raises": KERNEL_SERVER,
        "test_streams.StreamTests.test_eof_feed_when_closing_writer": KERNEL_SERVER,
        "test_streams.StreamTests.test_loop_is_closed_resource_warnings": KERNEL_SERVER,
        "test_streams.StreamTests.test_open_connection": KERNEL_SERVER,
        "test_streams.StreamTests.test_open_connection_error": KERNEL_SERVER,
        "test_streams.StreamTests.test_open_connection_no_loop_ssl": KERNEL_SERVER,
        "test_streams.StreamTests.test_start_server": KERNEL_SERVER,
        "test_streams.StreamTests.test_start_tls": KERNEL_SERVER,
        "test_streams.StreamTests.test_unclosed_resource_warnings": KERNEL_SERVER,
        "test_streams.StreamTests.test_wait_closed_on_close": KERNEL_SERVER,
        "test_streams.StreamTests.test_wait_closed_on_close_with_unread_data": KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_create_connection_memory_leak": KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_create_connection_ssl_failed_certificate":
            KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_create_connection_ssl_slow_handshake":
            KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_handshake_timeout": KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_start_tls_client_buf_proto_1": KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_start_tls_client_corrupted_ssl": KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_start_tls_client_reg_proto_1": KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_start_tls_slow_client_cancel": KERNEL_SERVER,
        "test_sslproto.SelectorStartTLSTests.test_start_tls_server_1": KERNEL_CLIENT,
        "test_server.SelectorStartServerTests.test_start_server_1": KERNEL_CLIENT,
        "test_ssl.TestSSL.test_create_connection_memory_leak": KERNEL_SERVER,
        "test_ssl.TestSSL.test_create_connection_ssl_1": KERNEL_SERVER,
        "test_ssl.TestSSL.test_create_connection_ssl_failed_certificate": KERNEL_SERVER,
        "test_ssl.TestSSL.test_create_connection_ssl_slow_handshake": KERNEL_SERVER,
        "test_ssl.TestSSL.test_flush_before_shutdown": KERNEL_SERVER,
        "test_ssl.TestSSL.test_remote_shutdown_receives_trailing_data": KERNEL_SERVER,
        "test_ssl.TestSSL.test_shutdown_cleanly": KERNEL_SERVER,
        "test_ssl.TestSSL.test_shutdown_timeout_handler_leak": KERNEL_SERVER,
        "test_ssl.TestSSL.test_shutdown_timeout_handler_not_set": KERNEL_SERVER,
        "test_ssl.TestSSL.test_ssl_handshake_connection_lost": KERNEL_SERVER,
        "test_ssl.TestSSL.test_ssl_handshake_timeout": KERNEL_SERVER,
        "test_ssl.TestSSL.test_start_tls_client_buf_proto_1": KERNEL_SERVER,
        "test_ssl.TestSSL.test_start_tls_client_corrupted_ssl": KERNEL_SERVER,
        "test_ssl.TestSSL.test_start_tls_client_reg_proto_1": KERNEL_SERVER,
        "test_ssl.TestSSL.test_start_tls_slow_client_cancel": KERNEL_SERVER,
        "test_ssl.TestSSL.test_handshake_timeout_handler_leak": KERNEL_SERVER_REFUSED_LEAK,
        "test_ssl.TestSSL.test_create_server_ssl_1": KERNEL_CLIENT,
        "test_ssl.TestSSL.test_create_server_ssl_over_ssl": KERNEL_CLIENT,
        "test_ssl.TestSSL.test_start_tls_server_1": KERNEL_CLIENT,
    },
}


def matches(test_id, keys):
    """The keys (exact ids or fnmatch patterns) that match test_id."""
    return [k for k in keys if k == test_id or ("*" in k and fnmatchcase(test_id, k))]
