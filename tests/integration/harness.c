/*
 * harness.c - see harness.h. Starts real processes and talks real Redis;
 * never mocks them. Loopback only.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>

int64_t
h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
h_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void
h_sleep_until(int64_t wall_ms)
{
    int64_t d = wall_ms - h_now_ms();
    if (d > 0)
        h_sleep_ms((int)d);
}

const char *
h_build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { 0 };
    socklen_t len = sizeof(a);
    if (fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

redisContext *
h_connect(int port)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Forks and execs redis-server for r (r->pid set); does not wait. */
static int
redis_fork(struct h_redis *r)
{
    char port[16], logf[300];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(logf, sizeof(logf), "%s/redis.log", r->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char *argv[32];
        int n = 0;
        argv[n++] = "redis-server";
        argv[n++] = "--port";
        argv[n++] = port;
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--dir";
        argv[n++] = r->dir;
        argv[n++] = "--logfile";
        argv[n++] = logf;
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--daemonize";
        argv[n++] = "no";
        char *extra = strdup(r->extra);
        for (char *tok = strtok(extra, " "); tok && n < 30; tok = strtok(NULL, " "))
            argv[n++] = tok;
        argv[n] = NULL;
        /* Dies with the test, even when the test crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execvp("redis-server", argv);
        _exit(127);
    }
    r->pid = pid;
    return 0;
}

static int
redis_spawn(struct h_redis *r)
{
    if (redis_fork(r) < 0)
        return -1;
    pid_t pid = r->pid;
    for (int i = 0; i < 200; i++) {
        redisContext *c = h_connect(r->port);
        if (c) {
            redisReply *rep = redisCommand(c, "PING");
            int ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            r->pid = 0;
            return -1;
        }
        h_sleep_ms(25);
    }
    return -1;
}

int
h_redis_start(struct h_redis *r, const char *extra)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/slawatch-test-XXXXXX");
    if (mkdtemp(r->dir) == NULL)
        return -1;
    snprintf(r->extra, sizeof(r->extra), "%s", extra ? extra : "");
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = free_port();
        if (r->port > 0 && redis_spawn(r) == 0)
            return 0;
    }
    return -1;
}

void
h_redis_kill(struct h_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

int
h_redis_restart(struct h_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    return redis_spawn(r);
}

void
h_redis_stop(struct h_redis *r)
{
    char cmd[300];
    h_redis_kill(r);
    if (r->dir[0] && getenv("SLAWATCH_KEEP_TMP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", r->dir);
    }
}

char *
h_write_file(const char *dir, const char *name, const char *content)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        free(path);
        return NULL;
    }
    fputs(content, f);
    fclose(f);
    return path;
}

pid_t
h_daemon_start(const char *cfg, const char *dir)
{
    char bin[300], logf[300];
    snprintf(bin, sizeof(bin), "%s/slawatchd", h_build_dir());
    snprintf(logf, sizeof(logf), "%s/daemon.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        unsetenv("NOTIFY_SOCKET");
        unsetenv("JOURNAL_STREAM");
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test */
        execl(bin, "slawatchd", "-c", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int
h_daemon_stop(pid_t pid, int sig, int timeout_ms)
{
    int status;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        h_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

void
h_dump_file(const char *dir, const char *name)
{
    char path[300], line[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

bool
h_wait_group(redisContext *c, const char *stream, const char *group,
             int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        redisReply *r = redisCommand(c, "XINFO GROUPS %s", stream);
        bool ok = false;
        if (r && r->type == REDIS_REPLY_ARRAY) {
            for (size_t g = 0; g < r->elements && !ok; g++) {
                redisReply *grp = r->element[g];
                for (size_t i = 0; i + 1 < grp->elements; i += 2)
                    if (strcmp(grp->element[i]->str, "name") == 0 &&
                        strcmp(grp->element[i + 1]->str, group) == 0)
                        ok = true;
            }
        }
        if (r)
            freeReplyObject(r);
        if (ok)
            return true;
        h_sleep_ms(20);
    }
    return false;
}

int
h_xadd(redisContext *c, const char *stream, char *id, size_t idlen, ...)
{
    const char *argv[80];
    int argc = 0;
    va_list ap;
    argv[argc++] = "XADD";
    argv[argc++] = stream;
    argv[argc++] = "*";
    va_start(ap, idlen);
    for (const char *s = va_arg(ap, const char *); s && argc < 80;
         s = va_arg(ap, const char *))
        argv[argc++] = s;
    va_end(ap);
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        if (id)
            snprintf(id, idlen, "%s", r->str);
        rc = 0;
    }
    if (r)
        freeReplyObject(r);
    return rc;
}

int
h_xrange(redisContext *c, const char *stream, struct h_entry **out)
{
    redisReply *r = redisCommand(c, "XRANGE %s - +", stream);
    *out = NULL;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    int n = (int)r->elements;
    struct h_entry *e = calloc((size_t)n + 1, sizeof(*e));
    for (int i = 0; i < n; i++) {
        redisReply *ent = r->element[i];
        snprintf(e[i].id, sizeof(e[i].id), "%s", ent->element[0]->str);
        redisReply *kv = ent->element[1];
        for (size_t k = 0; k + 1 < kv->elements && e[i].n < H_ENTRY_FIELDS; k += 2) {
            e[i].field[e[i].n] = strndup(kv->element[k]->str, kv->element[k]->len);
            e[i].value[e[i].n] = strndup(kv->element[k + 1]->str, kv->element[k + 1]->len);
            e[i].n++;
        }
    }
    freeReplyObject(r);
    *out = e;
    return n;
}

void
h_entries_free(struct h_entry *e, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < e[i].n; k++) {
            free(e[i].field[k]);
            free(e[i].value[k]);
        }
    free(e);
}

const char *
h_field(const struct h_entry *e, const char *name)
{
    for (int k = 0; k < e->n; k++)
        if (strcmp(e->field[k], name) == 0)
            return e->value[k];
    return NULL;
}

bool
h_get_str(redisContext *c, const char *key, char *buf, size_t len)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    bool ok = r && r->type == REDIS_REPLY_STRING;
    if (ok)
        snprintf(buf, len, "%s", r->str);
    if (r)
        freeReplyObject(r);
    return ok;
}

bool
h_wait_str(redisContext *c, const char *key, const char *want, int timeout_ms)
{
    char got[128];
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        bool have = h_get_str(c, key, got, sizeof(got));
        if (want == NULL ? !have : have && strcmp(got, want) == 0)
            return true;
        h_sleep_ms(50);
    }
    return false;
}

bool
h_get_int(redisContext *c, const char *key, long long *out)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    bool ok = r && r->type == REDIS_REPLY_STRING;
    if (ok)
        *out = strtoll(r->str, NULL, 10);
    if (r)
        freeReplyObject(r);
    return ok;
}

