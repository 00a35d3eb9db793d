/*
 * kpi.c - the arithmetic of the support KPIs (see kpi.h): what a fact
 * counts, a window's counters with the rules that keep them consistent,
 * the KPIs' values, names and published text, and one slot's checkpoint
 * bytes (through wire.h). Must not know about windows, tiers, breakdown
 * values or time: compliance.c says which slot a fact falls in and when a
 * slot leaves its window.
 */
#include "slawatch/kpi.h"

#include <stdio.h>
#include <string.h>

/* ---- facts and rings ---------------------------------------------------- */

int
kpi_fact_counters(const struct sla_kpi *k, uint32_t d[KPI_COUNTERS])
{
    memset(d, 0, KPI_COUNTERS * sizeof(d[0]));
    if (k->delta != 1 && k->delta != -1)
        return -1;
    switch (k->fact) {
    case KPI_FIRST_RESOLUTION:
        d[KC_RESOLVED] = 1;
        d[KC_FCR] = k->fcr ? 1 : 0;
        return 0;
    case KPI_REOPEN:
        d[KC_REOPENED] = 1;
        return 0;
    case KPI_RATING:
        if (k->score == SCORE_NONE || k->score > SCORE_BAD)
            return -1;
        d[score_is_good(k->score) ? KC_GOOD : KC_BAD] = 1;
        if (k->score <= 5) {
            d[KC_SCORED] = 1;
            d[KC_SCORE_SUM] = k->score;
        }
        return 0;
    }
    return -1;
}

/* Whether counters (one slot's, or what it would become) are in order. */
static bool
in_order(const uint64_t v[KPI_COUNTERS])
{
    return v[KC_FCR] <= v[KC_RESOLVED] && v[KC_REOPENED] <= v[KC_RESOLVED] &&
           v[KC_SCORED] <= v[KC_GOOD] + v[KC_BAD] && v[KC_SCORE_SUM] >= v[KC_SCORED] &&
           v[KC_SCORE_SUM] <= 5 * v[KC_SCORED];
}

bool
kpi_ring_apply(struct kpi_ring *r, int s, const uint32_t d[KPI_COUNTERS], int sign)
{
    uint32_t *v = r->v[s];
    uint64_t next[KPI_COUNTERS];
    for (int k = 0; k < KPI_COUNTERS; k++) {
        if (sign > 0 ? UINT32_MAX - v[k] < d[k] : v[k] < d[k])
            return false;
        next[k] = sign > 0 ? (uint64_t)v[k] + d[k] : (uint64_t)v[k] - d[k];
    }
    if (!in_order(next))
        return false;
    for (int k = 0; k < KPI_COUNTERS; k++) {
        v[k] = (uint32_t)next[k];
        r->tot[k] = sign > 0 ? r->tot[k] + d[k] : r->tot[k] - d[k];
    }
    return true;
}

void
kpi_ring_clear_slot(struct kpi_ring *r, int s)
{
    for (int k = 0; k < KPI_COUNTERS; k++) {
        r->tot[k] -= r->v[s][k];
        r->v[s][k] = 0;
    }
}

bool
kpi_ring_empty(const struct kpi_ring *r)
{
    for (int k = 0; k < KPI_COUNTERS; k++)
        if (r->tot[k])
            return false;
    return true;
}

bool
kpi_ring_slot_empty(const struct kpi_ring *r, int s)
{
    for (int k = 0; k < KPI_COUNTERS; k++)
        if (r->v[s][k])
            return false;
    return true;
}

void
kpi_ring_counts(const struct kpi_ring *r, struct cmp_kpi_counts *k)
{
    *k = (struct cmp_kpi_counts){
        .resolved = r->tot[KC_RESOLVED],
        .fcr = r->tot[KC_FCR],
        .reopened = r->tot[KC_REOPENED],
        .good = r->tot[KC_GOOD],
        .bad = r->tot[KC_BAD],
        .scored = r->tot[KC_SCORED],
        .score_sum = r->tot[KC_SCORE_SUM],
    };
}

