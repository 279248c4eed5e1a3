/* plot.c - line plots (training curves) as PNG, drawn with cairo. See plot.h.
 *
 * Layout of a figure: an optional title on top, then n_panels equal cells side by side.
 * Each cell has an optional panel title, a framed plot area with a light grid at the
 * tick positions, tick labels, axis labels and a legend box placed in the corner of the
 * plot area that hides the fewest data. Ticks use "nice numbers" (steps of 1, 2 or 5
 * times a power of ten); large values are written 20k, 1.5M. Sizes scale with the
 * figure height, so a larger figure is the same picture at a higher resolution.
 *
 * The whole implementation needs cairo (ST_HAVE_CAIRO); without it plot_lines fails
 * with a message that says how to get it.
 */
#include "plot.h"

#include <stdarg.h>
#include <stdio.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The pictures of data (plot_confusion, plot_masks, ...) report errors here. */
static char plot_err[512];
const char *plot_errmsg(void) { return plot_err; }
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(plot_err, sizeof plot_err, fmt, ap);
    va_end(ap);
    return -1;
}
#define NO_CAIRO "stride was built without cairo (install libcairo2-dev and rebuild)"

#ifndef ST_HAVE_CAIRO

int plot_confusion(const char *png, const int64_t *counts, int classes, const char *const *names) {
    (void)png; (void)counts; (void)classes; (void)names;
    return fail(NO_CAIRO);
}
int plot_masks(const char *png, const float *images, int n, int channels, int h, int w,
               const int32_t *truth, const int32_t *pred, int classes) {
    (void)png; (void)images; (void)n; (void)channels; (void)h; (void)w; (void)truth; (void)pred; (void)classes;
    return fail(NO_CAIRO);
}
int plot_heatmaps(const char *png, const float *images, int n, int channels, int h, int w,
                  const float *heat, int joints, int hh, int hw, const float *truth_heat) {
    (void)png; (void)images; (void)n; (void)channels; (void)h; (void)w;
    (void)heat; (void)joints; (void)hh; (void)hw; (void)truth_heat;
    return fail(NO_CAIRO);
}
int plot_signals(const char *png, const float *x, int n, int channels, int length,
                 const int32_t *labels, const int32_t *pred) {
    (void)png; (void)x; (void)n; (void)channels; (void)length; (void)labels; (void)pred;
    return fail(NO_CAIRO);
}
int plot_image_grid(const char *png, const char *title, const float *x, int n, int channels,
                    int h, int w, int cols, plot_cmap cmap, int rgb, const char *const *captions) {
    (void)png; (void)title; (void)x; (void)n; (void)channels; (void)h; (void)w; (void)cols;
    (void)cmap; (void)rgb; (void)captions;
    return fail(NO_CAIRO);
}
int plot_signal_grid(const char *png, const char *title, const float *x, int n, int channels,
                     int length, int cols, int shared_y, const char *const *captions) {
    (void)png; (void)title; (void)x; (void)n; (void)channels; (void)length; (void)cols;
    (void)shared_y; (void)captions;
    return fail(NO_CAIRO);
}

int plot_lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
               char *err, size_t errlen) {
    (void)png_path; (void)o; (void)s; (void)ns;
    set_err(err, errlen, NO_CAIRO);
    return -1;
}
int plot_lines_own_y(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
                     char *err, size_t errlen) {
    return plot_lines(png_path, o, s, ns, err, errlen);
}

#else /* ST_HAVE_CAIRO */

#include <cairo.h>
#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846
#define MAX_PANELS 4
#define FONT "sans-serif"

/* Okabe & Ito's colour-blind-safe palette (yellow left out: too pale on white). */
static const double palette[][3] = {
    {0.000, 0.447, 0.698}, /* blue */
    {0.835, 0.369, 0.000}, /* vermillion */
    {0.000, 0.620, 0.451}, /* bluish green */
    {0.902, 0.624, 0.000}, /* orange */
    {0.800, 0.475, 0.655}, /* reddish purple */
    {0.337, 0.706, 0.914}, /* sky blue */
    {0.000, 0.000, 0.000}, /* black */
};
#define N_COLORS ((int)(sizeof palette / sizeof palette[0]))

/* ---------------------------------------------------------------- axes and ticks */
typedef struct {
    double lo, hi; /* data range shown */
    double step;   /* distance between ticks */
} axis;

/* A "nice" number near x: 1, 2 or 5 times a power of ten (Heckbert, Graphics Gems 1990). */
static double nice_num(double x) {
    double e = floor(log10(x)), f = x / pow(10, e), nf;
    if (f < 1.5) nf = 1;
    else if (f < 3) nf = 2;
    else if (f < 7) nf = 5;
    else nf = 10;
    return nf * pow(10, e);
}

/* An axis over [lo, hi] with about `target` ticks. A loose axis widens the range to
 * whole ticks; a fixed one keeps it as given. */
static axis make_axis(double lo, double hi, int target, int loose) {
    axis a;
    double span = hi - lo, mag = fmax(fabs(lo), fabs(hi));
    if (!(span > mag * 1e-9) || !(span > 1e-300)) { /* one value: widen around it */
        double d = mag > 0 ? mag * 0.1 : 1;
        lo -= d; hi += d; span = hi - lo;
    }
    a.step = nice_num(span / (target > 1 ? target : 1));
    if (loose) {
        a.lo = floor(lo / a.step + 1e-9) * a.step;
        a.hi = ceil(hi / a.step - 1e-9) * a.step;
    } else {
        a.lo = lo; a.hi = hi;
    }
    return a;
}

/* The ticks of an axis, by index k: the values k * step within [lo, hi]. */
static int tick_first(const axis *a) { return (int)ceil(a->lo / a->step - 1e-6); }
static int tick_last(const axis *a) {
    int k0 = tick_first(a), k1 = (int)floor(a->hi / a->step + 1e-6);
    return k1 - k0 > 200 ? k0 + 200 : k1;
}
static double tick_value(const axis *a, int k) { return k * a->step; }

/* Writes a tick value with as many decimals as the step needs: 0.25, 40, 20k, 1.5M. */
static void tick_label(char *buf, size_t n, double v, const axis *a) {
    double amax = fmax(fabs(a->lo), fabs(a->hi)), div = 1;
    const char *suffix = "";
    if (fabs(v) < a->step * 1e-6) { snprintf(buf, n, "0"); return; }
    if (amax >= 1e9 || amax < 1e-3) { snprintf(buf, n, "%.3g", v); return; }
    if (amax >= 1e6 && a->step >= 1e5 * 0.999) { div = 1e6; suffix = "M"; }
    else if (amax >= 1e4 && a->step >= 100 * 0.999) { div = 1e3; suffix = "k"; }
    int e = (int)floor(log10(a->step / div) + 1e-9);
    snprintf(buf, n, "%.*f%s", e < 0 ? -e : 0, v / div, suffix);
}

