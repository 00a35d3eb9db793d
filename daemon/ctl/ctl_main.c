/*
 * ctl_main.c - slawatchctl, the operator's command line: options, the
 * table of commands (the one list that --help prints and slawatchctl(1)
 * must match, see tests/integration/test_ctl.c), loading the daemon's
 * config file, and dispatch. Owns nothing else; each command is its own
 * file (ctl.h).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "slawatch/util.h"
#include "slawatch/version.h"

static const struct ctl_command {
    const char *name;
    const char *args;         /* the synopsis after the name */
    const char *what;         /* one line of --help */
    ctl_cmd_fn *fn;
} commands[] = {
    { "emit", "TYPE TICKET [field=value ...]", "append one event, print its stream ID",
      cmd_emit },
    { "status", "[--json] [TICKET]",
      "a ticket's tier, clocks, outcomes; alone: the daemon's health",
      cmd_status },
    { "tickets", "[--overdue | --at-risk DUR] [--tier T] [--queue Q] [--json]",
      "running clocks, soonest deadline first", cmd_tickets },
    { "report", "[--json]", "compliance, open, overdue, at-risk, KPIs, objectives, counters",
      cmd_report },
    { "outbox", "[--json]", "webhook notifications waiting for delivery", cmd_outbox },
    { "config", "", "the effective configuration, defaults filled in", cmd_config },
    { "explain", "field=value ...",
      "tier, targets, calendar, escalations for these fields",
      cmd_explain },
};

static void
usage(FILE *out)
{
    fprintf(out, "usage: slawatchctl [-c FILE] COMMAND [ARGS]\ncommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        char syn[128];
        snprintf(syn, sizeof(syn), "%s %s", commands[i].name, commands[i].args);
        if (strlen(syn) <= 36)
            fprintf(out, "  %-36s %s\n", syn, commands[i].what);
        else
            fprintf(out, "  %s\n  %-36s %s\n", syn, "", commands[i].what);
    }
    fprintf(out, "options:\n"
                 "  -c, --config FILE   configuration (default " CTL_DEFAULT_CONFIG ")\n"
                 "  -V, --version       print the version and exit\n"
                 "  -h, --help          print this help and exit\n"
                 "Every command but emit only reads. Exit status: 0 ok, 1 not found,\n"
                 "64 bad usage, 69 Redis unreachable, 78 bad configuration.\n");
}

/* Loads the config as the daemon does. Warnings of a valid file (see
 * slawatchd -t) are the daemon's to show, so only a failed load prints
 * what the loader said. */
static struct config *
load_config(const char *path)
{
    char *msgs = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&msgs, &len);
    struct config *cfg = cfg_load(path, m ? m : stderr);
    if (m)
        fclose(m);
    if (cfg == NULL && msgs)
        fputs(msgs, stderr);
    free(msgs);
    return cfg;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = CTL_DEFAULT_CONFIG;
    int ch;
    while ((ch = getopt_long(argc, argv, "+c:Vh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 'V': printf("slawatchctl %s\n", SLAWATCH_VERSION); return 0;
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
    const struct ctl_command *cmd = NULL;
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        fprintf(stderr, "slawatchctl: unknown command '%s'\n", argv[0]);
        usage(stderr);
        return EX_USAGE;
    }
    struct config *cfg = load_config(path);
    if (cfg == NULL)
        return EX_CONFIG;
    int rc = cmd->fn(cfg, argc, argv);
    cfg_free(cfg);
    return rc;
}
