#ifndef STREAMPROXY_CEVENT_SHIM_H
#define STREAMPROXY_CEVENT_SHIM_H

// libevent's event-config.h defines _GNU_SOURCE; the libc headers must come first so that every
// module sees one fd_set layout.
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/http.h>
// Declares `struct evhttp_request`, so that Swift sees typed request pointers.
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <event2/util.h>
// evdns: the per-loop resolver (EventLoop/DNSResolver.swift).
#include <event2/dns.h>

// Constant macros that Swift imports with the wrong integer type, restated with the type the
// calls take.
static const short CEvent_EV_TIMEOUT = EV_TIMEOUT;
static const short CEvent_EV_READ = EV_READ;
static const short CEvent_EV_WRITE = EV_WRITE;
static const short CEvent_EV_SIGNAL = EV_SIGNAL;
static const short CEvent_EV_PERSIST = EV_PERSIST;

#endif