static double map(const axis *a, double v, double p0, double p1) {
    double p = p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
    /* cairo's fixed-point coordinates overflow far off the surface; lines are clipped anyway */
    return p < -1e5 ? -1e5 : p > 1e5 ? 1e5 : p;
}

/* ---------------------------------------------------------------- text */
typedef struct {
    double s;                                   /* scale: 1 at a height of 500 px */
    double f_title, f_panel, f_label, f_tick, f_legend; /* font sizes */
} style;

static void font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *t) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, t, &te);
    return te.x_advance;
}

/* Height of a capital letter or digit in the current font: used to centre text. */
static double cap_height(cairo_t *cr) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, "0", &te);
    return -te.y_bearing;
}

/* Draws t with its anchor at (x, y): ha 0 left, 0.5 centre, 1 right; va 0 top (of the
 * capitals), 0.5 middle, 1 baseline. */
static void text_at(cairo_t *cr, const char *t, double x, double y, double ha, double va) {
    double w = text_width(cr, t), h = cap_height(cr);
    cairo_move_to(cr, x - ha * w, y + (1 - va) * h);
    cairo_show_text(cr, t);
}

/* ---------------------------------------------------------------- data */
static int finite2(double x, double y) { return isfinite(x) && isfinite(y); }

/* Range of the finite points of the series in `panel` (all panels if panel < 0). */
static int data_range(const plot_series *s, int ns, int panel, int want_y, double *lo, double *hi) {
    int found = 0;
    *lo = INFINITY; *hi = -INFINITY;
    for (int i = 0; i < ns; i++) {
        if (panel >= 0 && s[i].panel != panel) continue;
        for (int j = 0; j < s[i].n; j++) {
            if (!finite2(s[i].x[j], s[i].y[j])) continue;
            double v = want_y ? s[i].y[j] : s[i].x[j];
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
            found = 1;
        }
    }
    return found;
}

typedef struct {
    double x0, y0, x1, y1; /* plot area in pixels, y0 on top */
    axis ax, ay;
} frame;

static void set_line_style(cairo_t *cr, const style *st, const plot_series *s) {
    const double *c = palette[(s->color < 0 ? -s->color : s->color) % N_COLORS];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    cairo_set_line_width(cr, 2.0 * st->s);
    cairo_set_line_cap(cr, s->dashed ? CAIRO_LINE_CAP_BUTT : CAIRO_LINE_CAP_ROUND);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    double dash[2] = {7 * st->s, 4 * st->s};
    cairo_set_dash(cr, dash, s->dashed ? 2 : 0, 0);
}

/* Draws one series as a polyline broken at non-finite points; a point with no finite
 * neighbour (n = 1, or isolated by NaNs) becomes a dot. */
static void draw_series(cairo_t *cr, const style *st, const frame *f, const plot_series *s) {
    set_line_style(cr, st, s);
    int run = 0;
    for (int j = 0; j < s->n; j++) {
        if (!finite2(s->x[j], s->y[j])) { run = 0; continue; }
        double px = map(&f->ax, s->x[j], f->x0, f->x1), py = map(&f->ay, s->y[j], f->y1, f->y0);
        if (run++) cairo_line_to(cr, px, py);
        else cairo_move_to(cr, px, py);
    }
    cairo_stroke(cr);
    for (int j = 0; j < s->n; j++) {
        int prev = j > 0 && finite2(s->x[j - 1], s->y[j - 1]);
        int next = j + 1 < s->n && finite2(s->x[j + 1], s->y[j + 1]);
        if (prev || next || !finite2(s->x[j], s->y[j])) continue;
        cairo_new_sub_path(cr);
        cairo_arc(cr, map(&f->ax, s->x[j], f->x0, f->x1), map(&f->ay, s->y[j], f->y1, f->y0),
                  3.5 * st->s, 0, 2 * PI);
        cairo_fill(cr);
    }
}

/* How much of the panel's data lies inside the rectangle: the number of points sampled
 * every few pixels along the lines that fall in it. */
static long data_in_rect(const frame *f, const plot_series *s, int ns, int panel,
                         double rx0, double ry0, double rx1, double ry1) {
    long count = 0;
    for (int i = 0; i < ns; i++) {
        if (s[i].panel != panel) continue;
        int have = 0;
        double qx = 0, qy = 0;
        for (int j = 0; j < s[i].n; j++) {
            if (!finite2(s[i].x[j], s[i].y[j])) { have = 0; continue; }
            double px = map(&f->ax, s[i].x[j], f->x0, f->x1);
            double py = map(&f->ay, s[i].y[j], f->y1, f->y0);
            if (!have) { qx = px; qy = py; }
            int k = (int)fmin(ceil(hypot(px - qx, py - qy) / 3), 2000);
            for (int t = have ? 1 : 0; t <= k; t++) {
                double u = k ? (double)t / k : 1;
                double x = qx + u * (px - qx), y = qy + u * (py - qy);
                count += x >= rx0 && x <= rx1 && y >= ry0 && y <= ry1;
            }
            qx = px; qy = py; have = 1;
        }
    }
    return count;
}

