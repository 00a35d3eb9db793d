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
 * input is one test, reported like cmocka's ("[ RUN      ] path" before
 * it, so the last such line names the input that killed the process) and
 * counted in the summary tests/run.sh reads. A missing or empty corpus
 * directory is a failure, so the replay cannot silently test nothing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET (the target's name) must be defined"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv);

static int passed, failed;

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
    int rc = LLVMFuzzerTestOneInput(data, len);
    free(data);
    return rc == 0 ? 0 : -1;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of dir, in name order. required: a missing
 * or empty directory fails. */
static void
replay_dir(const char *dir, int required)
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
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", names[i]);
        fflush(stdout);
        if (run_one(names[i]) == 0) {
            passed++;
            printf("[       OK ] %s\n", names[i]);
        } else {
            failed++;
            printf("[  FAILED  ] %s\n", names[i]);
        }
        free(names[i]);
    }
    free(names);
}

int
main(int argc, char **argv)
{
    const char *root = getenv("FUZZ_DIR");
    char dir[4096];

    if (root == NULL || *root == '\0')
        root = "fuzz";
    printf("[==========] Replaying the %s fuzz target's inputs.\n", FUZZ_TARGET);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            struct stat st;
            if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
                replay_dir(argv[i], 1);
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
        replay_dir(dir, 1);
        snprintf(dir, sizeof(dir), "%s/regress/%s", root, FUZZ_TARGET);
        replay_dir(dir, 0);
    }
    printf("[==========] %d test(s) run.\n", passed + failed);
    printf("[  PASSED  ] %d test(s).\n", passed);
    if (failed)
        printf("[  FAILED  ] %d test(s).\n", failed);
    return failed ? 1 : 0;
}
