/*
 * hook_http.c - HTTP POSTs through libcurl's multi-socket API on the
 * libevent loop (see hook_http.h). Owns the curl multi handle, one libevent
 * event per socket curl asks us to watch, one timer for curl's timeouts and
 * a small pool of easy handles. Must never call a blocking curl function
 * (curl_easy_perform, curl_multi_perform with waits) and never call
 * curl_multi_socket_action from inside a curl callback.
 *
 *   hook_http_post -> curl_multi_add_handle -> timer_cb (0 ms)
 *        curl: CURLMOPT_SOCKETFUNCTION -> sock_cb: event_add(fd, IN/OUT)
 *        loop: fd ready -> event_cb -> curl_multi_socket_action(fd)
 *        loop: timer    -> timer_cb -> curl_multi_socket_action(TIMEOUT)
 *   both -> drain_done -> curl_multi_info_read -> done callback
 */
#define _GNU_SOURCE
#include "slawatch/hook_http.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "slawatch/driver.h"
#include "slawatch/log.h"

#define POOL_MAX 64
#define MAX_CONNECTS 256
/* Response bytes read before the transfer is cut off. The status line is
 * what counts: a longer body is not buffered (only the first
 * HOOK_HTTP_SNIPPET bytes are kept) and not waited for either, so a 2xx
 * with a large or endless body is a success, not a time-out. */
#define MAX_RESPONSE_BYTES (64 << 10)
/* Retry-After beyond this (seconds) is taken as this; deliver_send.c
 * clamps further to the webhook's max_backoff. */
#define RETRY_AFTER_MAX_S 86400
#define USER_AGENT "slawatch/0.1"

struct sock_ctx {
    struct sock_ctx *next, *prev;
    struct event *ev;
    curl_socket_t fd;
};

struct xfer {
    struct xfer *next, *prev; /* active list, or the pool */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    hook_http_done_fn *fn;
    void *arg;
    int64_t started_us;
    size_t received;
    bool cut_off; /* MAX_RESPONSE_BYTES reached: aborted on purpose */
    size_t snippet_len;
    char snippet[HOOK_HTTP_SNIPPET];
    char errbuf[CURL_ERROR_SIZE];
};

struct hook_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer_ev;
    struct xfer *active;
    struct xfer *pool;
    size_t npool;
    size_t inflight;
    struct sock_ctx *socks;
};

static void drain_done(struct hook_http *http);

/* The timer is curl's alone: armed and disarmed only by multi_timer_cb.
 * (It used to be deleted here when `running` came back 0, as in curl's
 * evhiperfifo example; but drain_done() runs the completion callbacks,
 * which post the next requests, and curl arms the timer for those new
 * handles during that very call. Deleting it afterwards left them with no
 * socket and no timer: the sender stopped until some unrelated transfer
 * woke curl up, which in a storm with every slot refilled never came.) */
static void
event_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct hook_http *http = arg;
    int running = 0;
    int action = ((kind & EV_READ) ? CURL_CSELECT_IN : 0) |
                 ((kind & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    CURLMcode rc = curl_multi_socket_action(http->multi, fd, action, &running);
    if (rc != CURLM_OK)
        log_warnx("http: curl_multi_socket_action: %s",
                  curl_multi_strerror(rc));
    drain_done(http);
}

static void
timer_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct hook_http *http = arg;
    int running = 0;
    (void)fd;
    (void)kind;
    CURLMcode rc =
        curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (rc != CURLM_OK)
        log_warnx("http: curl_multi_socket_action: %s",
                  curl_multi_strerror(rc));
    drain_done(http);
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called back in timeout_ms
 * (-1: never). Only arms the timer; the action happens in timer_cb. The
 * only place that arms or deletes http->timer_ev. */
static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct hook_http *http = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(http->timer_ev);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(http->timer_ev, &tv);
    return 0;
}