static void draw_legend(cairo_t *cr, const style *st, const frame *f, const plot_series *s,
                        int ns, int panel) {
    int rows = 0;
    double tw = 0;
    font(cr, st->f_legend, 0);
    for (int i = 0; i < ns; i++) {
        if (s[i].panel != panel || !s[i].label || !s[i].label[0]) continue;
        rows++;
        tw = fmax(tw, text_width(cr, s[i].label));
    }
    if (!rows) return;
    double pad = 8 * st->s, sample = 30 * st->s, gap = 8 * st->s, rowh = 1.55 * st->f_legend;
    double w = pad + sample + gap + tw + pad, h = 2 * pad + rows * rowh - 0.3 * st->f_legend;
    double inset = 10 * st->s;
    /* candidate corners in order of preference: top right, top left, bottom right, bottom left */
    double cx[4] = {f->x1 - inset - w, f->x0 + inset, f->x1 - inset - w, f->x0 + inset};
    double cy[4] = {f->y0 + inset, f->y0 + inset, f->y1 - inset - h, f->y1 - inset - h};
    int best = 0;
    long best_n = -1;
    for (int c = 0; c < 4; c++) {
        long n = data_in_rect(f, s, ns, panel, cx[c] - 3, cy[c] - 3, cx[c] + w + 3, cy[c] + h + 3);
        if (best_n < 0 || n < best_n) { best = c; best_n = n; }
    }
    double x = cx[best], y = cy[best];

    cairo_save(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    cairo_rectangle(cr, x, y, w, h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    int row = 0;
    for (int i = 0; i < ns; i++) {
        if (s[i].panel != panel || !s[i].label || !s[i].label[0]) continue;
        double ym = y + pad + (row++ + 0.5) * rowh - 0.15 * st->f_legend;
        set_line_style(cr, st, &s[i]);
        cairo_move_to(cr, x + pad, ym);
        cairo_line_to(cr, x + pad + sample, ym);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, s[i].label, x + pad + sample + gap, ym, 0, 0.5);
    }
    cairo_restore(cr);
}

/* ---------------------------------------------------------------- the figure */
static int check_args(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
                      char *err, size_t errlen) {
    if (!png_path || !png_path[0]) { set_err(err, errlen, "plot: no output file name"); return -1; }
    if (!o) { set_err(err, errlen, "plot: no options"); return -1; }
    if (o->n_panels < 1 || o->n_panels > MAX_PANELS) {
        set_err(err, errlen, "plot: %d panels (must be 1..%d)", o->n_panels, MAX_PANELS);
        return -1;
    }
    if (o->width < 0 || o->height < 0 || o->width > 16000 || o->height > 16000 ||
        (o->width && o->width < 100 * o->n_panels) || (o->height && o->height < 100)) {
        set_err(err, errlen, "plot: figure size %d x %d out of range (100 px per panel .. 16000)",
                o->width, o->height);
        return -1;
    }
    if (ns < 0 || (ns > 0 && !s)) { set_err(err, errlen, "plot: bad series list"); return -1; }
    for (int i = 0; i < ns; i++) {
        if (s[i].panel < 0 || s[i].panel >= o->n_panels) {
            set_err(err, errlen, "plot: series %d (%s) is in panel %d, but there are %d panels", i,
                    s[i].label ? s[i].label : "unnamed", s[i].panel, o->n_panels);
            return -1;
        }
        if (s[i].n < 0 || (s[i].n > 0 && (!s[i].x || !s[i].y))) {
            set_err(err, errlen, "plot: series %d (%s) has no data", i,
                    s[i].label ? s[i].label : "unnamed");
            return -1;
        }
    }
    return 0;
}

static int lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns, int own_y,
                 char *err, size_t errlen) {
    if (check_args(png_path, o, s, ns, err, errlen)) return -1;
    int np = o->n_panels;
    int W = o->width ? o->width : (600 * np > 700 ? 600 * np : 700);
    int H = o->height ? o->height : 500;
    double cellw = (double)W / np;

    style st;
    st.s = fmax(0.8, fmin(H / 500.0, cellw / 450.0));
    st.f_title = 20 * st.s;
    st.f_panel = 17 * st.s;
    st.f_label = 15 * st.s;
    st.f_tick = 13 * st.s;
    st.f_legend = 13.5 * st.s;
    double S = st.s, pad = 14 * S, ticklen = 5 * S, gap = 6 * S;

    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H);
    cairo_t *cr = cairo_create(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        set_err(err, errlen, "plot: cannot create a %d x %d image: %s", W, H,
                cairo_status_to_string(cairo_status(cr)));
        cairo_destroy(cr);
        cairo_surface_destroy(surf);
        return -1;
    }
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);

    /* vertical layout, the same for all panels */
    double top = pad;
    if (o->title && o->title[0]) {
        font(cr, st.f_title, 1);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, o->title, W / 2.0, top, 0.5, 0);
        top += cap_height(cr) + 1.2 * st.f_title;
    }
    if (o->panel_titles) top += st.f_panel * 1.6;
    else top += 0.4 * st.f_tick; /* room for the top tick label */
    font(cr, st.f_tick, 0);
    double tick_h = cap_height(cr);
    font(cr, st.f_label, 0);
    double label_h = cap_height(cr);
    double bottom = H - pad - ticklen - gap - tick_h;
    if (o->xlabel && o->xlabel[0]) bottom -= 1.1 * gap + label_h + 0.35 * st.f_label;

    /* y axis: shared by all panels, or with own_y one per panel (fit to its data); the
     * left margin fits the widest tick label of any panel, so the panels stay equal */
    int yfixed = !own_y && isfinite(o->ymin) && isfinite(o->ymax) && o->ymin < o->ymax;
    int ytarget = (int)fmax(3, fmin(8, (bottom - top) / (65 * S)));
    axis ays[MAX_PANELS];
    for (int p = 0; p < np; p++) {
        double ylo, yhi;
        if (yfixed) {
            ays[p] = make_axis(o->ymin, o->ymax, ytarget, 0);
            continue;
        }
        if (!data_range(s, ns, own_y ? p : -1, 1, &ylo, &yhi)) { ylo = 0; yhi = 1; }
        if (ylo > 0 && ylo < 0.4 * yhi) ylo = 0; /* start near-zero positive data at 0 */
        if (yhi < 0 && yhi > 0.4 * ylo) yhi = 0;
        ays[p] = make_axis(ylo, yhi, ytarget, 1);
    }
    font(cr, st.f_tick, 0);
    double ytw = 0;
    char buf[64];
    for (int p = 0; p < np; p++)
        for (int k = tick_first(&ays[p]); k <= tick_last(&ays[p]); k++) {
            tick_label(buf, sizeof buf, tick_value(&ays[p], k), &ays[p]);
            ytw = fmax(ytw, text_width(cr, buf));
        }
    double left = pad + ytw + gap + ticklen;
    if (o->ylabel && o->ylabel[0]) left += label_h + 0.35 * st.f_label + 1.5 * gap;
    double right = 2 * pad;

    for (int p = 0; p < np; p++) {
        frame f;
        f.x0 = floor(p * cellw + left) + 0.5;
        f.x1 = floor((p + 1) * cellw - right) + 0.5;
        f.y0 = floor(top) + 0.5;
        f.y1 = floor(bottom) + 0.5;
        f.ay = ays[p];

        /* x axis: this panel's data, else all data; fewer ticks if the labels crowd */
        double xlo, xhi;
        if (!data_range(s, ns, p, 0, &xlo, &xhi) && !data_range(s, ns, -1, 0, &xlo, &xhi)) {
            xlo = 0; xhi = 1;
        }
        font(cr, st.f_tick, 0);
        for (int target = (int)fmax(2, fmin(10, (f.x1 - f.x0) / (80 * S)));; target--) {
            f.ax = make_axis(xlo, xhi, target, 1);
            double widest = 0;
            for (int k = tick_first(&f.ax); k <= tick_last(&f.ax); k++) {
                tick_label(buf, sizeof buf, tick_value(&f.ax, k), &f.ax);
                widest = fmax(widest, text_width(cr, buf));
            }
            double spacing = (f.x1 - f.x0) * f.ax.step / (f.ax.hi - f.ax.lo);
            if (widest + 3 * gap < spacing || target <= 2) break;
        }

        /* grid */
        cairo_set_line_width(cr, 1);
        cairo_set_source_rgb(cr, 0.91, 0.91, 0.91);
        for (int k = tick_first(&f.ax); k <= tick_last(&f.ax); k++) {
            double x = floor(map(&f.ax, tick_value(&f.ax, k), f.x0, f.x1)) + 0.5;
            cairo_move_to(cr, x, f.y0);
            cairo_line_to(cr, x, f.y1);
        }
        for (int k = tick_first(&f.ay); k <= tick_last(&f.ay); k++) {
            double y = floor(map(&f.ay, tick_value(&f.ay, k), f.y1, f.y0)) + 0.5;
            cairo_move_to(cr, f.x0, y);
            cairo_line_to(cr, f.x1, y);
        }
        cairo_stroke(cr);

        /* ticks and their labels */
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_set_line_width(cr, fmax(1, S));
        for (int k = tick_first(&f.ax); k <= tick_last(&f.ax); k++) {
            double x = floor(map(&f.ax, tick_value(&f.ax, k), f.x0, f.x1)) + 0.5;
            cairo_move_to(cr, x, f.y1);
            cairo_line_to(cr, x, f.y1 + ticklen);
            cairo_stroke(cr);
            tick_label(buf, sizeof buf, tick_value(&f.ax, k), &f.ax);
            text_at(cr, buf, x, f.y1 + ticklen + gap, 0.5, 0);
        }
        for (int k = tick_first(&f.ay); k <= tick_last(&f.ay); k++) {
            double y = floor(map(&f.ay, tick_value(&f.ay, k), f.y1, f.y0)) + 0.5;
            cairo_move_to(cr, f.x0 - ticklen, y);
            cairo_line_to(cr, f.x0, y);
            cairo_stroke(cr);
            tick_label(buf, sizeof buf, tick_value(&f.ay, k), &f.ay);
            text_at(cr, buf, f.x0 - ticklen - gap, y, 1, 0.5);
        }

        /* axis labels and panel title */
        font(cr, st.f_label, 0);
        cairo_set_source_rgb(cr, 0, 0, 0);
        if (o->xlabel && o->xlabel[0])
            text_at(cr, o->xlabel, (f.x0 + f.x1) / 2, f.y1 + ticklen + 2.1 * gap + tick_h + 0.35 * st.f_label, 0.5, 0);
        if (o->ylabel && o->ylabel[0]) {
            cairo_save(cr);
            cairo_translate(cr, p * cellw + pad, (f.y0 + f.y1) / 2);
            cairo_rotate(cr, -PI / 2);
            text_at(cr, o->ylabel, 0, 0, 0.5, 0);
            cairo_restore(cr);
        }
        if (o->panel_titles && o->panel_titles[p]) {
            font(cr, st.f_panel, 0);
            text_at(cr, o->panel_titles[p], (f.x0 + f.x1) / 2, f.y0 - 0.6 * st.f_panel, 0.5, 1);
        }

        /* data, clipped to the plot area plus a dot's radius, so lines and dots on the edge stay whole */
        cairo_save(cr);
        cairo_rectangle(cr, f.x0 - 4 * S, f.y0 - 4 * S, f.x1 - f.x0 + 8 * S, f.y1 - f.y0 + 8 * S);
        cairo_clip(cr);
        for (int i = 0; i < ns; i++)
            if (s[i].panel == p) draw_series(cr, &st, &f, &s[i]);
        cairo_restore(cr);

        /* frame on top of the data, then the legend */
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
        cairo_stroke(cr);
        draw_legend(cr, &st, &f, s, ns, p);
    }

    int rc = 0;
    cairo_status_t cs = cairo_status(cr);
    if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_write_to_png(surf, png_path);
    if (cs != CAIRO_STATUS_SUCCESS) {
        set_err(err, errlen, "plot: cannot write %s: %s", png_path, cairo_status_to_string(cs));
        rc = -1;
    }
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return rc;
}

