/*
 * fuzz_state.c - the checkpoint decoder and every section in it, past the
 * integrity check: the harness writes the magic over the first 8 bytes and
 * the right CRC-32 over the last 4 before decoding (a CRC is no protection
 * against someone who can write <prefix>state), so the fuzzer reaches
 * state_decode's parsing itself. Decoded under config A (harness.c) with
 * the sections as io/snapshot.c hands them out: STATE_SECTION_COMPLIANCE
 * to cmp_decode (under config A, and again under B, as after a reload;
 * the 'O' records of an older one to the objective states), and
 * STATE_SECTION_OBJECTIVES to obj_decode likewise, STATE_SECTION_WRITES
 * (and the 0.1.0 one) through state_write_next and state_write_from_resp,
 * then state_write_check.
 *
 * A checkpoint that decodes is then used the way the daemon would: every
 * restored ticket gets a response, a pause and resume, an update, a
 * resolution and a reopening, the config is reloaded to B, time runs to
 * the end of year 9999, and the result must checkpoint and decode again.
 * The compliance windows move, publish and evaluate their objectives, and
 * both must survive their own encode and decode; every KPI series must
 * stay consistent (no more reopens or first contacts than first
 * resolutions, no more numeric ratings than ratings, ratios within 0..1).
 *
 * Input: a checkpoint (state.h layout); fuzz/corpus/state holds real ones
 * (fuzz/gen_corpus.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "slawatch/compliance.h"
#include "slawatch/core.h"
#include "slawatch/objective.h"
#include "slawatch/state.h"

#define MAX_IDS 64

struct run {
    struct compliance *cmp_a, *cmp_b;
    struct objectives *obj_a, *obj_b;
    size_t writes;  /* commands of the writes section */
    size_t refused; /* compliance sections refused */
};

static int64_t
wall(void *arg)
{
    (void)arg;
    return FUZZ_WALL_MS;
}

static void
on_section(void *arg, uint32_t tag, const char *data, size_t len)
{
    struct run *r = arg;
    if (tag == STATE_SECTION_COMPLIANCE) {
        /* A malformed section keeps what was read before it. */
        cmp_set_legacy_objective_hook(r->cmp_a, obj_restore_legacy, r->obj_a);
        cmp_set_legacy_objective_hook(r->cmp_b, obj_restore_legacy, r->obj_b);
        if (cmp_decode(r->cmp_a, data, len) < 0)
            r->refused++;
        if (cmp_decode(r->cmp_b, data, len) < 0)
            r->refused++;
        cmp_set_legacy_objective_hook(r->cmp_a, NULL, NULL);
        cmp_set_legacy_objective_hook(r->cmp_b, NULL, NULL);
    } else if (tag == STATE_SECTION_OBJECTIVES) {
        if (obj_decode(r->obj_a, data, len) < 0)
            r->refused++;
        if (obj_decode(r->obj_b, data, len) < 0)
            r->refused++;
    } else if (tag == STATE_SECTION_WRITES) {
        struct wire_reader rd;
        struct state_write w;
        wire_reader_init(&rd, data, len);
        while (state_write_next(&rd, &w) > 0) {
            if (w.argc == 0)
                abort(); /* state_write_next promised a command */
            if (state_write_check(&w, "sla:") == NULL)
                r->writes++;
            state_write_free(&w);
        }
    } else if (tag == STATE_SECTION_WRITES_RESP) {
        struct wire_reader rd;
        wire_reader_init(&rd, data, len);
        while (rd.left > 0) {
            uint32_t cl = wire_get_u32(&rd);
            const char *cmd = wire_get_bytes(&rd, cl);
            struct state_write w;
            const char *why;
            if (cmd == NULL)
                break;
            if (state_write_from_resp(cmd, cl, &w, &why) == 0) {
                if (state_write_check(&w, "sla:") == NULL)
                    r->writes++;
                state_write_free(&w);
            }
        }
    }
}

struct ids {
    char id[MAX_IDS][TICKET_ID_MAX + 1];
    size_t len[MAX_IDS];
    size_t n;
};

static void
collect(void *arg, const struct ticket *t)
{
    struct ids *ids = arg;
    if (ids->n == MAX_IDS)
        return;
    memcpy(ids->id[ids->n], t->id, t->id_len);
    ids->len[ids->n++] = t->id_len;
}

static void
apply(struct core *core, enum ev_type type, const char *id, size_t len,
      int64_t ts)
{
    struct sla_event ev;
    const char *reason;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.ticket = id;
    ev.ticket_len = len;
    ev.ts_ms = ts;
    if (core_apply(core, &ev, &reason) < 0 && reason == NULL)
        abort(); /* a rejection always says why */
}

/* Re-encodes `core` and decodes it into a fresh core under cfg: the
 * daemon's own checkpoint of a restored state must load. */
static void
roundtrip(const struct core *core, const struct config *cfg)
{
    struct wire_buf b;
    struct state_meta meta = { .saved_ms = FUZZ_WALL_MS,
                               .core_now_ms = core_now(core) };
    char err[256] = "";

    wire_init(&b);
    if (state_encode(core, &meta, NULL, 0, &b) < 0)
        abort();
    struct core *copy = core_new(cfg, wall, NULL, NULL);
    if (copy == NULL)
        abort();
    long n = state_decode(copy, b.data, b.len, &meta, NULL, NULL, err,
                          sizeof(err));
    if (n < 0) {
        fprintf(stderr, "fuzz_state: own checkpoint refused: %s\n", err);
        abort();
    }
    if ((size_t)n != core_ticket_count(core))
        abort();
    core_free(copy);
    wire_free(&b);
}

