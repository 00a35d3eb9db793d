/*
 * fuzz_replay.c - runs one fuzz target's LLVMFuzzerTestOneInput (fuzz/)
 * over its corpus and regression inputs without a fuzzing engine, with
 * the normal compiler, as part of `make test` (under SANITIZE=1 with ASan
 * and UBSan, which is what turns a regression into a failure). The
 * Makefile builds one binary per target, tests/fuzz_replay_<target>, with
 * FUZZ_TARGET set to its name.
 *
 *   fuzz_replay_<target> [DIR|FILE ...]
 *
 * Without arguments it replays fuzz/corpus/<target>/ and
 * fuzz/regress/<target>/ under $FUZZ_DIR (default "fuzz", relative to the
 * current directory: make runs the tests from the top of the tree). Each
 * input counts as one test in the cmocka summary tests/run.sh reads; each
 * regression input gets its own line, a corpus one line per directory. A
 * missing or empty corpus directory is a failure, so the replay cannot
 * silently test nothing. An input that crashes the target kills the
 * process; its name is printed first (signal handler, or the sanitizers'
 * death callback when they are linked in).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET (the target's name) must be defined"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv);

/* Present when ASan or UBSan is linked in (weak: absent otherwise). */
extern void __sanitizer_set_death_callback(void (*callback)(void))
    __attribute__((weak));

static char current[4096];
static int passed, failed;

static void
say_current(void)
{
    static const char msg[] = "!!! fuzz replay: crashed on input ";
    if (current[0] == '\0')
        return;
    /* write(): async-signal-safe. */
    if (write(2, msg, sizeof(msg) - 1) < 0 ||
        write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0)
        return;
}

static void
on_signal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Reads a whole file; returns NULL (and says why) on failure. The buffer
 * is exactly the file's size (at least one byte is allocated), so a read
 * past the input is an ASan report. */
static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return NULL;
    }
    uint8_t *exact = malloc(n ? n : 1);
    if (exact == NULL) {
        free(buf);
        return NULL;
    }
    if (n)
        memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

static int
run_one(const char *path)
{
    size_t len = 0;
    uint8_t *data = slurp(path, &len);
    if (data == NULL)
        return -1;
    snprintf(current, sizeof(current), "%s", path);
    int rc = LLVMFuzzerTestOneInput(data, len);
    current[0] = '\0';
    free(data);
    return rc == 0 ? 0 : -1;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of dir, in name order. verbose: one line per
 * input (regression inputs), else one per directory. required: a missing
 * or empty directory fails. */
static void
replay_dir(const char *dir, int verbose, int required)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;

    if (d == NULL) {
        if (required || errno != ENOENT) {
            printf("[  FAILED  ] %s: %s\n", dir, strerror(errno));
            failed++;
        }
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (nn == NULL)
                abort();
            names = nn;
        }
        if ((names[n++] = strdup(path)) == NULL)
            abort();
    }
    closedir(d);
    if (n == 0 && required) {
        printf("[  FAILED  ] %s: no inputs\n", dir);
        failed++;
    }
    if (n)
        qsort(names, n, sizeof(*names), by_name);
    int ok = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (verbose)
            printf("[ RUN      ] %s\n", names[i]);
        fflush(stdout);
        if (run_one(names[i]) == 0) {
            ok++;
            if (verbose)
                printf("[       OK ] %s\n", names[i]);
        } else {
            bad++;
            printf("[  FAILED  ] %s\n", names[i]);
        }
        free(names[i]);
    }
    free(names);
    if (!verbose && n)
        printf("[       OK ] %s: %d input(s) replayed\n", dir, ok);
    passed += ok;
    failed += bad;
}

int
main(int argc, char **argv)
{
    const char *root = getenv("FUZZ_DIR");
    char dir[4096];

    /* A sanitizer reports faults itself (and calls back before dying):
     * keep its handlers. abort() is a broken invariant of the target. */
    signal(SIGABRT, on_signal);
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(say_current);
    } else {
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGFPE, on_signal);
        signal(SIGILL, on_signal);
    }
    if (root == NULL || *root == '\0')
        root = "fuzz";
    printf("[==========] Replaying the %s fuzz target's inputs.\n", FUZZ_TARGET);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            struct stat st;
            if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
                replay_dir(argv[i], 1, 1);
            } else if (run_one(argv[i]) == 0) {
                printf("[       OK ] %s\n", argv[i]);
                passed++;
            } else {
                printf("[  FAILED  ] %s\n", argv[i]);
                failed++;
            }
        }
    } else {
        snprintf(dir, sizeof(dir), "%s/corpus/%s", root, FUZZ_TARGET);
        replay_dir(dir, 0, 1);
        snprintf(dir, sizeof(dir), "%s/regress/%s", root, FUZZ_TARGET);
        replay_dir(dir, 1, 0);
    }
    printf("[==========] %d test(s) run.\n", passed + failed);
    printf("[  PASSED  ] %d test(s).\n", passed);
    if (failed)
        printf("[  FAILED  ] %d test(s).\n", failed);
    return failed ? 1 : 0;
}