static void
sock_free(struct hook_http *http, struct sock_ctx *sc)
{
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        http->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    event_free(sc->ev);
    free(sc);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, or stop. */
static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct hook_http *http = userp;
    struct sock_ctx *sc = socketp;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            curl_multi_assign(http->multi, fd, NULL);
            sock_free(http, sc);
        }
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (sc == NULL) {
        sc = calloc(1, sizeof(*sc));
        if (sc == NULL)
            return -1;
        sc->fd = fd;
        sc->ev = event_new(http->base, fd, kind, event_cb, http);
        if (sc->ev == NULL) {
            free(sc);
            return -1;
        }
        sc->next = http->socks;
        if (http->socks)
            http->socks->prev = sc;
        http->socks = sc;
        curl_multi_assign(http->multi, fd, sc);
    } else {
        event_del(sc->ev);
        event_assign(sc->ev, http->base, fd, kind, event_cb, http);
    }
    /* Webhook traffic runs with the deadline timer, at the loop's lowest
     * priority: ten thousand deliveries in flight must not hold a deadline
     * back (and the timer still runs after the reader's replies). */
    event_priority_set(sc->ev, DRIVER_PRIORITIES - 1);
    event_add(sc->ev, NULL);
    return 0;
}

/* Keeps the first printable bytes of the response for log lines and
 * discards the rest; past MAX_RESPONSE_BYTES the transfer is aborted
 * (drain_done then reports the status that came, not an error). */
static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct xfer *x = userp;
    size_t n = size * nmemb;
    x->received += n;
    if (x->received > MAX_RESPONSE_BYTES) {
        x->cut_off = true;
        return 0;
    }
    for (size_t i = 0; i < n && x->snippet_len + 1 < sizeof(x->snippet); i++) {
        unsigned char c = (unsigned char)data[i];
        x->snippet[x->snippet_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    x->snippet[x->snippet_len] = '\0';
    return n;
}

static void
xfer_release(struct hook_http *http, struct xfer *x)
{
    curl_slist_free_all(x->headers);
    free(x->body);
    x->headers = NULL;
    x->body = NULL;
    if (http->npool < POOL_MAX) {
        curl_easy_reset(x->easy);
        x->next = http->pool;
        http->pool = x;
        http->npool++;
    } else {
        curl_easy_cleanup(x->easy);
        free(x);
    }
}

static void
active_unlink(struct hook_http *http, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        http->active = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->next = x->prev = NULL;
}

static void
drain_done(struct hook_http *http)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(http->multi, easy);
        if (x == NULL)
            continue;
        active_unlink(http, x);
        http->inflight--;

        struct hook_http_result res;
        memset(&res, 0, sizeof(res));
        res.elapsed_us = now_mono_us() - x->started_us;
        long status = 0;
        if (code == CURLE_WRITE_ERROR && x->cut_off)
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (code == CURLE_OK || status > 0) {
            /* Retry-After: seconds or an HTTP-date, both parsed by curl
             * (a date as seconds from now); 0 when absent, in the past or
             * unparsable; range-checked here, since a receiver can send
             * any number. */
            curl_off_t retry_after = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
            if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) ==
                    CURLE_OK &&
                retry_after > 0)
                res.retry_after_s = retry_after > RETRY_AFTER_MAX_S
                                        ? RETRY_AFTER_MAX_S
                                        : (int64_t)retry_after;
        } else {
            res.transport_error = true;
            res.timed_out = code == CURLE_OPERATION_TIMEDOUT;
            snprintf(res.error, sizeof(res.error), "%s",
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
        }
        memcpy(res.snippet, x->snippet, x->snippet_len + 1);
        hook_http_done_fn *fn = x->fn;
        void *arg = x->arg;
        xfer_release(http, x);
        fn(arg, &res);
    }
}

struct hook_http *
hook_http_new(struct event_base *base)
{
    struct hook_http *http = calloc(1, sizeof(*http));
    if (http == NULL)
        return NULL;
    http->base = base;
    http->multi = curl_multi_init();
    http->timer_ev = evtimer_new(base, timer_cb, http);
    if (http->timer_ev)
        event_priority_set(http->timer_ev, DRIVER_PRIORITIES - 1);
    if (http->multi == NULL || http->timer_ev == NULL) {
        hook_http_free(http);
        return NULL;
    }
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTS);
    return http;
}