static void
use_core(struct core *core)
{
    struct ids ids = { .n = 0 };
    int64_t t = core_now(core);

    if (t < FUZZ_WALL_MS)
        t = FUZZ_WALL_MS;
    roundtrip(core, fuzz_config_a());
    core_foreach(core, collect, &ids);
    for (size_t i = 0; i < ids.n; i++) {
        const char *id = ids.id[i];
        size_t len = ids.len[i];
        apply(core, EVT_RESPONDED, id, len, t + 1000);
        apply(core, EVT_PAUSED, id, len, t + 2000);
        apply(core, EVT_RESUMED, id, len, t + 3000);
        apply(core, EVT_UPDATED, id, len, t + 4000);
    }
    core_set_config(core, fuzz_config_b());
    for (size_t i = 0; i < ids.n; i++) {
        apply(core, EVT_RESOLVED, ids.id[i], ids.len[i], t + 5000);
        apply(core, EVT_REOPENED, ids.id[i], ids.len[i], t + 6000);
    }
    core_advance(core, TS_MAX_MS);
    roundtrip(core, fuzz_config_b());
    core_set_config(core, fuzz_config_a());
}

static void
on_objective(void *arg, const struct obj_change *c)
{
    (void)arg;
    if (c->value_micro > CMP_RATIO_ONE || c->episode == 0)
        abort();
}

static void
on_series(void *arg, const struct cmp_series *s)
{
    (void)arg;
    char ratio[CMP_RATIO_BUFLEN];
    (void)cmp_format_ratio(s->counts[0].met, s->counts[0].breached, ratio);
}

static void
on_kpi_series(void *arg, const struct cmp_kpi_series *s)
{
    const struct config *cfg = arg;
    char text[CMP_KPI_BUFLEN];
    for (size_t w = 0; w < cfg->compliance.nwindows; w++) {
        const struct cmp_kpi_counts *k = &s->counts[w];
        uint64_t micro;
        if (k->reopened > k->resolved || k->fcr > k->resolved ||
            k->scored > k->good + k->bad || k->score_sum > 5 * k->scored ||
            k->score_sum < k->scored)
            abort();
        for (int kpi = 0; kpi < CMP_KPI_COUNT; kpi++) {
            bool have = cmp_kpi_micro(k, kpi, &micro);
            if (have != (cmp_format_kpi(k, kpi, text) != NULL))
                abort();
            if (have && kpi != CMP_KPI_CSAT_COUNT &&
                micro > (kpi == CMP_KPI_CSAT_MEAN ? 5u : 1u) * CMP_RATIO_ONE)
                abort();
        }
    }
}

static void
use_compliance(struct compliance *cmp, struct objectives *obj, const struct config *cfg)
{
    struct wire_buf b;
    struct cmp_latency lat;

    cmp_advance(cmp, FUZZ_WALL_MS);
    for (int round = 0; round < 4; round++)
        obj_eval(obj, FUZZ_WALL_MS, obj_read_compliance, cmp, on_objective, NULL);
    wire_init(&b);
    if (obj_encode(obj, &b) < 0)
        abort();
    struct objectives *ocopy = obj_new(cfg);
    if (ocopy == NULL || obj_decode(ocopy, b.data, b.len) < 0)
        abort(); /* its own section must decode */
    obj_free(ocopy);
    wire_free(&b);
    if (cfg->compliance.nwindows > 0)
        cmp_foreach(cmp, on_series, NULL);
    for (size_t w = 0; w < cfg->compliance.nwindows; w++)
        for (int t = CMP_ALL; t < (int)cfg->ntiers; t++)
            for (int m = 0; m < METRIC_COUNT; m++)
                if (cmp_elapsed(cmp, t, m, (int)w, &lat) &&
                    (lat.p50_ms > lat.p90_ms || lat.p90_ms > lat.p99_ms))
                    abort();
    if (cfg->compliance.nwindows > 0)
        cmp_kpi_foreach(cmp, on_kpi_series, (void *)cfg);
    wire_init(&b);
    if (cmp_encode(cmp, &b) < 0)
        abort();
    struct compliance *copy = cmp_new(cfg, FUZZ_WALL_MS);
    if (copy == NULL || cmp_decode(copy, b.data, b.len) < 0)
        abort(); /* its own section must decode */
    cmp_free(copy);
    wire_free(&b);
    cmp_advance(cmp, TS_MAX_MS);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct config *a = fuzz_config_a(), *b = fuzz_config_b();
    size_t len = size < 12 ? 12 : size;
    char *blob = calloc(1, len);
    struct run r = { cmp_new(a, FUZZ_WALL_MS - 3600000), cmp_new(b, FUZZ_WALL_MS - 3600000),
                     obj_new(a), obj_new(b), 0, 0 };
    struct core *core = core_new(a, wall, NULL, NULL);
    struct state_meta meta;
    char err[256] = "";

    if (blob == NULL || r.cmp_a == NULL || r.cmp_b == NULL || r.obj_a == NULL ||
        r.obj_b == NULL || core == NULL)
        abort();
    if (size)
        memcpy(blob, data, size);
    memcpy(blob, "SLAWST01", 8);
    uint32_t crc = state_crc32(blob, len - 4);
    for (int i = 0; i < 4; i++)
        blob[len - 4 + i] = (char)(crc >> (8 * i));

    long n = state_decode(core, blob, len, &meta, on_section, &r, err,
                          sizeof(err));
    if (n < 0) {
        if (err[0] == '\0')
            abort(); /* a refusal always says why */
    } else {
        use_core(core);
    }
    use_compliance(r.cmp_a, r.obj_a, a);
    use_compliance(r.cmp_b, r.obj_b, b);
    core_free(core);
    cmp_free(r.cmp_a);
    cmp_free(r.cmp_b);
    obj_free(r.obj_a);
    obj_free(r.obj_b);
    free(blob);
    return 0;
}
