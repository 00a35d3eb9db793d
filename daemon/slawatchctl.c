/*
 * slawatchctl.c - the operator's command line: appends events to the stream
 * and reads what the daemon published, using the daemon's own config file.
 * Synchronous hiredis with time-outs; every failure is a message on stderr
 * and a non-zero exit status, never a hang.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "slawatch/config.h"
#include "slawatch/core.h"

#define DEFAULT_CONFIG "/etc/slawatch/slawatch.yaml"
#define EX_USAGE 64
#define EX_UNAVAILABLE 69
#define EX_CONFIG 78

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: slawatchctl [-c FILE] COMMAND [ARGS]\n"
            "  emit TYPE TICKET [field=value ...]   append one event, print its ID\n"
            "  report                               print the published gauges\n"
            "options:\n"
            "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
            "  -h, --help          this help\n");
}

static redisContext *
connect_redis(const struct config *cfg)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = cfg->redis.unix_path
                          ? redisConnectUnixWithTimeout(cfg->redis.unix_path, tv)
                          : redisConnectWithTimeout(cfg->redis.host, cfg->redis.port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "slawatchctl: cannot connect to redis: %s\n",
                c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (cfg->redis.password) {
        r = cfg->redis.username
                ? redisCommand(c, "AUTH %s %s", cfg->redis.username, cfg->redis.password)
                : redisCommand(c, "AUTH %s", cfg->redis.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "slawatchctl: redis AUTH failed: %s\n",
                    r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "SELECT %d", cfg->redis.db);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "slawatchctl: redis SELECT failed: %s\n", r ? r->str : c->errstr);
        goto fail;
    }
    freeReplyObject(r);
    return c;
fail:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static int
cmd_emit(const struct config *cfg, int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "slawatchctl: emit needs TYPE and TICKET\n");
        return EX_USAGE;
    }
    const char *type = argv[1];
    int known = 0;
    for (int t = 0; t < EVT_COUNT; t++)
        if (strcmp(type, event_type_name((enum ev_type)t)) == 0)
            known = 1;
    if (!known) {
        fprintf(stderr, "slawatchctl: unknown event type '%s'\n", type);
        return EX_USAGE;
    }
    size_t n = 7 + 2 * (size_t)(argc - 3);
    const char **av = calloc(n, sizeof(*av));
    size_t *lens = calloc(n, sizeof(*lens));
    char key[512];
    int ac = 0, rc = 0;
    if (av == NULL || lens == NULL) {
        fprintf(stderr, "slawatchctl: out of memory\n");
        free(av);
        free(lens);
        return 1;
    }
    snprintf(key, sizeof(key), "%sevents", cfg->redis.prefix);
    av[ac++] = "XADD";
    av[ac++] = key;
    av[ac++] = "*";
    av[ac++] = "type";
    av[ac++] = type;
    av[ac++] = "ticket";
    av[ac++] = argv[2];
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i]) {
            fprintf(stderr, "slawatchctl: '%s' is not field=value\n", argv[i]);
            rc = EX_USAGE;
            goto out;
        }
        av[ac] = argv[i];
        lens[ac++] = (size_t)(eq - argv[i]);
        av[ac++] = eq + 1;
    }
    for (int i = 0; i < ac; i++)
        if (lens[i] == 0)
            lens[i] = strlen(av[i]);
    redisContext *c = connect_redis(cfg);
    if (c == NULL) {
        rc = EX_UNAVAILABLE;
        goto out;
    }
    redisReply *r = redisCommandArgv(c, ac, av, lens);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "slawatchctl: XADD failed: %s\n",
                r ? (r->str ? r->str : "unexpected reply") : c->errstr);
        rc = EX_UNAVAILABLE;
    } else {
        printf("%s\n", r->str);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
out:
    free(av);
    free(lens);
    return rc;
}

static long long
get_int(redisContext *c, const char *key, int *found)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    long long v = 0;
    *found = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        v = strtoll(r->str, NULL, 10);
        *found = 1;
    }
    if (r)
        freeReplyObject(r);
    return v;
}

static int
cmd_report(const struct config *cfg)
{
    redisContext *c = connect_redis(cfg);
    char key[512];
    int found;
    if (c == NULL)
        return EX_UNAVAILABLE;
    printf("%-12s %8s %18s %18s\n", "tier", "open", "overdue response",
           "overdue resolution");
    for (size_t t = 0; t < cfg->ntiers; t++) {
        const char *name = cfg->tiers[t].name;
        snprintf(key, sizeof(key), "%sopen:%s", cfg->redis.prefix, name);
        long long open = get_int(c, key, &found);
        long long od[METRIC_COUNT];
        for (int m = 0; m < METRIC_COUNT; m++) {
            snprintf(key, sizeof(key), "%soverdue:%s:%s", cfg->redis.prefix, name,
                     cfg_metric_name(m));
            od[m] = get_int(c, key, &found);
        }
        printf("%-12s %8lld %18lld %18lld\n", name, open, od[0], od[1]);
    }
    snprintf(key, sizeof(key), "%sstats:events_total", cfg->redis.prefix);
    long long ev = get_int(c, key, &found);
    snprintf(key, sizeof(key), "%sstats:rejected_total", cfg->redis.prefix);
    long long rej = get_int(c, key, &found);
    snprintf(key, sizeof(key), "%sstats:lag", cfg->redis.prefix);
    long long lag = get_int(c, key, &found);
    printf("events %lld, rejected %lld, lag %lld\n", ev, rej, lag);
    redisFree(c);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = DEFAULT_CONFIG;
    int ch;
    while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return EX_USAGE;
    }
    struct config *cfg = cfg_load(path, stderr);
    if (cfg == NULL)
        return EX_CONFIG;
    int rc;
    if (strcmp(argv[0], "emit") == 0)
        rc = cmd_emit(cfg, argc, argv);
    else if (strcmp(argv[0], "report") == 0)
        rc = cmd_report(cfg);
    else {
        fprintf(stderr, "slawatchctl: unknown command '%s'\n", argv[0]);
        usage(stderr);
        rc = EX_USAGE;
    }
    cfg_free(cfg);
    return rc;
}
