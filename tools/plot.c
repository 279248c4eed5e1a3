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

#ifndef ST_HAVE_CAIRO

int plot_lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
               char *err, size_t errlen) {
    (void)png_path; (void)o; (void)s; (void)ns;
    set_err(err, errlen, "stride was built without cairo (install libcairo2-dev and rebuild)");
    return -1;
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

int plot_lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
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

    /* y axis, shared by all panels */
    double ylo, yhi;
    int yfixed = isfinite(o->ymin) && isfinite(o->ymax) && o->ymin < o->ymax;
    int ytarget = (int)fmax(3, fmin(8, (bottom - top) / (65 * S)));
    axis ay;
    if (yfixed) {
        ay = make_axis(o->ymin, o->ymax, ytarget, 0);
    } else {
        if (!data_range(s, ns, -1, 1, &ylo, &yhi)) { ylo = 0; yhi = 1; }
        if (ylo > 0 && ylo < 0.4 * yhi) ylo = 0; /* start near-zero positive data at 0 */
        if (yhi < 0 && yhi > 0.4 * ylo) yhi = 0;
        ay = make_axis(ylo, yhi, ytarget, 1);
    }
    font(cr, st.f_tick, 0);
    double ytw = 0;
    char buf[64];
    for (int k = tick_first(&ay); k <= tick_last(&ay); k++) {
        tick_label(buf, sizeof buf, tick_value(&ay, k), &ay);
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
        f.ay = ay;

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

#endif /* ST_HAVE_CAIRO */