int plot_lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
               char *err, size_t errlen) {
    return lines(png_path, o, s, ns, 0, err, errlen);
}

int plot_lines_own_y(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
                     char *err, size_t errlen) {
    return lines(png_path, o, s, ns, 1, err, errlen);
}

/* ================================================================ pictures of data
 * Grids of small images and line plots: colour maps, float images turned into cairo
 * surfaces, and the figures built from them (confusion matrix, masks, heatmaps,
 * signals, filters, feature maps). */
#include <stdlib.h>

#define MAX_SIDE 16000 /* the largest picture side we write */

/* Colour maps as evenly spaced anchors, interpolated linearly. */
static const double viridis[][3] = {
    {0.267, 0.005, 0.329}, {0.282, 0.141, 0.459}, {0.255, 0.267, 0.529}, {0.208, 0.373, 0.553},
    {0.165, 0.471, 0.557}, {0.129, 0.569, 0.549}, {0.133, 0.659, 0.518}, {0.267, 0.749, 0.439},
    {0.478, 0.820, 0.318}, {0.741, 0.875, 0.149}, {0.992, 0.906, 0.145}};
static const double inferno[][3] = {
    {0.000, 0.000, 0.016}, {0.086, 0.043, 0.224}, {0.259, 0.039, 0.408}, {0.416, 0.090, 0.431},
    {0.576, 0.149, 0.404}, {0.737, 0.216, 0.329}, {0.867, 0.318, 0.227}, {0.953, 0.471, 0.098},
    {0.988, 0.647, 0.039}, {0.965, 0.843, 0.275}, {0.988, 1.000, 0.643}};
static const double rdbu[][3] = { /* ColorBrewer RdBu, blue for negative */
    {0.129, 0.400, 0.675}, {0.573, 0.773, 0.871}, {0.969, 0.969, 0.969}, {0.957, 0.647, 0.510},
    {0.698, 0.094, 0.169}};
static const double blues[][3] = {
    {0.969, 0.984, 1.000}, {0.871, 0.922, 0.969}, {0.776, 0.859, 0.937}, {0.620, 0.792, 0.882},
    {0.420, 0.682, 0.839}, {0.259, 0.573, 0.776}, {0.129, 0.443, 0.710}, {0.031, 0.318, 0.612},
    {0.031, 0.188, 0.420}};
#define CMAP(t) (t), (int)(sizeof(t) / sizeof((t)[0]))

