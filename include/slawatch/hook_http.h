/*
 * hook_http.h - asynchronous HTTP(S) POSTs on the libevent loop: libcurl's
 * multi-socket API (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION and
 * curl_multi_socket_action) with one curl multi handle, so connections are
 * kept alive and reused across requests to the same receiver. Nothing here
 * blocks the loop: name resolution runs in curl's resolver thread.
 * hook_http.c is the only file that includes libcurl (the process-wide
 * init and cleanup are hook_http_global_init/cleanup).
 */
#ifndef SLAWATCH_HOOK_HTTP_H
#define SLAWATCH_HOOK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "slawatch/util.h"

/* Bytes of the response body kept for log lines (printable, raw: the
 * caller scrubs secrets before logging a short prefix of it). */
#define HOOK_HTTP_SNIPPET 512

struct hook_http;

/* libcurl's process-wide set-up, before any thread exists (curl's resolver
 * starts threads). Returns -1 when it fails. */
int hook_http_global_init(void) MUSTCHECK;
void hook_http_global_cleanup(void);

struct hook_http_result {
    long status;           /* HTTP status; 0 when no response came */
    bool transport_error;  /* no response: refused, reset, TLS, DNS... */
    bool timed_out;        /* the per-request timeout passed */
    int64_t retry_after_s; /* Retry-After of the response (seconds, or an
                              HTTP-date as seconds from now), 0 if none,
                              at most a day */
    int64_t elapsed_us;
    char error[256];                 /* curl's message for a transport error */
    char snippet[HOOK_HTTP_SNIPPET]; /* start of the response body,
                                        printable; may echo secrets of
                                        the request: never log it as is */
};

/* Called once per request, from the loop, never from inside
 * hook_http_post(). The callback may post new requests but must not free
 * the client. */
typedef void hook_http_done_fn(void *arg, const struct hook_http_result *res);

/* Returns NULL on failure. curl_global_init() must have been called. */
struct hook_http *hook_http_new(struct event_base *base) MUSTCHECK;
/* Aborts every transfer without calling its callback, and frees. */
void hook_http_free(struct hook_http *http);

/* POSTs `body` (ownership passes to the client, freed after the transfer)
 * to `url` with the given extra header lines ("Name: value"), within
 * timeout_ms in all. Returns 0, or -1 when the request cannot be started
 * (body is then freed and fn is not called). */
int hook_http_post(struct hook_http *http, const char *url,
                   const char *const *headers, size_t nheaders, char *body,
                   size_t body_len, int64_t timeout_ms, hook_http_done_fn *fn,
                   void *arg) MUSTCHECK;

/* Requests in progress. */
size_t hook_http_inflight(const struct hook_http *http);

#endif
