/* plan.c - placing buffers with known lifetimes in one arena (the memory planner).
 *
 * A pass over a network is a sequence of steps (forward of node 1, 2, ..., the loss,
 * backward of the last node, ..., of node 1). Each activation or gradient buffer is
 * needed from the step that first writes it to the step that last reads it; net.c works
 * these intervals out from the graph. Two buffers whose intervals are disjoint may share
 * memory, so the arena only has to hold what is live at the busiest step, not the sum
 * of everything.
 *
 * Finding the smallest arena is NP-hard (it is a dynamic storage allocation problem);
 * the greedy rule used here is the one TensorFlow Lite and ggml-alloc use in spirit:
 * take the buffers from the largest to the smallest and put each at the lowest offset
 * where it overlaps no already placed buffer that is live at a common step. Large
 * buffers go first because they are the hardest to fit in gaps; small ones then fill
 * the holes between them. For the chains of convolutions in CNNs it is close to the
 * lower bound (the largest total live at one step). Cost O(n^2) for n buffers, paid
 * once per network and batch size.
 */
#include "net.h"

#include <stdlib.h>

/* The sort key of a buffer: largest first; ties by first step, then by index, so the
 * plan never depends on qsort's order of equal elements. */
typedef struct { size_t size; int first, index; } order_key;

static int by_size(const void *a, const void *b) {
    const order_key *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

size_t st_plan_place(st_live *bufs, int n) {
    order_key *order = malloc(sizeof *order * (n > 0 ? n : 1));
    int *placed = malloc(sizeof(int) * (n > 0 ? n : 1)); /* placed buffers, by offset */
    if (!order || !placed) {
        free(order);
        free(placed);
        st_fail(ST_ERR_NOMEM, "out of memory for the memory plan");
        return (size_t)-1;
    }
    for (int i = 0; i < n; i++) {
        bufs[i].size = (bufs[i].size + 15) & ~(size_t)15;
        bufs[i].offset = 0;
        order[i] = (order_key){bufs[i].size, bufs[i].first, i};
    }
    qsort(order, (size_t)n, sizeof *order, by_size);
    size_t total = 0;
    int nplaced = 0;
    for (int k = 0; k < n; k++) {
        st_live *b = &bufs[order[k].index];
        if (b->size == 0) continue;
        /* lowest gap: walk the placed buffers by offset, skipping those not live with b */
        size_t at = 0;
        for (int q = 0; q < nplaced; q++) {
            const st_live *c = &bufs[placed[q]];
            if (c->last < b->first || b->last < c->first) continue;
            if (c->offset >= at + b->size) break;
            if (c->offset + c->size > at) at = c->offset + c->size;
        }
        b->offset = at;
        int ins = nplaced;
        while (ins > 0 && bufs[placed[ins - 1]].offset > at) ins--;
        for (int q = nplaced; q > ins; q--) placed[q] = placed[q - 1];
        placed[ins] = order[k].index;
        nplaced++;
        if (at + b->size > total) total = at + b->size;
    }
    free(order);
    free(placed);
    return total;
}
