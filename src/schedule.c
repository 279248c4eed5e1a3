/* schedule.c - learning-rate schedules as closed-form functions of the step, so that a
 * resumed run needs no scheduler state: the learning rate of step t (0-based, the t-th
 * call of the optimiser) is st_schedule_lr(s, t).
 *
 * They reproduce PyTorch's schedulers stepped once per optimiser step:
 *   constant    base
 *   step        base gamma^floor(t / step_size)                      (StepLR)
 *   multistep   base gamma^(number of milestones <= t)               (MultiStepLR)
 *   cosine      eta_min + (base - eta_min) (1 + cos(pi t / t_max))/2 (CosineAnnealingLR)
 * and a linear warm-up in front, as SequentialLR([LinearLR(start_factor, total_iters=W),
 * main], milestones=[W]) does it:
 *   t < W       base (f + (1 - f) t / W)
 *   t >= W      main(t - W)
 * PyTorch computes the chainable forms recursively from the previous rate; the closed
 * forms agree with them up to rounding (tests/test_optim.c compares 200 steps). */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_PI 3.14159265358979323846 /* (math.pi) */

static double main_lr(const st_schedule *s, long t) {
    switch (s->kind) {
    case ST_SCHED_STEP:
        return s->base_lr * pow(s->gamma, (double)(t / s->step_size));
    case ST_SCHED_MULTISTEP: {
        int k = 0;
        while (k < s->n_milestones && s->milestones[k] <= t) k++;
        return s->base_lr * pow(s->gamma, k);
    }
    case ST_SCHED_COSINE:
        return s->eta_min + (s->base_lr - s->eta_min) * (1 + cos(ST_PI * (double)t / (double)s->t_max)) / 2;
    case ST_SCHED_CONSTANT:
    default:
        return s->base_lr;
    }
}

double st_schedule_lr(const st_schedule *s, long step) {
    if (step < 0) step = 0;
    if (s->warmup > 0) {
        if (step < s->warmup)
            return s->base_lr * (s->warmup_start_factor + (1 - s->warmup_start_factor) * (double)step / (double)s->warmup);
        step -= s->warmup;
    }
    return main_lr(s, step);
}

void st_schedule_constant(st_schedule *s, double base_lr) {
    memset(s, 0, sizeof *s);
    s->kind = ST_SCHED_CONSTANT;
    s->base_lr = base_lr;
    s->gamma = 0.1;
    s->warmup_start_factor = 1.0 / 3; /* LinearLR's default */
}

/* ---------------------------------------------------------------- parsing */
static int parse_long(const char *p, long *out) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || *end || errno) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *p, double *out) {
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || *end || errno || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

#define SCHED_HELP "(forms: constant, step:SIZE[:GAMMA], multistep:M1,M2,...[:GAMMA], cosine[:ETA_MIN]; " \
                   "options after commas: warmup=STEPS, warmup_start=FACTOR, gamma=G, eta_min=E, t_max=STEPS)"

/* One "key=value" option. */
static st_status parse_option(const char *text, const char *opt, st_schedule *s) {
    const char *eq = strchr(opt, '=');
    size_t klen = (size_t)(eq - opt);
    const char *v = eq + 1;
    double d;
    long l;
#define KEY(k) (klen == strlen(k) && !strncmp(opt, k, klen))
    if (KEY("warmup")) {
        if (!parse_long(v, &l) || l < 0) return st_fail(ST_ERR_ARG, "schedule '%s': warmup '%s' is not a step count >= 0", text, v);
        s->warmup = l;
    } else if (KEY("warmup_start")) {
        if (!parse_double(v, &d) || d <= 0 || d > 1)
            return st_fail(ST_ERR_ARG, "schedule '%s': warmup_start '%s' is not a factor in (0, 1]", text, v);
        s->warmup_start_factor = d;
    } else if (KEY("gamma")) {
        if (!parse_double(v, &d) || d <= 0) return st_fail(ST_ERR_ARG, "schedule '%s': gamma '%s' is not a number > 0", text, v);
        s->gamma = d;
    } else if (KEY("eta_min")) {
        if (!parse_double(v, &d) || d < 0) return st_fail(ST_ERR_ARG, "schedule '%s': eta_min '%s' is not a number >= 0", text, v);
        s->eta_min = d;
    } else if (KEY("t_max")) {
        if (!parse_long(v, &l) || l <= 0) return st_fail(ST_ERR_ARG, "schedule '%s': t_max '%s' is not a step count > 0", text, v);
        s->t_max = l;
    } else {
        return st_fail(ST_ERR_ARG, "schedule '%s': unknown option '%.*s' %s", text, (int)klen, opt, SCHED_HELP);
    }
#undef KEY
    return ST_OK;
}

static st_status parse_milestones(const char *text, const char *list, st_schedule *s) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    s->n_milestones = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long m;
        if (!parse_long(tok, &m) || m <= 0)
            return st_fail(ST_ERR_ARG, "schedule '%s': milestone '%s' is not a step > 0", text, tok);
        if (s->n_milestones == (int)(sizeof s->milestones / sizeof s->milestones[0]))
            return st_fail(ST_ERR_ARG, "schedule '%s': more than %d milestones", text, (int)(sizeof s->milestones / sizeof s->milestones[0]));
        if (s->n_milestones > 0 && m <= s->milestones[s->n_milestones - 1])
            return st_fail(ST_ERR_ARG, "schedule '%s': milestone %ld is not after %ld (they must increase)", text, m,
                           s->milestones[s->n_milestones - 1]);
        s->milestones[s->n_milestones++] = m;
    }
    if (!s->n_milestones) return st_fail(ST_ERR_ARG, "schedule '%s': multistep needs milestones, e.g. multistep:30,60,90:0.1", text);
    return ST_OK;
}

