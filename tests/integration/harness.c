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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

static int
redis_spawn(struct h_redis *r)
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
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        execvp("redis-server", argv);
        _exit(127);
    }
    r->pid = pid;
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
        for (size_t k = 0; k + 1 < kv->elements && e[i].n < 64; k += 2) {
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
