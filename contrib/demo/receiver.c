/*
 * receiver.c - slawatch-demo-receiver, the webhook receiver `make run`
 * starts: a tiny HTTP server on loopback that prints one line per
 * notification it receives and answers 200. It shows what a real receiver
 * does with slawatch's formats:
 *
 *   json          checks X-Slawatch-Signature, "sha256=" + hex HMAC-SHA256
 *                 of "<X-Slawatch-Timestamp>.<body>" under the shared secret
 *                 (answers 401 when it does not match), and prints kind,
 *                 ticket, tier, metric and lateness;
 *   slack         prints the text;
 *   alertmanager  prints each alert's name, ticket and whether it resolves.
 *
 * Usage: slawatch-demo-receiver --port-file FILE [--secret-file FILE]
 *        slawatch-demo-receiver --free-port      (prints a free port, exits)
 * It binds 127.0.0.1 on a free port, writes the port to FILE and runs until
 * SIGTERM or SIGINT. Not part of slawatch itself: a demonstration, built
 * with the same libraries (libevent, jansson, OpenSSL).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static char secret[512];
static size_t secret_len;
static unsigned long received;

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
    va_list ap;
    printf("receiver: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Whether sig is "sha256=" + hex HMAC-SHA256(secret, ts "." body). */
static int
signature_ok(const char *sig, const char *ts, const char *body, size_t len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char want[7 + 2 * EVP_MAX_MD_SIZE + 1];
    if (sig == NULL || ts == NULL)
        return 0;
    size_t tlen = strlen(ts);
    char *msg = malloc(tlen + 1 + len);
    if (msg == NULL)
        return 0;
    memcpy(msg, ts, tlen);
    msg[tlen] = '.';
    memcpy(msg + tlen + 1, body, len);
    HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)msg, tlen + 1 + len, mac,
         &maclen);
    free(msg);
    memcpy(want, "sha256=", 7);
    for (unsigned i = 0; i < maclen; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    return strlen(sig) == strlen(want) && CRYPTO_memcmp(sig, want, strlen(want)) == 0;
}

static const char *
str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* Returns the HTTP status to answer. */
static int
handle(const char *path, struct evkeyvalq *hdrs, const char *body, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(body, len, 0, &err);
    int status = 200;
    if (root == NULL) {
        say("POST %s: not JSON (%s)", path, err.text);
        return 400;
    }
    if (json_is_array(root)) { /* alertmanager: /api/v2/alerts */
        size_t i;
        json_t *a;
        json_array_foreach(root, i, a) {
            json_t *labels = json_object_get(a, "labels");
            const char *ends = str(a, "endsAt");
            say("POST %s (alertmanager) %s ticket %s tier %s %s%s", path, str(labels, "alertname"),
                str(labels, "ticket"), str(labels, "tier"), str(labels, "metric"),
                strcmp(ends, "-") ? " (resolved)" : "");
        }
    } else if (json_object_get(root, "text")) { /* slack */
        say("POST %s (slack) \"%s\"", path, str(root, "text"));
    } else { /* json */
        const char *sig = evhttp_find_header(hdrs, "X-Slawatch-Signature");
        const char *ts = evhttp_find_header(hdrs, "X-Slawatch-Timestamp");
        const char *check = "unsigned";
        if (secret_len > 0) {
            check = signature_ok(sig, ts, body, len) ? "signature ok" : "signature BAD";
            if (strcmp(check, "signature BAD") == 0)
                status = 401;
        }
        json_t *late = json_object_get(root, "late_ms");
        say("POST %s (json) %s ticket %s tier %s %s, late_ms %lld; %s; delivery %.12s", path,
            str(root, "kind"), str(root, "ticket"), str(root, "tier"), str(root, "metric"),
            late ? (long long)json_integer_value(late) : 0LL, check, str(root, "delivery"));
    }
    json_decref(root);
    return status;
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    int status = 400;
    if (body && evbuffer_copyout(in, body, len) == (ev_ssize_t)len) {
        body[len] = '\0';
        const char *uri = evhttp_request_get_uri(req);
        received++;
        status = evhttp_request_get_command(req) == EVHTTP_REQ_POST
                     ? handle(uri, evhttp_request_get_input_headers(req), body, len)
                     : 405;
    }
    free(body);
    struct evbuffer *out = evbuffer_new();
    if (out)
        evbuffer_add_printf(out, status == 200 ? "ok\n" : "refused\n");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Refused", out);
    if (out)
        evbuffer_free(out);
}

static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static int
free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    socklen_t alen = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int
main(int argc, char **argv)
{
    const char *port_file = NULL, *secret_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--free-port") == 0) {
            int p = free_port();
            if (p < 0)
                return 1;
            printf("%d\n", p);
            return 0;
        } else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else if (strcmp(argv[i], "--secret-file") == 0 && i + 1 < argc)
            secret_file = argv[++i];
        else {
            fprintf(stderr, "usage: %s --port-file FILE [--secret-file FILE] | --free-port\n",
                    argv[0]);
            return 64;
        }
    }
    if (port_file == NULL) {
        fprintf(stderr, "%s: --port-file is required\n", argv[0]);
        return 64;
    }
    if (secret_file) {
        FILE *f = fopen(secret_file, "r");
        if (f == NULL) {
            perror(secret_file);
            return 1;
        }
        secret_len = fread(secret, 1, sizeof(secret) - 1, f);
        fclose(f);
        if (secret_len > 0 && secret[secret_len - 1] == '\n')
            secret_len--; /* as slawatchd reads secret files */
    }
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct evhttp_bound_socket *sock =
        http ? evhttp_bind_socket_with_handle(http, "127.0.0.1", 0) : NULL;
    if (sock == NULL) {
        fprintf(stderr, "%s: cannot listen on 127.0.0.1\n", argv[0]);
        return 1;
    }
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&a, &alen);
    evhttp_set_gencb(http, request_cb, NULL);
    struct event *term = evsignal_new(base, SIGTERM, stop_cb, base);
    struct event *intr = evsignal_new(base, SIGINT, stop_cb, base);
    evsignal_add(term, NULL);
    evsignal_add(intr, NULL);
    FILE *pf = fopen(port_file, "w");
    if (pf == NULL) {
        perror(port_file);
        return 1;
    }
    fprintf(pf, "%d\n", ntohs(a.sin_port));
    fclose(pf);
    say("listening on 127.0.0.1:%d%s", ntohs(a.sin_port),
        secret_len ? ", checking json signatures" : "");
    event_base_dispatch(base);
    say("stopping after %lu requests", received);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