st_status st_schedule_parse(const char *text, double base_lr, long total_steps, st_schedule *out) {
    st_schedule s;
    st_schedule_constant(&s, base_lr);
    if (!text) text = "constant";
    if (strlen(text) >= 512) return st_fail(ST_ERR_ARG, "schedule text of %zu characters is too long", strlen(text));
    if (!(base_lr >= 0) || !isfinite(base_lr)) return st_fail(ST_ERR_ARG, "schedule '%s': invalid learning rate %g", text, base_lr);
    /* comma-separated pieces: those with '=' are options, the rest (multistep's milestones)
     * belong to the main part */
    char main[512] = "", opts[512] = "", buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1])) *--e = 0;
        char *dst = strchr(tok, '=') ? opts : main;
        if (*dst) strcat(dst, ",");
        strcat(dst, tok);
    }
    /* main part: KIND[:ARG[:ARG]] */
    char *args[3] = {main, NULL, NULL};
    int nargs = 1;
    for (char *p = main; *p; p++)
        if (*p == ':') {
            if (nargs == 3) return st_fail(ST_ERR_ARG, "schedule '%s': too many ':' parts %s", text, SCHED_HELP);
            *p = 0;
            args[nargs++] = p + 1;
        }
    const char *kind = args[0];
    if (!strcmp(kind, "constant") || !*kind) {
        s.kind = ST_SCHED_CONSTANT;
        if (nargs > 1) return st_fail(ST_ERR_ARG, "schedule '%s': constant takes no arguments", text);
    } else if (!strcmp(kind, "step")) {
        s.kind = ST_SCHED_STEP;
        if (nargs < 2 || !parse_long(args[1], &s.step_size) || s.step_size <= 0)
            return st_fail(ST_ERR_ARG, "schedule '%s': step size '%s' is not a step count > 0 (e.g. step:30:0.1)", text,
                           nargs < 2 ? "" : args[1]);
        if (nargs > 2 && (!parse_double(args[2], &s.gamma) || s.gamma <= 0))
            return st_fail(ST_ERR_ARG, "schedule '%s': gamma '%s' is not a number > 0", text, args[2]);
    } else if (!strcmp(kind, "multistep")) {
        s.kind = ST_SCHED_MULTISTEP;
        if (nargs < 2) return st_fail(ST_ERR_ARG, "schedule '%s': multistep needs milestones, e.g. multistep:30,60,90:0.1", text);
        st_status rc = parse_milestones(text, args[1], &s);
        if (rc) return rc;
        if (nargs > 2 && (!parse_double(args[2], &s.gamma) || s.gamma <= 0))
            return st_fail(ST_ERR_ARG, "schedule '%s': gamma '%s' is not a number > 0", text, args[2]);
    } else if (!strcmp(kind, "cosine")) {
        s.kind = ST_SCHED_COSINE;
        if (nargs > 2) return st_fail(ST_ERR_ARG, "schedule '%s': cosine takes at most ETA_MIN (cosine:0.0001)", text);
        if (nargs > 1 && (!parse_double(args[1], &s.eta_min) || s.eta_min < 0))
            return st_fail(ST_ERR_ARG, "schedule '%s': eta_min '%s' is not a number >= 0", text, args[1]);
    } else {
        return st_fail(ST_ERR_ARG, "schedule '%s': unknown kind '%s' %s", text, kind, SCHED_HELP);
    }
    if (*opts)
        for (char *save = NULL, *tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            st_status rc = parse_option(text, tok, &s);
            if (rc) return rc;
        }
    if (s.kind == ST_SCHED_COSINE && s.t_max == 0) {
        if (total_steps - s.warmup <= 0)
            return st_fail(ST_ERR_ARG, "schedule '%s': cosine needs t_max=STEPS or a total of steps (%ld) larger than the warm-up (%ld)",
                           text, total_steps, s.warmup);
        s.t_max = total_steps - s.warmup;
    }
    *out = s;
    return ST_OK;
}