static void cmap_rgb(const double (*t)[3], int n, double v, double rgb[3]) {
    if (!(v > 0)) v = 0; /* NaN too */
    if (v > 1) v = 1;
    double u = v * (n - 1);
    int i = (int)u;
    if (i >= n - 1) i = n - 2;
    u -= i;
    for (int k = 0; k < 3; k++) rgb[k] = t[i][k] + u * (t[i + 1][k] - t[i][k]);
}

/* Mask colours, one per class 1, 2, ... (class 0 is the transparent background). */
static const double class_colors[][3] = {
    {0.902, 0.624, 0.000}, {0.337, 0.706, 0.914}, {0.000, 0.620, 0.451}, {0.941, 0.894, 0.259},
    {0.000, 0.447, 0.698}, {0.835, 0.369, 0.000}, {0.800, 0.475, 0.655}, {0.600, 0.600, 0.600},
    {0.550, 0.300, 0.150}, {0.500, 0.850, 0.200}, {0.950, 0.300, 0.550}, {0.300, 0.300, 0.900}};
#define N_CLASS_COLORS ((int)(sizeof class_colors / sizeof class_colors[0]))

static uint32_t argb(double a, double r, double g, double b) { /* premultiplied, as cairo stores it */
    uint32_t A = (uint32_t)lround(fmin(fmax(a, 0), 1) * 255);
    uint32_t R = (uint32_t)lround(fmin(fmax(r * a, 0), 1) * 255);
    uint32_t G = (uint32_t)lround(fmin(fmax(g * a, 0), 1) * 255);
    uint32_t B = (uint32_t)lround(fmin(fmax(b * a, 0), 1) * 255);
    return A << 24 | R << 16 | G << 8 | B;
}

static void minmax(const float *x, size_t n, double *lo, double *hi) {
    *lo = INFINITY; *hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) { *lo = fmin(*lo, x[i]); *hi = fmax(*hi, x[i]); }
    if (!(*lo <= *hi)) { *lo = 0; *hi = 1; }
}

/* An opaque surface of one (channels, h, w) image: min-max scaled grey, RGB, or a colour
 * map; PLOT_DIVERGING takes values in [-1, 1] as they are. NULL when out of memory. */
static cairo_surface_t *image_surface(const float *x, int channels, int h, int w, plot_cmap cmap, int rgb) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); return NULL; }
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    size_t plane = (size_t)h * w;
    int colour = rgb && channels == 3 && (cmap == PLOT_GREY || cmap == PLOT_UNIT);
    double lo = 0, hi = 1;
    if (cmap == PLOT_GREY || cmap == PLOT_VIRIDIS) minmax(x, colour ? 3 * plane : plane, &lo, &hi);
    double range = hi > lo ? hi - lo : 1;
    for (int i = 0; i < h; i++) {
        uint32_t *row = (uint32_t *)(data + (size_t)i * stride);
        for (int j = 0; j < w; j++) {
            size_t k = (size_t)i * w + j;
            double c[3], v = (x[k] - lo) / range;
            if (colour) {
                for (int q = 0; q < 3; q++) c[q] = (x[q * plane + k] - lo) / range;
            } else if (cmap == PLOT_VIRIDIS) {
                cmap_rgb(CMAP(viridis), v, c);
            } else if (cmap == PLOT_DIVERGING) {
                cmap_rgb(CMAP(rdbu), (x[k] + 1) / 2, c);
            } else {
                c[0] = c[1] = c[2] = isfinite(v) ? v : 0;
            }
            row[j] = argb(1, c[0], c[1], c[2]);
        }
    }
    cairo_surface_mark_dirty(s);
    return s;
}

/* Paints surface s (w x h pixels) into the rectangle (x, y, dw, dh); nearest-neighbour
 * when enlarging pixels should stay visible, bilinear for smooth overlays. */
static void paint_surface(cairo_t *cr, cairo_surface_t *s, int w, int h, double x, double y,
                          double dw, double dh, int nearest) {
    cairo_save(cr);
    cairo_rectangle(cr, x, y, dw, dh);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, dw / w, dh / h);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), nearest ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_BILINEAR);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
    cairo_paint(cr);
    cairo_restore(cr);
}

typedef struct {
    cairo_surface_t *surf;
    cairo_t *cr;
} canvas;

static int canvas_open(canvas *c, const char *png, double W, double H, const char *what) {
    c->surf = NULL; c->cr = NULL;
    plot_err[0] = 0;
    if (!png || !png[0]) return fail("%s: no output file name", what);
    if (!(W >= 1 && H >= 1 && W <= MAX_SIDE && H <= MAX_SIDE))
        return fail("%s: a picture of %.0f x %.0f pixels is too large (at most %d a side): show fewer items",
                    what, W, H, MAX_SIDE);
    c->surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)ceil(W), (int)ceil(H));
    c->cr = cairo_create(c->surf);
    if (cairo_status(c->cr) != CAIRO_STATUS_SUCCESS) {
        int rc = fail("%s: cannot create a %.0f x %.0f image: %s", what, W, H, cairo_status_to_string(cairo_status(c->cr)));
        cairo_destroy(c->cr);
        cairo_surface_destroy(c->surf);
        return rc;
    }
    cairo_set_source_rgb(c->cr, 1, 1, 1);
    cairo_paint(c->cr);
    return 0;
}

static int canvas_close(canvas *c, const char *png, const char *what) {
    int rc = 0;
    cairo_status_t cs = cairo_status(c->cr);
    if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_write_to_png(c->surf, png);
    if (cs != CAIRO_STATUS_SUCCESS) rc = fail("%s: cannot write %s: %s", what, png, cairo_status_to_string(cs));
    cairo_destroy(c->cr);
    cairo_surface_destroy(c->surf);
    return rc;
}

static int check_dims(const char *what, const void *x, int n, int channels, int h, int w) {
    if (!x) return fail("%s: no data", what);
    if (n < 1 || channels < 1 || h < 1 || w < 1)
        return fail("%s: bad shape (%d, %d, %d, %d)", what, n, channels, h, w);
    if ((double)h * w > 1e8) return fail("%s: images of %d x %d are too large", what, h, w);
    return 0;
}

/* Display size of one h x w image: whole-number enlargement up to about `target` pixels
 * on the longer side; larger images are shrunk to 2 * target. */
static double display_scale(int h, int w, double target) {
    int m = h > w ? h : w;
    if (m <= target) return fmax(1, floor(target / m));
    return m > 2 * target ? 2 * target / m : 1;
}

static void caption(cairo_t *cr, const char *t, double x, double y, double size, int bold) {
    font(cr, size, bold);
    text_at(cr, t, x, y, 0.5, 0);
}

