/*
 * An intrusive doubly linked queue, as nginx's ngx_queue_t: a gl_queue_t
 * lives inside each element, and a sentinel gl_queue_t is the head.  Every
 * operation is O(1) and allocates nothing.  A removed element has NULL
 * links, so gl_queue_linked() tells whether it is in a queue.
 */
#ifndef GL_QUEUE_H
#define GL_QUEUE_H

#include "gl_core.h"

typedef struct gl_queue_s  gl_queue_t;

struct gl_queue_s {
    gl_queue_t  *prev;
    gl_queue_t  *next;
};

#define gl_queue_init(h)        ((h)->prev = (h), (h)->next = (h))
#define gl_queue_empty(h)       ((h)->next == (h))
#define gl_queue_head(h)        ((h)->next)
#define gl_queue_last(h)        ((h)->prev)
#define gl_queue_sentinel(h)    (h)
#define gl_queue_next(q)        ((q)->next)
#define gl_queue_linked(q)      ((q)->next != NULL)

/* the element that holds link q */
#define gl_queue_data(q, type, link)                                         \
    ((type *) ((u_char *) (q) - offsetof(type, link)))

static inline void
gl_queue_insert_tail(gl_queue_t *h, gl_queue_t *x)
{
    x->prev = h->prev;
    x->prev->next = x;
    x->next = h;
    h->prev = x;
}

static inline void
gl_queue_insert_head(gl_queue_t *h, gl_queue_t *x)
{
    x->next = h->next;
    x->next->prev = x;
    x->prev = h;
    h->next = x;
}

static inline void
gl_queue_remove(gl_queue_t *x)
{
    x->next->prev = x->prev;
    x->prev->next = x->next;
    x->prev = NULL;
    x->next = NULL;
}

/* moves every element of from to the tail of to; from is left empty */
static inline void
gl_queue_move(gl_queue_t *to, gl_queue_t *from)
{
    if (gl_queue_empty(from)) {
        return;
    }

    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    gl_queue_init(from);
}

#endif /* GL_QUEUE_H */