bool
h_wait_int(redisContext *c, const char *key, long long want, int timeout_ms)
{
    long long v;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (h_get_int(c, key, &v) && v == want)
            return true;
        h_sleep_ms(50);
    }
    return false;
}

bool
h_wait_xlen(redisContext *c, const char *stream, long long n, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        redisReply *r = redisCommand(c, "XLEN %s", stream);
        bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= n;
        if (r)
            freeReplyObject(r);
        if (ok)
            return true;
        h_sleep_ms(20);
    }
    return false;
}

long long
h_xpending_count(redisContext *c, const char *stream, const char *group)
{
    redisReply *r = redisCommand(c, "XPENDING %s %s", stream, group);
    long long n = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        n = r->element[0]->integer;
    if (r)
        freeReplyObject(r);
    return n;
}

long long
h_hlen(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "HLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

bool
h_wait_hlen(redisContext *c, const char *key, long long want, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (h_hlen(c, key) == want)
            return true;
        h_sleep_ms(20);
    }
    return false;
}

int
h_count_lines(const char *dir, const char *name, const char *needle)
{
    char path[600], line[4096];
    int n = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

int
h_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc < 0)
        fprintf(stderr, "redis command '%s' failed: %s\n", fmt,
                r ? r->str : c->errstr);
    if (r)
        freeReplyObject(r);
    return rc;
}

int
h_redis_restart_nowait(struct h_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    if (redis_fork(r) < 0)
        return -1;
    for (int i = 0; i < 400; i++) {
        redisContext *c = h_connect(r->port);
        if (c) {
            redisFree(c);
            return 0;
        }
        h_sleep_ms(10);
    }
    return -1;
}

long
h_peak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* ---- loopback HTTP receiver --------------------------------------------- */


struct h_http_srv {
    pthread_t thread;
    pthread_mutex_t mu;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;            /* polls `stop` from the loop's thread */
    int stop;
    h_http_script_fn *script;
    void *arg;
    bool record;
    struct h_req *reqs;
    int n, cap;
    int count;
};

static void
h_copy_header(struct evkeyvalq *hdrs, const char *name, char *dst, size_t size)
{
    const char *v = evhttp_find_header(hdrs, name);
    snprintf(dst, size, "%s", v ? v : "");
}

