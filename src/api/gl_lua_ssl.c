/*
 * The part of ngx.ssl that has a use behind FastCGI: parsing PEM
 * certificates and keys (for tcpsock:setclientcert) and turning them into
 * DER, through LuaJIT's FFI (lua/ngx/ssl.lua).  The rest of ngx.ssl
 * serves nginx's own TLS handshakes, which golapis never sees.
 *
 * Errors are lua-nginx-module's strings ("PEM_read_bio_X509_AUX() failed",
 * ...), in *err; OpenSSL's error queue is cleared.
 */
#include "gl_core.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define GL_FFI_OK      0
#define GL_FFI_ERROR  -1


void *gl_ffi_ssl_parse_pem_cert(const u_char *pem, size_t len,
    const char **err);
void gl_ffi_ssl_free_cert(void *chain);
void *gl_ffi_ssl_parse_pem_priv_key(const u_char *pem, size_t len,
    const char **err);
void gl_ffi_ssl_free_priv_key(void *pkey);
int gl_ffi_ssl_cert_pem_to_der(const u_char *pem, size_t len, u_char *der,
    const char **err);
int gl_ffi_ssl_priv_key_pem_to_der(const u_char *pem, size_t len,
    const char *passphrase, u_char *der, const char **err);


/* the certificates of pem, the first one first: a STACK_OF(X509), or NULL
   with *err; freed by gl_ffi_ssl_free_cert */
static STACK_OF(X509) *
gl_ssl_read_chain(const u_char *pem, size_t len, const char **err)
{
    BIO             *bio;
    X509            *x509;
    unsigned long    n;
    STACK_OF(X509)  *chain;

    bio = BIO_new_mem_buf((char *) pem, (int) len);
    if (bio == NULL) {
        *err = "BIO_new_mem_buf() failed";
        ERR_clear_error();
        return NULL;
    }

    chain = NULL;

    x509 = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    if (x509 == NULL) {
        *err = "PEM_read_bio_X509_AUX() failed";
        goto failed;
    }

    chain = sk_X509_new_null();
    if (chain == NULL) {
        *err = "sk_X509_new_null() failed";
        X509_free(x509);
        goto failed;
    }

    for ( ;; ) {
        if (sk_X509_push(chain, x509) == 0) {
            *err = "sk_X509_push() failed";
            X509_free(x509);
            goto failed;
        }

        x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x509 != NULL) {
            continue;
        }

        n = ERR_peek_last_error();

        if (ERR_GET_LIB(n) == ERR_LIB_PEM
            && ERR_GET_REASON(n) == PEM_R_NO_START_LINE)
        {
            /* the end of the text */
            ERR_clear_error();
            break;
        }

        *err = "PEM_read_bio_X509() failed";
        goto failed;
    }

    BIO_free(bio);

    return chain;

failed:

    if (chain != NULL) {
        sk_X509_pop_free(chain, X509_free);
    }

    BIO_free(bio);
    ERR_clear_error();

    return NULL;
}


void *
gl_ffi_ssl_parse_pem_cert(const u_char *pem, size_t len, const char **err)
{
    return gl_ssl_read_chain(pem, len, err);
}


void
gl_ffi_ssl_free_cert(void *chain)
{
    sk_X509_pop_free((STACK_OF(X509) *) chain, X509_free);
}


static EVP_PKEY *
gl_ssl_read_key(const u_char *pem, size_t len, const char *passphrase,
    const char **err)
{
    BIO       *bio;
    EVP_PKEY  *pkey;

    bio = BIO_new_mem_buf((char *) pem, (int) len);
    if (bio == NULL) {
        *err = "BIO_new_mem_buf() failed";
        ERR_clear_error();
        return NULL;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *) passphrase);
    BIO_free(bio);

    if (pkey == NULL) {
        *err = "PEM_read_bio_PrivateKey() failed";
        ERR_clear_error();
        return NULL;
    }

    return pkey;
}


void *
gl_ffi_ssl_parse_pem_priv_key(const u_char *pem, size_t len,
    const char **err)
{
    return gl_ssl_read_key(pem, len, NULL, err);
}


void
gl_ffi_ssl_free_priv_key(void *pkey)
{
    EVP_PKEY_free(pkey);
}


/* the DER of every certificate of pem, one after the other, into der
   (at least len bytes: DER is shorter than its PEM); its length, or
   GL_FFI_ERROR */
int
gl_ffi_ssl_cert_pem_to_der(const u_char *pem, size_t len, u_char *der,
    const char **err)
{
    int              i, n, total;
    u_char          *p;
    STACK_OF(X509)  *chain;

    chain = gl_ssl_read_chain(pem, len, err);
    if (chain == NULL) {
        return GL_FFI_ERROR;
    }

    total = 0;

    for (i = 0; i < sk_X509_num(chain); i++) {
        n = i2d_X509(sk_X509_value(chain, i), NULL);

        if (n <= 0 || (size_t) (total + n) > len) {
            *err = "i2d_X509() failed";
            ERR_clear_error();
            gl_ffi_ssl_free_cert(chain);
            return GL_FFI_ERROR;
        }

        p = der + total;
        (void) i2d_X509(sk_X509_value(chain, i), &p);
        total += n;
    }

    gl_ffi_ssl_free_cert(chain);

    return total;
}


int
gl_ffi_ssl_priv_key_pem_to_der(const u_char *pem, size_t len,
    const char *passphrase, u_char *der, const char **err)
{
    int        n;
    u_char    *p;
    EVP_PKEY  *pkey;

    pkey = gl_ssl_read_key(pem, len, passphrase, err);
    if (pkey == NULL) {
        return GL_FFI_ERROR;
    }

    n = i2d_PrivateKey(pkey, NULL);

    if (n <= 0 || (size_t) n > len) {
        *err = "i2d_PrivateKey() failed";
        ERR_clear_error();
        EVP_PKEY_free(pkey);
        return GL_FFI_ERROR;
    }

    p = der;
    (void) i2d_PrivateKey(pkey, &p);
    EVP_PKEY_free(pkey);

    return n;
}
