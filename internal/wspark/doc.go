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
package wspark