static void
h_http_cb(struct evhttp_request *req, void *arg)
{
    struct h_http_srv *s = arg;
    struct h_req r;
    memset(&r, 0, sizeof(r));
    const char *uri = evhttp_request_get_uri(req);
    snprintf(r.path, sizeof(r.path), "%s", uri ? uri : "");
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
    h_copy_header(hdrs, "X-Slawatch-Delivery", r.delivery, sizeof(r.delivery));
    h_copy_header(hdrs, "X-Slawatch-Timestamp", r.timestamp, sizeof(r.timestamp));
    h_copy_header(hdrs, "X-Slawatch-Signature", r.signature, sizeof(r.signature));
    h_copy_header(hdrs, "Content-Type", r.content_type, sizeof(r.content_type));
    r.at_ms = h_now_ms();

    pthread_mutex_lock(&s->mu);
    s->count++;
    r.attempt = 1;
    if (s->record)
        for (int i = 0; i < s->n; i++)
            if (strcmp(s->reqs[i].path, r.path) == 0 &&
                strcmp(s->reqs[i].delivery, r.delivery) == 0)
                r.attempt++;
    r.status = s->script ? s->script(s->arg, r.path, r.delivery, r.attempt) : 200;
    if (s->record) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        r.body_len = evbuffer_get_length(in);
        r.body = malloc(r.body_len + 1);
        if (r.body) {
            evbuffer_copyout(in, r.body, r.body_len);
            r.body[r.body_len] = '\0';
        }
        if (s->n == s->cap) {
            int cap = s->cap ? s->cap * 2 : 256;
            struct h_req *v = realloc(s->reqs, (size_t)cap * sizeof(*v));
            if (v) {
                s->reqs = v;
                s->cap = cap;
            }
        }
        if (s->n < s->cap)
            s->reqs[s->n++] = r;
        else
            free(r.body);
    }
    int status = r.status;
    pthread_mutex_unlock(&s->mu);
    if (status == 0)
        return; /* never answered: the client times out */
    struct evbuffer *out = evbuffer_new();
    if (out)
        evbuffer_add_printf(out, "{\"status\":%d}", status);
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Scripted", out);
    if (out)
        evbuffer_free(out);
}

static void
h_http_tick(evutil_socket_t fd, short what, void *arg)
{
    struct h_http_srv *s = arg;
    (void)fd;
    (void)what;
    if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST))
        event_base_loopbreak(s->base);
}

