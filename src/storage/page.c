/*
 * page.c — seal and open one page in the format of page.h.
 *
 * The only place that knows the trailer layout and the associated data.
 * page_seal runs the inner layer first, then the outer one over the inner
 * ciphertext and trailer; page_open undoes it in the opposite order.
 */
#include "storage/page.h"

#include <pthread.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/rand.h"
#include "crypto/secmem.h"

#define AAD_MAX (4 + 1 + KEYRING_FILE_ID_LEN + 4 + 1 + 4 + PAGE_PLAIN_HDR)

static size_t build_aad(uint8_t aad[AAD_MAX], const uint8_t id[KEYRING_FILE_ID_LEN], uint32_t pgno,
                        int layer, uint32_t version, const uint8_t *page)
{
    size_t n = 0;
    memcpy(aad, "ATRP", 4);
    n += 4;
    aad[n++] = 1;
    memcpy(aad + n, id, KEYRING_FILE_ID_LEN);
    n += KEYRING_FILE_ID_LEN;
    page_put32(aad + n, pgno);
    n += 4;
    aad[n++] = (uint8_t)layer;
    page_put32(aad + n, version);
    n += 4;
    if (pgno == 1) {
        memcpy(aad + n, page, PAGE_PLAIN_HDR);
        n += PAGE_PLAIN_HDR;
    }
    return n;
}

/* The copy of the key a page operation uses lives in a per-thread slot of
 * locked, undumpable memory (secmem), wiped after each operation and freed
 * when the thread ends: never on the stack. */
static pthread_key_t key_tls;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_tls_free(void *p)
{
    secmem_free(p, KEYRING_DEK_LEN);
}

static void key_tls_init(void)
{
    pthread_key_create(&key_tls, key_tls_free);
}

static uint8_t *key_slot(void)
{
    pthread_once(&key_once, key_tls_init);
    uint8_t *k = pthread_getspecific(key_tls);
    if (!k && (k = secmem_alloc(KEYRING_DEK_LEN)) != NULL &&
        pthread_setspecific(key_tls, k) != 0) {
        secmem_free(k, KEYRING_DEK_LEN);
        k = NULL;
    }
    return k;
}

int page_seal(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layers, uint32_t pgno,
              uint8_t page[PAGE_SIZE])
{
    size_t hdr = pgno == 1 ? PAGE_PLAIN_HDR : 0;
    uint8_t aad[AAD_MAX];
    uint8_t *key = key_slot(); /* a copy: a layer dropped meanwhile cannot change it */
    if (!key)
        return AT_ENOMEM;
    uint64_t epoch = aead_kept_epoch(); /* before the key is taken: see aead.h */
    int rc = 0;
    for (int layer = layers - 1; layer >= 0 && rc == 0; layer--) {
        uint8_t *trailer = page + PAGE_SIZE - PAGE_TRAILER_LEN * (layer + 1);
        size_t end = PAGE_SIZE - PAGE_TRAILER_LEN * (size_t)(layer + 1);
        uint32_t version;
        rc = keyring_copy_key_for_write(kr, id, layer, &version, key);
        if (rc)
            break;
        page_put32(trailer, version);
        rc = rand_nonce(trailer + 4, AEAD_NONCE_LEN);
        if (rc)
            break;
        size_t aad_len = build_aad(aad, id, pgno, layer, version, page);
        rc = aead_seal_kept(epoch, key, trailer + 4, aad, aad_len, page + hdr, end - hdr,
                            page + hdr, trailer + 4 + AEAD_NONCE_LEN);
    }
    secmem_wipe(key, KEYRING_DEK_LEN);
    return rc;
}

int page_open(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layers, uint32_t pgno,
              uint8_t page[PAGE_SIZE])
{
    uint32_t versions[2];
    return page_open_versions(kr, id, layers, pgno, page, versions);
}

int page_open_versions(struct keyring *kr, const uint8_t id[KEYRING_FILE_ID_LEN], int layers,
                       uint32_t pgno, uint8_t page[PAGE_SIZE], uint32_t versions[2])
{
    size_t hdr = pgno == 1 ? PAGE_PLAIN_HDR : 0;
    uint8_t aad[AAD_MAX];
    uint8_t *key = key_slot();
    if (!key) {
        secmem_wipe(page, PAGE_SIZE);
        return AT_ENOMEM;
    }
    uint64_t epoch = aead_kept_epoch();
    int rc = 0;
    for (int layer = 0; layer < layers; layer++) {
        uint8_t *trailer = page + PAGE_SIZE - PAGE_TRAILER_LEN * (layer + 1);
        size_t end = PAGE_SIZE - PAGE_TRAILER_LEN * (size_t)(layer + 1);
        uint32_t version = page_get32(trailer);
        versions[layer] = version;
        rc = keyring_copy_key_for_read(kr, id, layer, version, key);
        if (rc) {
            /* An unknown version is damage or tampering, like a bad tag;
             * anything else (a key that cannot be had now) passes through. */
            secmem_wipe(page, PAGE_SIZE);
            rc = rc == AT_ENOTFOUND ? AT_EINTEGRITY : rc;
            break;
        }
        size_t aad_len = build_aad(aad, id, pgno, layer, version, page);
        rc = aead_open_kept(epoch, key, trailer + 4, aad, aad_len, page + hdr, end - hdr,
                            page + hdr, trailer + 4 + AEAD_NONCE_LEN);
        if (rc) {
            secmem_wipe(page, PAGE_SIZE);
            rc = AT_EINTEGRITY;
            break;
        }
        memset(trailer, 0, PAGE_TRAILER_LEN);
    }
    secmem_wipe(key, KEYRING_DEK_LEN);
    return rc;
}
