/*
 * tls.c — the server certificate.
 *
 * With --tls-cert/--tls-key the user's PEM files are read as they are.
 * Otherwise <key_dir>/tls/server.key (0600) and server.crt are used, and
 * created at first start: a self-signed EC P-256 certificate with
 * subjectAltName IP:127.0.0.1, IP:::1, DNS:localhost, valid for two years.
 * The private key lives in the key folder, never in the data folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/secmem.h"
#include "server/server.h"

static int read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return at_error_set(errno, "cannot read %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return AT_ENOMEM;
            }
            buf = p;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096)
            break;
        if (len > 1024 * 1024) {
            free(buf);
            fclose(f);
            return at_error_set(AT_EINVAL, "%s is too large for a PEM file", path);
        }
    }
    fclose(f);
    buf[len] = 0;
    *out = buf;
    return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return -1;
    int ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -1;
}

static int write_pem(const char *path, mode_t mode, int (*fn)(BIO *, void *), void *obj)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return at_error_set(errno, "cannot create %s: %s", tmp, strerror(errno));
    BIO *b = BIO_new(BIO_s_mem());
    int rc = b && fn(b, obj) ? 0 : AT_ECRYPTO;
    if (rc == 0) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        if (write(fd, data, (size_t)n) != n || fsync(fd) != 0)
            rc = at_error_set(errno ? errno : AT_EIO, "cannot write %s", tmp);
    }
    BIO_free(b);
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = at_error_set(errno, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

static int pem_key(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int pem_cert(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

static int create_cert(const char *dir, const char *crt, const char *key)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return at_error_set(errno, "cannot create %s: %s", dir, strerror(errno));
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = AT_ECRYPTO;
    if (!pk || !x)
        goto out;
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1)
        goto out;
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    if (!ok || !X509_set_version(x, 2) || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 730L * 24 * 3600) || !X509_set_pubkey(x, pk))
        goto out;
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"atrest", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    if (!X509_set_issuer_name(x, name))
        goto out;
    if (add_ext(x, NID_basic_constraints, "critical,CA:TRUE") ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
        add_ext(x, NID_ext_key_usage, "serverAuth") ||
        add_ext(x, NID_subject_key_identifier, "hash") ||
        add_ext(x, NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost"))
        goto out;
    if (!X509_sign(x, pk, EVP_sha256()))
        goto out;
    if ((rc = write_pem(key, 0600, pem_key, pk)) != 0)
        goto out;
    rc = write_pem(crt, 0644, pem_cert, x);
out:
    if (rc == AT_ECRYPTO)
        at_error_set(rc, "cannot create the TLS certificate");
    X509_free(x);
    EVP_PKEY_free(pk);
    return rc;
}

int tls_load_or_create(const char *key_dir, const char *cert_path, const char *key_path,
                       char **cert_out, char **key_out, char **used_path)
{
    char dir[4096], crt[4200], key[4200];
    if ((cert_path == NULL) != (key_path == NULL))
        return at_error_set(AT_EINVAL, "--tls-cert and --tls-key go together");
    if (!cert_path) {
        snprintf(dir, sizeof dir, "%s/tls", key_dir);
        snprintf(crt, sizeof crt, "%s/server.crt", dir);
        snprintf(key, sizeof key, "%s/server.key", dir);
        if (access(crt, F_OK) != 0 || access(key, F_OK) != 0) {
            int rc = create_cert(dir, crt, key);
            if (rc)
                return rc;
        }
        cert_path = crt;
        key_path = key;
    }
    int rc = read_file(cert_path, cert_out);
    if (rc)
        return rc;
    rc = read_file(key_path, key_out);
    if (rc) {
        free(*cert_out);
        *cert_out = NULL;
        return rc;
    }
    *used_path = realpath(cert_path, NULL);
    if (!*used_path)
        *used_path = strdup(cert_path);
    return 0;
}