static void *
h_http_thread(void *arg)
{
    struct h_http_srv *s = arg;
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int http_start(struct h_http *h, int want_port, h_http_script_fn *script,
                      void *arg, bool record);

int
h_http_start(struct h_http *h, h_http_script_fn *script, void *arg, bool record)
{
    return http_start(h, 0, script, arg, record);
}

int
h_http_start_on(struct h_http *h, int port, h_http_script_fn *script, void *arg,
                bool record)
{
    return http_start(h, port, script, arg, record);
}

static int
http_start(struct h_http *h, int want_port, h_http_script_fn *script, void *arg,
           bool record)
{
    memset(h, 0, sizeof(*h));
    struct h_http_srv *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    pthread_mutex_init(&s->mu, NULL);
    s->script = script;
    s->arg = arg;
    s->record = record;
    s->base = event_base_new();
    s->http = s->base ? evhttp_new(s->base) : NULL;
    if (s->http == NULL)
        goto fail;
    for (int attempt = 0; attempt < 10 && h->port == 0; attempt++) {
        int port = want_port ? want_port : free_port();
        if (want_port && attempt)
            h_sleep_ms(100); /* the port may still be held for a moment */
        if (port > 0 && evhttp_bind_socket(s->http, "127.0.0.1", (ev_uint16_t)port) == 0)
            h->port = port;
    }
    if (h->port == 0)
        goto fail;
    evhttp_set_gencb(s->http, h_http_cb, s);
    evhttp_set_timeout(s->http, 30);
    s->tick = event_new(s->base, -1, EV_PERSIST, h_http_tick, s);
    struct timeval tv = { 0, 50000 };
    if (s->tick == NULL || event_add(s->tick, &tv) < 0)
        goto fail;
    if (pthread_create(&s->thread, NULL, h_http_thread, s) != 0)
        goto fail;
    h->srv = s;
    return 0;
fail:
    if (s->tick)
        event_free(s->tick);
    if (s->http)
        evhttp_free(s->http);
    if (s->base)
        event_base_free(s->base);
    free(s);
    return -1;
}

void
h_http_stop(struct h_http *h)
{
    struct h_http_srv *s = h->srv;
    if (s == NULL)
        return;
    /* loopbreak from this thread would race with the loop's start. */
    __atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(s->thread, NULL);
    event_free(s->tick);
    evhttp_free(s->http);
    event_base_free(s->base);
    for (int i = 0; i < s->n; i++)
        free(s->reqs[i].body);
    free(s->reqs);
    pthread_mutex_destroy(&s->mu);
    free(s);
    h->srv = NULL;
}

void
h_http_set_script(struct h_http *h, h_http_script_fn *script, void *arg)
{
    pthread_mutex_lock(&h->srv->mu);
    h->srv->script = script;
    h->srv->arg = arg;
    pthread_mutex_unlock(&h->srv->mu);
}

int
h_http_count(struct h_http *h, const char *path)
{
    struct h_http_srv *s = h->srv;
    int n = 0;
    pthread_mutex_lock(&s->mu);
    if (path == NULL)
        n = s->count;
    else
        for (int i = 0; i < s->n; i++)
            n += strcmp(s->reqs[i].path, path) == 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool
h_http_wait(struct h_http *h, const char *path, int n, int timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    do {
        if (h_http_count(h, path) >= n)
            return true;
        h_sleep_ms(10);
    } while (h_now_ms() < end);
    return h_http_count(h, path) >= n;
}

int
h_http_copy(struct h_http *h, struct h_req **out)
{
    struct h_http_srv *s = h->srv;
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    struct h_req *v = calloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; v && i < n; i++) {
        v[i] = s->reqs[i];
        v[i].body = s->reqs[i].body ? strdup(s->reqs[i].body) : NULL;
    }
    pthread_mutex_unlock(&s->mu);
    *out = v;
    return v ? n : 0;
}

void
h_http_free_copy(struct h_req *reqs, int n)
{
    for (int i = 0; reqs && i < n; i++)
        free(reqs[i].body);
    free(reqs);
}

/* ---- a daemon with webhooks ---------------------------------------------- */

char *
h_subst_ports(const char *text, int redis_port, int http_port)
{
    size_t cap = strlen(text) * 2 + 64, used = 0;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    for (const char *p = text; *p;) {
        char num[16];
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "@REDIS@", 7) == 0) {
            snprintf(num, sizeof(num), "%d", redis_port);
            rep = num;
            skip = 7;
        } else if (strncmp(p, "@HTTP@", 6) == 0) {
            snprintf(num, sizeof(num), "%d", http_port);
            rep = num;
            skip = 6;
        }
        if (rep) {
            memcpy(out + used, rep, strlen(rep));
            used += strlen(rep);
            p += skip;
        } else
            out[used++] = *p++;
    }
    out[used] = '\0';
    return out;
}

struct h_env *
h_env_start(const char *yaml, const char *stream, const char *const *secrets,
            h_http_script_fn *script, void *arg)
{
    struct h_env *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    if (h_redis_start(&e->redis, NULL) < 0 ||
        h_http_start(&e->rx, script, arg, true) < 0 ||
        (e->c = h_connect(e->redis.port)) == NULL)
        goto fail;
    for (size_t i = 0; secrets && secrets[i]; i += 2) {
        char *path = h_write_file(e->redis.dir, secrets[i], secrets[i + 1]);
        int rc = path ? chmod(path, 0600) : -1;
        free(path);
        if (rc < 0)
            goto fail;
    }
    char *text = h_subst_ports(yaml, e->redis.port, e->rx.port);
    if (text == NULL)
        goto fail;
    e->cfg = h_write_file(e->redis.dir, "slawatch.yaml", text);
    free(text);
    if (e->cfg == NULL)
        goto fail;
    e->daemon = h_daemon_start(e->cfg, e->redis.dir);
    if (!h_wait_group(e->c, stream, "slawatch", 5000)) {
        h_dump_file(e->redis.dir, "daemon.log");
        goto fail;
    }
    return e;
fail:
    fprintf(stderr, "cannot start redis-server, the receiver or slawatchd\n");
    (void)h_env_stop(e);
    return NULL;
}

int
h_env_stop(struct h_env *e)
{
    int rc = 0;
    if (e == NULL)
        return 0;
    if (e->daemon > 0 && h_daemon_stop(e->daemon, SIGTERM, 8000) != 0) {
        fprintf(stderr, "slawatchd did not exit cleanly on SIGTERM\n");
        h_dump_file(e->redis.dir, "daemon.log");
        rc = -1;
    }
    if (e->rx.srv)
        h_http_stop(&e->rx);
    if (e->c)
        redisFree(e->c);
    if (getenv("SLAWATCH_TEST_VERBOSE"))
        h_dump_file(e->redis.dir, "daemon.log");
    h_redis_stop(&e->redis);
    free(e->cfg);
    free(e);
    return rc;
}