/* ---------------------------------------------------------------- image grid */
static void grid_shape(int n, int cols, int *c, int *r) {
    if (cols <= 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    *c = cols;
    *r = (n + cols - 1) / cols;
}

int plot_image_grid(const char *png, const char *title, const float *x, int n, int channels,
                    int h, int w, int cols, plot_cmap cmap, int rgb, const char *const *captions) {
    const char *what = "image grid";
    if (check_dims(what, x, n, channels, h, w)) return -1;
    int nc, nr;
    grid_shape(n, cols, &nc, &nr);
    double sc = display_scale(h, w, 96), cw = w * sc, ch = h * sc;
    double gap = 8, fs = 11, caph = captions ? fs * 1.6 : 0, titleh = title && title[0] ? 34 : 8;
    double cellw = fmax(cw, captions ? 40 : 0) + gap;
    double W = fmax(nc * cellw + gap, title ? 360 : 0), H = titleh + nr * (ch + caph + gap) + gap;
    canvas c;
    if (canvas_open(&c, png, W, H, what)) return -1;
    cairo_t *cr = c.cr;
    if (title && title[0]) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        caption(cr, title, W / 2, 10, 14, 1);
    }
    double x0 = (W - nc * cellw) / 2 + gap / 2;
    size_t per = (size_t)channels * h * w;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int r = i / nc, q = i % nc;
        double px = x0 + q * cellw + (cellw - gap - cw) / 2, py = titleh + r * (ch + caph + gap);
        cairo_surface_t *s = image_surface(x + i * per, channels, h, w, cmap, rgb);
        if (!s) { rc = fail("%s: out of memory", what); break; }
        paint_surface(cr, s, w, h, px, py + caph, cw, ch, 1);
        cairo_surface_destroy(s);
        cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, floor(px) - 0.5, floor(py + caph) - 0.5, ceil(cw) + 1, ceil(ch) + 1);
        cairo_stroke(cr);
        if (captions && captions[i]) {
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            caption(cr, captions[i], px + cw / 2, py + 0.3 * fs, fs, 0);
        }
    }
    if (rc) { cairo_destroy(cr); cairo_surface_destroy(c.surf); return rc; }
    return canvas_close(&c, png, what);
}

/* ---------------------------------------------------------------- signal grid */
/* One small line plot: channels lines of `length` points in the box (x, y, w, h) over
 * the y range [lo, hi], with a frame and the zero line. */
static void draw_signal(cairo_t *cr, const float *s, int channels, int length, double lo, double hi,
                        double x, double y, double w, double h) {
    cairo_set_source_rgb(cr, 0.97, 0.97, 0.97);
    cairo_rectangle(cr, x, y, w, h);
    cairo_fill(cr);
    double pad = 4, span = hi > lo ? hi - lo : 1;
#define SY(v) (y + h - pad - ((v) - lo) / span * (h - 2 * pad))
#define SX(j) (x + pad + (length > 1 ? (double)(j) / (length - 1) : 0.5) * (w - 2 * pad))
    if (lo < 0 && hi > 0) {
        cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, x, floor(SY(0)) + 0.5);
        cairo_line_to(cr, x + w, floor(SY(0)) + 0.5);
        cairo_stroke(cr);
    }
    cairo_set_line_width(cr, 1.6);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int k = 0; k < channels; k++) {
        const double *col = palette[k % N_COLORS];
        cairo_set_source_rgb(cr, col[0], col[1], col[2]);
        const float *v = s + (size_t)k * length;
        int run = 0;
        for (int j = 0; j < length; j++) {
            if (!isfinite(v[j])) { run = 0; continue; }
            if (run++) cairo_line_to(cr, SX(j), SY(v[j]));
            else cairo_move_to(cr, SX(j), SY(v[j]));
            if (length == 1) cairo_arc(cr, SX(j), SY(v[j]), 2, 0, 2 * PI);
        }
        cairo_stroke(cr);
    }
#undef SX
#undef SY
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, floor(x) + 0.5, floor(y) + 0.5, floor(w), floor(h));
    cairo_stroke(cr);
}

int plot_signal_grid(const char *png, const char *title, const float *x, int n, int channels,
                     int length, int cols, int shared_y, const char *const *captions) {
    const char *what = "signal grid";
    if (check_dims(what, x, n, channels, 1, length)) return -1;
    int nc, nr;
    grid_shape(n, cols, &nc, &nr);
    double cw = 200, ch = 110, gap = 10, fs = 12, caph = captions ? fs * 1.7 : 0;
    double titleh = title && title[0] ? 36 : 8;
    double W = fmax(nc * (cw + gap) + gap, 360), H = titleh + nr * (ch + caph + gap) + gap;
    canvas c;
    if (canvas_open(&c, png, W, H, what)) return -1;
    cairo_t *cr = c.cr;
    if (title && title[0]) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        caption(cr, title, W / 2, 10, 14, 1);
    }
    size_t per = (size_t)channels * length;
    double glo, ghi;
    minmax(x, per * n, &glo, &ghi);
    double x0 = (W - nc * (cw + gap)) / 2 + gap / 2;
    for (int i = 0; i < n; i++) {
        int r = i / nc, q = i % nc;
        double px = x0 + q * (cw + gap), py = titleh + r * (ch + caph + gap);
        double lo = glo, hi = ghi;
        if (!shared_y) minmax(x + i * per, per, &lo, &hi);
        draw_signal(cr, x + i * per, channels, length, lo, hi, px, py + caph, cw, ch);
        if (captions && captions[i]) {
            const char *t = captions[i];
            if (t[0] == '!') { cairo_set_source_rgb(cr, 0.8, 0.1, 0.1); t++; }
            else cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            caption(cr, t, px + cw / 2, py + 0.3 * fs, fs, 0);
        }
    }
    return canvas_close(&c, png, what);
}

