// Package session defines the one interface the shop's four session modes
// implement, and what they share: the session's data and events, its
// timeouts, the cookies that carry it, and the errors. Each mode's store
// lives in a sub-package named for the technology behind it:
//
//   - memstore: sticky mode, in the memory of the replica that issued the
//     session; the load balancer pins the browser to it;
//   - redisstore: redis mode, in Redis, through gorilla/sessions and
//     rbcervilla/redisstore;
//   - jwtstore: jwt mode, in a signed token the browser carries; no server
//     stores anything;
//   - mcstore: memcached mode, in Memcached, spread over its servers.
//
// The stores that keep sessions on a server (memstore, redisstore,
// mcstore) hand the browser only an ID, through an IDCookie: one path for
// reading, checking, setting and clearing it, with one IDFormat per store.
// Those that keep them outside the replica (redisstore, mcstore) seal
// what they store with package sealed. Package sessiontest is the
// contract every Store passes. Handlers only ever see Store.
package session
