// Package wspark lets the reader of an idle gorilla websocket connection
// wait for the peer with little stack and no read buffer.
//
// A goroutine blocked in gorilla's ReadMessage waits about 1.4 KiB deep
// (NextReader, advanceFrame, bufio, net, poll). Go starts each goroutine
// with the average stack in use at the last GC (adaptivestackstart), so a
// process whose goroutines are mostly such readers starts them at 4 KiB,
// and the GC never shrinks them back (it halves a stack only when less
// than a quarter of it is in use, counting 800 B for runtime calls). With
// Wait at the top of the reader's own function, the reader blocks about
// 0.6 KiB deep; goroutines then start at 2 KiB, and an idle connection
// keeps half the stack.
//
// Use it in three steps:
//
//  1. Upgrade through Buffers.Wrap(w): the Upgrader (whose ReadBufferSize
//     must be 0) gets a hijacked connection, a *Conn, that gorilla reads
//     through a bufio.Reader lent from the pool.
//  2. Before each read, call Wait: it returns the read buffer to the pool
//     while nothing is buffered and blocks reading one byte, which the
//     next read returns first.
//  3. Then call Control, at a message boundary only: it answers the ping
//     and pong frames at the head of the buffer with the connection's
//     own handlers (gorilla would handle them and block again deep in
//     its own frames), and reports whether a frame for gorilla is next.
//
// A message boundary is where gorilla's message reader returned io.EOF. A
// compressed message whose deflate stream ends before its last frame does
// (a client that does not follow RFC 7692) leaves the rest of that frame
// unread: Control then reads it as the next frame's header, and that
// connection alone fails or answers a ping that was not sent.
//
// Read errors are sticky: once the connection's Read failed, every later
// Read returns the same error, so that whatever Wait or Control read
// first, gorilla reports the error as it would have.
//
// A reader that handled frames may have grown its stack (the GC does not
// give it back): start the next Wait on a fresh goroutine, which starts
// at the average.
//
// # Parking: no goroutine per idle connection
//
// On Linux, a connection over plain TCP can wait with no goroutine at
// all: instead of Wait, call Park with a running Poller and the function
// that resumes the reader. Park returns the read buffer to the pool,
// registers the socket in the poller's epoll set (EPOLLIN, EPOLLRDHUP,
// one-shot) and returns; the reader's goroutine ends. The poller's one
// goroutine (Run), itself waiting in the runtime's network poller (the
// epoll set is non-blocking, so no thread blocks in epoll_wait), starts a
// goroutine for each connection that can be read, hung up or failed: it
// takes a buffer, reads what came (keeping an error for gorilla, as Wait
// does) and calls the resume function, which handles the frames with
// Control and gorilla, then parks again. Park returns false, and the
// reader calls Wait, where it cannot park: not Linux, a TLS connection (a
// tls.Conn may hold decrypted bytes its socket no longer shows), a
// poller that does not run or stopped, a closed connection.
//
// While a connection is parked nothing reads, so no read times out by
// itself: Conn keeps its read deadline (SetReadDeadline, SetDeadline) and
// a timer resumes the reader at it, whose read then fails with the
// timeout a blocked read would have returned; a deadline set from another
// goroutine while parked moves the timer. A connection that pings its
// peer should ping from Every, which runs on that same timer: one timer
// per connection, not two. Close, from any goroutine,
// removes the socket from the set before closing it, under the poller's
// lock, so that a socket given the same descriptor number later gets no
// event meant for this one, and resumes a parked reader, which reads the
// close's error. Each arm of the set carries a number, and an event read
// from the set before a Close or re-arm whose number is not the current
// one resumes nothing. When Run's context ends, the set closes and every
// parked reader is resumed (it waits as Wait does from then on, holding
// no read buffer). A connection that parked must be closed with its Close:
// until then the poller's set keeps it, and its socket, reachable.
//
// A parked connection pays, per wake, one epoll_ctl (the re-arm), its
// share of an epoll_wait, and a hop through the poller's goroutine before
// its own starts. A busy connection should not pay it: Linger, called
// first, waits up to a while (DefaultLinger) with the calling goroutine,
// as Wait does but with a read deadline that ends the linger, and reports
// whether bytes came; only a connection idle for that long parks. Await
// does the three in that order; a reader then runs
//
//	if !c.Await(p, resume) {
//		resume() // Control, gorilla; then this again on a fresh goroutine
//	} // else resume runs when bytes come
//
// Linger's own deadline never shows: the connection's read deadline is
// set back after it, an expired read deadline is reported as the read's
// error, and a deadline set meanwhile from another goroutine applies.
package wspark
