from tcp_script import *
def test_dbg(ctx):
    c, app = ctx.open_active(iss=1000, irs=5000, peer_window=1000)
    ctx.do(lambda: c.send(bytes(2500)), at=0.2)
    print(ctx.pending); ctx.pending.clear()
    ctx.send(seg("A", 5001, 2001, 0), at=0.25)      # all acknowledged, window closed
    print(ctx.pending, c.info())
    ctx.send(seg("A", 5001, 2001, 3000), at=0.26)   # a pure window update
    print(ctx.pending, c.info())
    ctx.pending.clear()