void
hook_http_free(struct hook_http *http)
{
    if (http == NULL)
        return;
    while (http->active) {
        struct xfer *x = http->active;
        active_unlink(http, x);
        curl_multi_remove_handle(http->multi, x->easy);
        curl_slist_free_all(x->headers);
        free(x->body);
        curl_easy_cleanup(x->easy);
        free(x);
    }
    while (http->pool) {
        struct xfer *x = http->pool;
        http->pool = x->next;
        curl_easy_cleanup(x->easy);
        free(x);
    }
    if (http->multi)
        curl_multi_cleanup(http->multi);
    while (http->socks)
        sock_free(http, http->socks);
    if (http->timer_ev)
        event_free(http->timer_ev);
    free(http);
}

size_t
hook_http_inflight(const struct hook_http *http)
{
    return http->inflight;
}

static struct xfer *
xfer_get(struct hook_http *http)
{
    struct xfer *x = http->pool;
    if (x) {
        http->pool = x->next;
        http->npool--;
        CURL *easy = x->easy;
        memset(x, 0, sizeof(*x));
        x->easy = easy;
        return x;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        free(x);
        return NULL;
    }
    return x;
}

int
hook_http_post(struct hook_http *http, const char *url,
               const char *const *headers, size_t nheaders, char *body,
               size_t body_len, int64_t timeout_ms, hook_http_done_fn *fn,
               void *arg)
{
    struct xfer *x = xfer_get(http);
    struct curl_slist *list = NULL;
    bool ok = x != NULL;

    /* Expect: (empty) stops curl from waiting for "100 Continue". */
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Expect:"};
    for (size_t i = 0; ok && i < ARRAY_LEN(fixed) + nheaders; i++) {
        const char *h =
            i < ARRAY_LEN(fixed) ? fixed[i] : headers[i - ARRAY_LEN(fixed)];
        struct curl_slist *next = curl_slist_append(list, h);
        if (next == NULL)
            ok = false;
        else
            list = next;
    }
    if (!ok) {
        curl_slist_free_all(list);
        free(body);
        if (x) {
            curl_easy_cleanup(x->easy);
            free(x);
        }
        return -1;
    }
    x->headers = list;
    x->body = body;
    x->fn = fn;
    x->arg = arg;
    x->started_us = now_mono_us();
    CURL *e = x->easy;
    long t = timeout_ms > 0 && timeout_ms < (int64_t)LONG_MAX ? (long)timeout_ms
                                                              : 5000L;
    CURLcode rc = CURLE_OK;
#define OPT(o, v) (rc = rc != CURLE_OK ? rc : curl_easy_setopt(e, o, v))
    OPT(CURLOPT_URL, url);
    OPT(CURLOPT_PROTOCOLS_STR, "http,https");
    OPT(CURLOPT_NOSIGNAL, 1L);
    OPT(CURLOPT_POST, 1L);
    OPT(CURLOPT_POSTFIELDS, body);
    OPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    OPT(CURLOPT_HTTPHEADER, list);
    OPT(CURLOPT_TIMEOUT_MS, t);
    OPT(CURLOPT_CONNECTTIMEOUT_MS, t);
    OPT(CURLOPT_TCP_KEEPALIVE, 1L);
    OPT(CURLOPT_USERAGENT, USER_AGENT);
    OPT(CURLOPT_WRITEFUNCTION, write_cb);
    OPT(CURLOPT_WRITEDATA, x);
    OPT(CURLOPT_ERRORBUFFER, x->errbuf);
    OPT(CURLOPT_PRIVATE, x);
#undef OPT
    if (rc != CURLE_OK || curl_multi_add_handle(http->multi, e) != CURLM_OK) {
        if (rc != CURLE_OK)
            log_warnx("http: cannot set up a request: %s",
                      curl_easy_strerror(rc));
        xfer_release(http, x);
        return -1;
    }
    x->next = http->active;
    if (http->active)
        http->active->prev = x;
    http->active = x;
    http->inflight++;
    return 0;
}

int
hook_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == 0 ? 0 : -1;
}

void
hook_http_global_cleanup(void)
{
    curl_global_cleanup();
}