int plot_signals(const char *png, const float *x, int n, int channels, int length,
                 const int32_t *labels, const int32_t *pred) {
    if (check_dims("signals", x, n, channels, 1, length)) return -1;
    char **cap = NULL, *buf = NULL;
    if (labels || pred) {
        cap = malloc(sizeof(char *) * n);
        buf = malloc((size_t)n * 64);
        if (!cap || !buf) { free(cap); free(buf); return fail("signals: out of memory"); }
        for (int i = 0; i < n; i++) {
            cap[i] = buf + (size_t)i * 64;
            if (labels && pred)
                snprintf(cap[i], 64, "%slabel %d, predicted %d", labels[i] != pred[i] ? "!" : "",
                         (int)labels[i], (int)pred[i]);
            else snprintf(cap[i], 64, "%s %d", labels ? "label" : "predicted", (int)(labels ? labels[i] : pred[i]));
        }
    }
    int rc = plot_signal_grid(png, NULL, x, n, channels, length, 0, 1, (const char *const *)cap);
    free(cap);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- confusion matrix */
int plot_confusion(const char *png, const int64_t *counts, int classes, const char *const *names) {
    const char *what = "confusion matrix";
    if (!counts) return fail("%s: no counts", what);
    if (classes < 1 || classes > 1000) return fail("%s: %d classes (must be 1..1000)", what, classes);
    double cs = fmin(56, fmax(12, 640.0 / classes)), fs_name = fmin(13, fmax(7, cs * 0.45));
    double fs_count = fmin(13, cs * 0.3);
    int show_counts = cs >= 22;
    char num[32];
    /* measure the names to size the margins */
    canvas m;
    if (canvas_open(&m, png, 10, 10, what)) return -1;
    font(m.cr, fs_name, 0);
    double namew = 0;
    for (int i = 0; i < classes; i++) {
        const char *nm = names && names[i] ? names[i] : (snprintf(num, sizeof num, "%d", i), num);
        namew = fmax(namew, text_width(m.cr, nm));
    }
    cairo_destroy(m.cr);
    cairo_surface_destroy(m.surf);
    double left = 40 + namew + 8, top = 50, bottom = namew * 0.75 + 50, right = 70;
    double W = left + classes * cs + right, H = top + classes * cs + bottom;
    W = fmax(W, 420);
    canvas c;
    if (canvas_open(&c, png, W, H, what)) return -1;
    cairo_t *cr = c.cr;
    cairo_set_source_rgb(cr, 0, 0, 0);
    int64_t total = 0, right_n = 0;
    for (int t = 0; t < classes; t++)
        for (int p = 0; p < classes; p++) {
            total += counts[(size_t)t * classes + p];
            if (t == p) right_n += counts[(size_t)t * classes + p];
        }
    char title[128];
    snprintf(title, sizeof title, "confusion matrix: %lld samples, accuracy %.2f %%", (long long)total,
             total ? 100.0 * right_n / total : 0.0);
    caption(cr, title, W / 2, 12, 14, 1);
    for (int t = 0; t < classes; t++) {
        int64_t row = 0;
        for (int p = 0; p < classes; p++) row += counts[(size_t)t * classes + p];
        for (int p = 0; p < classes; p++) {
            int64_t v = counts[(size_t)t * classes + p];
            double share = row > 0 ? (double)v / row : 0, rgb[3];
            cmap_rgb(CMAP(blues), share, rgb);
            double x = left + p * cs, y = top + t * cs;
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, x, y, cs, cs);
            cairo_fill(cr);
            if (show_counts) {
                snprintf(num, sizeof num, "%lld", (long long)v);
                font(cr, fs_count, t == p);
                if (text_width(cr, num) < cs - 2) {
                    if (share > 0.5) cairo_set_source_rgb(cr, 1, 1, 1);
                    else cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
                    text_at(cr, num, x + cs / 2, y + cs / 2, 0.5, 0.5);
                }
            }
        }
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, floor(left) + 0.5, floor(top) + 0.5, floor(classes * cs), floor(classes * cs));
    cairo_stroke(cr);
    /* class names: rows on the left, columns below (turned 45 degrees) */
    font(cr, fs_name, 0);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    for (int i = 0; i < classes; i++) {
        const char *nm = names && names[i] ? names[i] : (snprintf(num, sizeof num, "%d", i), num);
        text_at(cr, nm, left - 6, top + (i + 0.5) * cs, 1, 0.5);
        cairo_save(cr);
        cairo_translate(cr, left + (i + 0.5) * cs, top + classes * cs + 6);
        cairo_rotate(cr, -PI / 4);
        text_at(cr, nm, 0, 0, 1, 0.5);
        cairo_restore(cr);
    }
    font(cr, 13, 0);
    text_at(cr, "predicted class", left + classes * cs / 2, H - 22, 0.5, 0.5);
    cairo_save(cr);
    cairo_translate(cr, 16, top + classes * cs / 2);
    cairo_rotate(cr, -PI / 2);
    text_at(cr, "true class", 0, 0, 0.5, 0.5);
    cairo_restore(cr);
    /* colour bar: the share of the true class's samples */
    double bx = left + classes * cs + 20, bh = fmin(classes * cs, 240);
    for (int k = 0; k < 64; k++) {
        double rgb[3];
        cmap_rgb(CMAP(blues), 1 - (k + 0.5) / 64, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, bx, top + k * bh / 64, 12, bh / 64 + 0.5);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    font(cr, 10, 0);
    text_at(cr, "100%", bx + 16, top, 0, 0);
    text_at(cr, "0%", bx + 16, top + bh, 0, 1);
    return canvas_close(&c, png, what);
}

/* ---------------------------------------------------------------- masks and heatmaps */
/* A transparent surface with each pixel of class 1..classes-1 in its colour. */
static cairo_surface_t *mask_surface(const int32_t *m, int h, int w, int classes, double alpha) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); return NULL; }
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int i = 0; i < h; i++) {
        uint32_t *row = (uint32_t *)(data + (size_t)i * stride);
        for (int j = 0; j < w; j++) {
            int32_t c = m[(size_t)i * w + j];
            if (c <= 0 || c >= classes) { row[j] = 0; continue; }
            const double *col = class_colors[(c - 1) % N_CLASS_COLORS];
            row[j] = argb(alpha, col[0], col[1], col[2]);
        }
    }
    cairo_surface_mark_dirty(s);
    return s;
}

/* Column headers on top of a row-per-image figure. */
static void headers(cairo_t *cr, const char *const *t, int n, double x0, double cellw, double y) {
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (int i = 0; i < n; i++) caption(cr, t[i], x0 + (i + 0.5) * cellw, y, 13, 1);
}

