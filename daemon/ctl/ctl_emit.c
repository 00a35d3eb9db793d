/*
 * ctl_emit.c - `slawatchctl emit TYPE TICKET [field=value ...]`: appends
 * one event to <prefix>events and prints its stream ID. The event type is
 * checked here; everything else is the daemon's to validate (a bad event
 * ends up in <prefix>events:dead with its reason).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int
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
    char key[KEY_MAX];
    int ac = 0, rc = 0;
    if (av == NULL || lens == NULL) {
        fprintf(stderr, "slawatchctl: out of memory\n");
        free(av);
        free(lens);
        return 1;
    }
    ctl_key(key, cfg, "events");
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
    redisContext *c = ctl_connect(cfg);
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