void
kpi_ring_put_slot(const struct kpi_ring *r, int s, struct wire_buf *b)
{
    for (int k = 0; k < KPI_COUNTERS; k++)
        wire_put_u32(b, r->v[s][k]);
}

int
kpi_ring_get_slot(struct kpi_ring *r, int s, struct wire_reader *rd)
{
    uint32_t d[KPI_COUNTERS];
    uint64_t v[KPI_COUNTERS];
    for (int k = 0; k < KPI_COUNTERS; k++)
        v[k] = d[k] = wire_get_u32(rd);
    if (rd->bad || !in_order(v))
        return -1;
    if (r == NULL || s < 0)
        return 0;
    return kpi_ring_apply(r, s, d, 1) ? 0 : -1;
}

/* ---- values ------------------------------------------------------------- */

static const char *const kpi_names[CMP_KPI_COUNT] = {
    "fcr", "reopen_rate", "csat", "csat_mean", "csat_count",
};

const char *
cmp_kpi_name(int kpi)
{
    return kpi >= 0 && kpi < CMP_KPI_COUNT ? kpi_names[kpi] : "?";
}

int
cmp_kpi_by_name(const char *name, size_t len)
{
    for (int k = 0; k < CMP_KPI_COUNT; k++)
        if (strlen(kpi_names[k]) == len && memcmp(kpi_names[k], name, len) == 0)
            return k;
    return -1;
}

/* num / den in millionths, truncated (den > 0). */
static uint64_t
micro_of(uint64_t num, uint64_t den)
{
    uint64_t whole = num / den, rest = num % den;
    /* rest < den; rest * 10^6 fits while den < 1.8e13. */
    uint64_t frac = den < UINT64_MAX / CMP_RATIO_ONE
                        ? rest * CMP_RATIO_ONE / den
                        : (uint64_t)((double)rest / (double)den * CMP_RATIO_ONE);
    return whole * CMP_RATIO_ONE + frac;
}

bool
cmp_kpi_micro(const struct cmp_kpi_counts *k, int kpi, uint64_t *micro)
{
    uint64_t rated = k->good + k->bad;
    *micro = 0;
    switch (kpi) {
    case CMP_KPI_FCR:
        if (k->resolved == 0)
            return false;
        *micro = micro_of(k->fcr < k->resolved ? k->fcr : k->resolved, k->resolved);
        return true;
    case CMP_KPI_REOPEN_RATE:
        if (k->resolved == 0)
            return false;
        *micro = micro_of(k->reopened < k->resolved ? k->reopened : k->resolved,
                          k->resolved);
        return true;
    case CMP_KPI_CSAT:
        if (rated == 0)
            return false;
        *micro = micro_of(k->good, rated);
        return true;
    case CMP_KPI_CSAT_MEAN:
        if (k->scored == 0)
            return false;
        *micro = micro_of(k->score_sum, k->scored);
        return true;
    case CMP_KPI_CSAT_COUNT:
        if (rated == 0)
            return false;
        *micro = rated * CMP_RATIO_ONE;
        return true;
    }
    return false;
}

char *
cmp_format_kpi(const struct cmp_kpi_counts *k, int kpi, char *buf)
{
    uint64_t micro;
    buf[0] = '\0';
    if (!cmp_kpi_micro(k, kpi, &micro))
        return NULL;
    uint64_t whole = micro / CMP_RATIO_ONE;
    unsigned frac = (unsigned)(micro % CMP_RATIO_ONE);
    if (frac == 0) {
        snprintf(buf, CMP_KPI_BUFLEN, "%llu", (unsigned long long)whole);
        return buf;
    }
    int n = snprintf(buf, CMP_KPI_BUFLEN, "%llu.%06u", (unsigned long long)whole, frac);
    while (buf[n - 1] == '0')
        buf[--n] = '\0';
    return buf;
}