int plot_masks(const char *png, const float *images, int n, int channels, int h, int w,
               const int32_t *truth, const int32_t *pred, int classes) {
    const char *what = "masks";
    if (check_dims(what, images, n, channels, h, w)) return -1;
    if (classes < 2) return fail("%s: %d classes (at least 2: background and one more)", what, classes);
    const char *heads[3];
    const int32_t *cols[3];
    int nc = 0;
    heads[nc] = "image"; cols[nc++] = NULL;
    if (truth) { heads[nc] = "true mask"; cols[nc++] = truth; }
    if (pred) { heads[nc] = "predicted mask"; cols[nc++] = pred; }
    double sc = display_scale(h, w, 160), cw = w * sc, ch = h * sc, gap = 10;
    double cellw = cw + gap, top = 34, legend = 34;
    double W = fmax(nc * cellw + gap, 420), H = top + n * (ch + gap) + legend;
    canvas c;
    if (canvas_open(&c, png, W, H, what)) return -1;
    cairo_t *cr = c.cr;
    double x0 = (W - nc * cellw) / 2;
    headers(cr, heads, nc, x0, cellw, 10);
    size_t per = (size_t)channels * h * w, plane = (size_t)h * w;
    for (int i = 0; i < n; i++) {
        cairo_surface_t *img = image_surface(images + i * per, channels, h, w, PLOT_GREY, 1);
        if (!img) { cairo_destroy(cr); cairo_surface_destroy(c.surf); return fail("%s: out of memory", what); }
        for (int k = 0; k < nc; k++) {
            double px = x0 + k * cellw + gap / 2, py = top + i * (ch + gap);
            paint_surface(cr, img, w, h, px, py, cw, ch, 1);
            if (cols[k]) {
                cairo_surface_t *ms = mask_surface(cols[k] + i * plane, h, w, classes, 0.55);
                if (ms) { paint_surface(cr, ms, w, h, px, py, cw, ch, 1); cairo_surface_destroy(ms); }
            }
        }
        cairo_surface_destroy(img);
    }
    /* legend: the class colours */
    font(cr, 11, 0);
    double lx = 10, ly = H - legend / 2;
    for (int k = 1; k < classes && lx < W - 60; k++) {
        const double *col = class_colors[(k - 1) % N_CLASS_COLORS];
        cairo_set_source_rgb(cr, col[0], col[1], col[2]);
        cairo_rectangle(cr, lx, ly - 6, 12, 12);
        cairo_fill(cr);
        char t[32];
        snprintf(t, sizeof t, "class %d", k);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, t, lx + 16, ly, 0, 0.5);
        lx += 16 + text_width(cr, t) + 14;
    }
    return canvas_close(&c, png, what);
}

/* The maximum over joints of one sample's heatmaps (joints, hh, hw) as an overlay: the
 * inferno colour map with opacity growing with the value, scaled by the largest value;
 * *peak receives that value. */
static cairo_surface_t *heat_surface(const float *heat, int joints, int hh, int hw, double *peak) {
    size_t plane = (size_t)hh * hw;
    float *mx = malloc(sizeof(float) * plane);
    if (!mx) return NULL;
    *peak = 0;
    for (size_t k = 0; k < plane; k++) {
        float v = -INFINITY;
        for (int j = 0; j < joints; j++) v = fmaxf(v, heat[j * plane + k]);
        mx[k] = v;
        if (isfinite(v)) *peak = fmax(*peak, v);
    }
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, hw, hh);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) { cairo_surface_destroy(s); free(mx); return NULL; }
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int i = 0; i < hh; i++) {
        uint32_t *row = (uint32_t *)(data + (size_t)i * stride);
        for (int j = 0; j < hw; j++) {
            double v = *peak > 0 ? mx[(size_t)i * hw + j] / *peak : 0, rgb[3];
            if (!(v > 0)) v = 0;
            cmap_rgb(CMAP(inferno), 0.25 + 0.75 * v, rgb);
            row[j] = argb(0.9 * v, rgb[0], rgb[1], rgb[2]);
        }
    }
    cairo_surface_mark_dirty(s);
    free(mx);
    return s;
}

/* A cross at every joint's maximum, where the map has one (a joint that is absent from the
 * image has an empty map: no cross, rather than one in the corner). */
static void mark_peaks(cairo_t *cr, const float *heat, int joints, int hh, int hw, double x, double y,
                       double cw, double ch) {
    size_t plane = (size_t)hh * hw;
    for (int j = 0; j < joints; j++) {
        size_t best = 0;
        for (size_t k = 1; k < plane; k++)
            if (heat[j * plane + k] > heat[j * plane + best]) best = k;
        if (!(heat[j * plane + best] > 0.1f)) continue;
        double px = x + ((double)(best % hw) + 0.5) / hw * cw, py = y + ((double)(best / hw) + 0.5) / hh * ch;
        for (int pass = 0; pass < 2; pass++) {
            cairo_set_line_width(cr, pass ? 1.5 : 3.5);
            if (pass) cairo_set_source_rgb(cr, 1, 1, 1);
            else cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_move_to(cr, px - 4, py - 4); cairo_line_to(cr, px + 4, py + 4);
            cairo_move_to(cr, px - 4, py + 4); cairo_line_to(cr, px + 4, py - 4);
            cairo_stroke(cr);
        }
    }
}

int plot_heatmaps(const char *png, const float *images, int n, int channels, int h, int w,
                  const float *heat, int joints, int hh, int hw, const float *truth_heat) {
    const char *what = "heatmaps";
    if (check_dims(what, images, n, channels, h, w) || check_dims(what, heat, n, joints, hh, hw)) return -1;
    const char *heads[3] = {"image", "predicted heatmaps", "true heatmaps"};
    const float *cols[3] = {NULL, heat, truth_heat};
    int nc = truth_heat ? 3 : 2;
    double sc = display_scale(h, w, 160), cw = w * sc, ch = h * sc, gap = 10, caph = 16;
    double cellw = cw + gap, top = 34;
    double W = fmax(nc * cellw + gap, 420), H = top + n * (ch + caph + gap);
    canvas c;
    if (canvas_open(&c, png, W, H, what)) return -1;
    cairo_t *cr = c.cr;
    double x0 = (W - nc * cellw) / 2;
    headers(cr, heads, nc, x0, cellw, 10);
    size_t per = (size_t)channels * h * w, hper = (size_t)joints * hh * hw;
    for (int i = 0; i < n; i++) {
        cairo_surface_t *img = image_surface(images + i * per, channels, h, w, PLOT_GREY, 1);
        if (!img) { cairo_destroy(cr); cairo_surface_destroy(c.surf); return fail("%s: out of memory", what); }
        for (int k = 0; k < nc; k++) {
            double px = x0 + k * cellw + gap / 2, py = top + i * (ch + caph + gap);
            paint_surface(cr, img, w, h, px, py, cw, ch, 1);
            if (!cols[k]) continue;
            double peak = 0;
            cairo_surface_t *hs = heat_surface(cols[k] + i * hper, joints, hh, hw, &peak);
            if (hs) { paint_surface(cr, hs, hw, hh, px, py, cw, ch, 0); cairo_surface_destroy(hs); }
            mark_peaks(cr, cols[k] + i * hper, joints, hh, hw, px, py, cw, ch);
            char t[48];
            snprintf(t, sizeof t, "largest value %.3g", peak);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            caption(cr, t, px + cw / 2, py + ch + 4, 11, 0);
        }
        cairo_surface_destroy(img);
    }
    return canvas_close(&c, png, what);
}

#endif /* ST_HAVE_CAIRO */
