/* freelist.c — walk SQLite's free list (see freelist.h). */
#include "storage/freelist.h"

#include "storage/page.h"

void freelist_walk(const uint8_t *page1, size_t usable, uint64_t npages, freelist_page_fn get,
                   freelist_leaf_fn leaf, void *arg)
{
    uint32_t trunk = page_get32(page1 + 32);
    for (uint64_t hops = 0; trunk && trunk <= npages && hops < npages; hops++) {
        const uint8_t *t = get(arg, trunk);
        if (!t)
            return;
        uint32_t next = page_get32(t), n = page_get32(t + 4);
        for (uint32_t i = 0; i < n && 8 + 4 * (size_t)i + 4 <= usable; i++)
            leaf(arg, page_get32(t + 8 + 4 * (size_t)i));
        trunk = next;
    }
}
