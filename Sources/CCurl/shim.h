#ifndef STREAMPROXY_CCURL_SHIM_H
#define STREAMPROXY_CCURL_SHIM_H

#include <curl/curl.h>

// curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic, which Swift cannot
// call. One typed wrapper per argument type keeps every value passed with the type libcurl reads
// (a curl_off_t or a function pointer never travels through a long or a void *).

static inline CURLcode CCurl_easy_setopt_long(CURL *h, CURLoption o, long v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode CCurl_easy_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode CCurl_easy_setopt_string(CURL *h, CURLoption o, const char *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode CCurl_easy_setopt_pointer(CURL *h, CURLoption o, void *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode CCurl_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode CCurl_easy_setopt_write_callback(CURL *h, CURLoption o, curl_write_callback v) {
    return curl_easy_setopt(h, o, v);
}

static inline CURLcode CCurl_easy_setopt_opensocket_callback(CURL *h, CURLoption o, curl_opensocket_callback v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode CCurl_easy_setopt_closesocket_callback(CURL *h, CURLoption o, curl_closesocket_callback v) {
    return curl_easy_setopt(h, o, v);
}

static inline CURLcode CCurl_easy_setopt_resolver_start_callback(CURL *h, CURLoption o, curl_resolver_start_callback v) {
    return curl_easy_setopt(h, o, v);
}

static inline CURLMcode CCurl_multi_setopt_long(CURLM *m, CURLMoption o, long v) {
    return curl_multi_setopt(m, o, v);
}
static inline CURLMcode CCurl_multi_setopt_pointer(CURLM *m, CURLMoption o, void *v) {
    return curl_multi_setopt(m, o, v);
}
static inline CURLMcode CCurl_multi_setopt_socket_callback(CURLM *m, CURLMoption o, curl_socket_callback v) {
    return curl_multi_setopt(m, o, v);
}
static inline CURLMcode CCurl_multi_setopt_timer_callback(CURLM *m, CURLMoption o, curl_multi_timer_callback v) {
    return curl_multi_setopt(m, o, v);
}

static inline CURLcode CCurl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode CCurl_easy_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode CCurl_easy_getinfo_socket(CURL *h, CURLINFO i, curl_socket_t *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode CCurl_easy_getinfo_string(CURL *h, CURLINFO i, char **v) {
    return curl_easy_getinfo(h, i, v);
}

// Macros Swift does not import (or imports with another type).
static const curl_socket_t CCurl_SOCKET_TIMEOUT = CURL_SOCKET_TIMEOUT;
static const curl_socket_t CCurl_SOCKET_BAD = CURL_SOCKET_BAD;
static const size_t CCurl_WRITEFUNC_PAUSE = CURL_WRITEFUNC_PAUSE;
static const int CCurl_PAUSE_RECV = CURLPAUSE_RECV;
static const int CCurl_PAUSE_CONT = CURLPAUSE_CONT;

#endif
